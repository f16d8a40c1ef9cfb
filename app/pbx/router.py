"""The hand-off to the cloud PBX web UI, and the public keys that verify its tokens."""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from app.core.auth import PbxOpener, client_ip
from app.core.errors import problem_responses
from app.core.state import AppState, state_of
from app.pbx import service
from app.pbx.schemas import JwkSet, PbxSession

router = APIRouter(tags=["pbx"])

ContractId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The contract's `id`")]
NO_STORE = {"Cache-Control": "no-store"}


@router.post(
    "/contracts/{contract_id}/pbx-sessions",
    status_code=201,
    response_model=PbxSession,
    summary="Open the contract's PBX web UI: a redirect URL with a short-lived signed token",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_pbx_session(
    contract_id: ContractId,
    request: Request,
    principal: PbxOpener,
) -> Response:
    handoff = await service.open_pbx(
        state_of(request), principal, contract_id, client_ip=client_ip(request)
    )
    # Serialised here, once: `response_model` documents the body, and FastAPI would validate
    # and encode it a second time.
    body = PbxSession(redirect_url=handoff.redirect_url, expires_at=handoff.expires_at)
    return Response(
        body.model_dump_json(), status_code=201, media_type="application/json", headers=NO_STORE
    )


@router.get(
    "/contracts/{contract_id}/pbx-redirect",
    status_code=303,
    response_class=RedirectResponse,
    summary="Open the contract's PBX web UI by redirect (303 to the same URL as pbx-sessions)",
    responses={
        303: {"description": "To the PBX web UI, with the token in the query"},
        **problem_responses(401, 403, 404, 409, 422),
    },
)
async def redirect_to_pbx(
    contract_id: ContractId,
    request: Request,
    principal: PbxOpener,
) -> RedirectResponse:
    handoff = await service.open_pbx(
        state_of(request), principal, contract_id, client_ip=client_ip(request)
    )
    return RedirectResponse(handoff.redirect_url, status_code=303, headers=NO_STORE)


def jwks_max_age(state: AppState) -> int:
    """Cache lifetime of the JWKS: half the key overlap, at most 5 minutes.

    Shorter than the overlap, so a verifier's cached copy is always refreshed while a retired
    key is still published; verifiers refetch at once on an unknown `kid` (a new signer).
    """
    return max(0, min(300, int(state.keys.overlap.total_seconds()) // 2))


class JwksResponse(Response):
    """The JWKS answer, from headers encoded once per published key set."""

    def __init__(self, body: bytes, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = 200
        self.body = body
        self.background = None
        self.raw_headers = raw_headers


class JwksAnswer:
    """The encoded headers of the last JWKS document served, rebuilt when the document changes.

    Verifiers poll this document; between key changes every answer is the same bytes.
    """

    def __init__(self) -> None:
        self._body: bytes | None = None
        self._raw_headers: list[tuple[bytes, bytes]] = []

    def response(self, state: AppState) -> JwksResponse:
        body = state.keys.jwks_json()
        # The ring hands out the same bytes object until the published keys change.
        if body is not self._body:
            headers = Response(
                body,
                media_type="application/json",
                headers={"Cache-Control": f"public, max-age={jwks_max_age(state)}"},
            ).raw_headers
            self._body, self._raw_headers = body, headers
        # A copy per answer: whoever adds a header to one response must not add it to all.
        return JwksResponse(body, list(self._raw_headers))


class JwksRoute(APIRoute):
    """The JWKS route, whose endpoint takes the request and returns the response itself.

    It declares no parameters and no response model, so FastAPI's parameter solving and
    response handling would do nothing for it but cost time on every poll.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        declared = self.dependant
        if declared.dependencies or declared.path_params or declared.query_params:
            raise TypeError("the JWKS endpoint takes the request only")
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return endpoint


def add_jwks_route(app: FastAPI) -> None:
    """The JWKS as a route of the app itself: verifiers poll it, so it is matched first."""
    answer = JwksAnswer()

    async def jwks(request: Request) -> Response:
        # The app's state is read from the request rather than through a dependency: verifiers
        # poll this document, and it needs nothing else.
        return answer.response(state_of(request))

    app.router.add_api_route(
        "/.well-known/jwks.json",
        jwks,
        methods=["GET"],
        response_class=Response,
        tags=["pbx"],
        summary="The public keys that verify hand-off tokens (JWKS, RFC 7517)",
        responses={200: {"model": JwkSet, "content": {"application/json": {}}}},
        route_class_override=JwksRoute,
    )
