"""The hand-off to the PBX: tokens a PBX verifies on its own, roles, tenants, redirect target."""

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.contracts.models import ContractState
from app.core.clock import clock
from app.core.permissions import Role
from app.core.state import AppState
from tests.factories import auth_headers, create_contract, create_customer, create_user
from tests.pbx.jose_check import (
    HANDOFF_CLAIMS,
    fetch_jwks,
    flip_signature_byte,
    token_from_url,
    verify_with_jwks,
)

ISSUER = "http://testserver"
AUDIENCE = "cloud-pbx"


async def _pbx_admin(session: AsyncSession, state: AppState, **contract_args: object):  # type: ignore[no-untyped-def]
    customer = await create_customer(session)
    user = await create_user(
        session, state, customer, role=Role.PBX_ADMIN, first_name="Paul", last_name="Berger"
    )
    contract = await create_contract(session, customer, **contract_args)  # type: ignore[arg-type]
    headers = await auth_headers(session, state, user)
    return customer, user, contract, headers


async def _open(client: httpx.AsyncClient, contract_id: int, headers: dict[str, str]) -> str:
    response = await client.post(f"/api/v1/contracts/{contract_id}/pbx-sessions", headers=headers)
    assert response.status_code == 201, response.text
    url: str = response.json()["redirect_url"]
    return url


async def test_token_verifies_with_pyjwt_given_only_the_jwks(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    customer, user, contract, headers = await _pbx_admin(session, state, pbx_tenant="t-4711")
    response = await client.post(f"/api/v1/contracts/{contract.id}/pbx-sessions", headers=headers)
    assert response.status_code == 201
    assert response.headers.get_list("cache-control") == ["no-store"]
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"redirect_url", "expires_at"}
    assert body["redirect_url"].startswith("https://pbx.example.com/sso?token=")

    token = token_from_url(body["redirect_url"])
    jwks = await fetch_jwks(client)
    claims = verify_with_jwks(token, jwks, audience=AUDIENCE, issuer=ISSUER)

    assert set(claims) == HANDOFF_CLAIMS
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert claims["exp"] - claims["iat"] == 60
    assert datetime.fromisoformat(body["expires_at"]) == datetime.fromtimestamp(claims["exp"], UTC)
    assert claims["nbf"] == claims["iat"]
    assert claims["sub"] == str(user.id)
    assert claims["login"] == user.login
    assert claims["name"] == "Paul Berger"
    assert claims["email"] == user.email
    assert claims["role"] == "pbx_admin"
    assert claims["customer_number"] == customer.customer_number
    assert claims["contract_number"] == contract.contract_number
    assert claims["pbx_tenant"] == "t-4711"
    assert datetime.fromisoformat(body["expires_at"]).timestamp() == claims["exp"]


async def test_each_handoff_has_its_own_jti(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    _, _, contract, headers = await _pbx_admin(session, state)
    tokens = [token_from_url(await _open(client, contract.id, headers)) for _ in range(3)]
    jtis = {jwt.decode(t, options={"verify_signature": False})["jti"] for t in tokens}
    assert len(jtis) == 3


async def test_lifetime_follows_setting_up_to_300_seconds(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    state.settings = state.settings.model_copy(update={"pbx_token_ttl": timedelta(seconds=300)})
    _, _, contract, headers = await _pbx_admin(session, state)
    token = token_from_url(await _open(client, contract.id, headers))
    claims = verify_with_jwks(token, await fetch_jwks(client), audience=AUDIENCE, issuer=ISSUER)
    assert claims["exp"] - claims["iat"] == 300


async def test_token_fails_for_another_audience_or_issuer(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    _, _, contract, headers = await _pbx_admin(session, state)
    token = token_from_url(await _open(client, contract.id, headers))
    jwks = await fetch_jwks(client)
    with pytest.raises(jwt.InvalidAudienceError):
        verify_with_jwks(token, jwks, audience="another-pbx", issuer=ISSUER)
    with pytest.raises(jwt.InvalidAudienceError):
        verify_with_jwks(token, jwks, audience=state.settings.api_audience, issuer=ISSUER)
    with pytest.raises(jwt.InvalidIssuerError):
        verify_with_jwks(token, jwks, audience=AUDIENCE, issuer="https://evil.example")


async def test_token_fails_after_expiry(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    # Minted 61 seconds ago, as a PBX would see a token that was used too late.
    clock.advance(timedelta(seconds=-61))
    _, _, contract, headers = await _pbx_admin(session, state)
    token = token_from_url(await _open(client, contract.id, headers))
    clock.reset()
    with pytest.raises(jwt.ExpiredSignatureError):
        verify_with_jwks(token, await fetch_jwks(client), audience=AUDIENCE, issuer=ISSUER)


async def test_token_fails_with_a_flipped_signature_byte(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    _, _, contract, headers = await _pbx_admin(session, state)
    token = token_from_url(await _open(client, contract.id, headers))
    jwks = await fetch_jwks(client)
    verify_with_jwks(token, jwks, audience=AUDIENCE, issuer=ISSUER)
    with pytest.raises(jwt.InvalidSignatureError):
        verify_with_jwks(flip_signature_byte(token), jwks, audience=AUDIENCE, issuer=ISSUER)


async def test_handoff_token_is_not_an_api_access_token(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    _, _, contract, headers = await _pbx_admin(session, state)
    token = token_from_url(await _open(client, contract.id, headers))
    response = await client.get("/api/v1/contracts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    response = await client.post(
        f"/api/v1/contracts/{contract.id}/pbx-sessions",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401


async def test_api_access_token_is_not_a_handoff_token(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    _, _, _, headers = await _pbx_admin(session, state)
    access_token = headers["Authorization"].removeprefix("Bearer ")
    jwks = await fetch_jwks(client)
    with pytest.raises(jwt.InvalidTokenError):
        verify_with_jwks(access_token, jwks, audience=AUDIENCE, issuer=ISSUER)
    # Same issuer and keys; even a lax verifier refuses it, for its audience is the API's.
    with pytest.raises(jwt.InvalidAudienceError):
        verify_with_jwks(access_token, jwks, audience=AUDIENCE, issuer=ISSUER, require=[])


async def test_redirect_answers_303_to_the_pbx(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    _, user, contract, headers = await _pbx_admin(session, state)
    response = await client.get(f"/api/v1/contracts/{contract.id}/pbx-redirect", headers=headers)
    assert response.status_code == 303
    assert response.headers["cache-control"] == "no-store"
    location = response.headers["location"]
    assert location.startswith("https://pbx.example.com/sso?token=")
    claims = verify_with_jwks(
        token_from_url(location), await fetch_jwks(client), audience=AUDIENCE, issuer=ISSUER
    )
    assert claims["sub"] == str(user.id)


@pytest.mark.parametrize("method", ["post-session", "get-redirect"])
async def test_client_cannot_change_the_redirect_host(
    method: str, client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    _, _, contract, headers = await _pbx_admin(session, state)
    hostile = {
        **headers,
        "Host": "evil.example",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "http",
        "Origin": "https://evil.example",
        "Referer": "https://evil.example/",
    }
    params = {"redirect_url": "https://evil.example", "pbx_ui_url": "https://evil.example"}
    if method == "post-session":
        response = await client.post(
            f"/api/v1/contracts/{contract.id}/pbx-sessions", headers=hostile, params=params
        )
        assert response.status_code == 201
        url = response.json()["redirect_url"]
    else:
        response = await client.get(
            f"/api/v1/contracts/{contract.id}/pbx-redirect", headers=hostile, params=params
        )
        assert response.status_code == 303
        url = response.headers["location"]
    assert httpx.URL(url).host == "pbx.example.com"
    assert url.startswith("https://pbx.example.com/sso?token=")
    assert "evil" not in url


async def test_contract_pbx_url_overrides_the_default(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    _, _, contract, headers = await _pbx_admin(
        session, state, pbx_ui_url="https://pbx-west.example.org/ui/"
    )
    url = await _open(client, contract.id, headers)
    assert url.startswith("https://pbx-west.example.org/ui/sso?token=")


async def test_contract_with_a_broken_pbx_url_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    _, _, contract, headers = await _pbx_admin(session, state, pbx_ui_url="javascript:alert(1)")
    response = await client.post(f"/api/v1/contracts/{contract.id}/pbx-sessions", headers=headers)
    assert response.status_code == 409
    assert response.json()["code"] == "pbx_not_configured"


async def test_each_handoff_is_audited_without_the_token(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    customer, user, contract, headers = await _pbx_admin(session, state)
    token = token_from_url(await _open(client, contract.id, headers))
    events = (
        (
            await session.execute(
                select(AuditEvent).where(
                    AuditEvent.customer_id == customer.id, AuditEvent.action == "pbx.opened"
                )
            )
        )
        .scalars()
        .all()
    )
    assert len(events) == 1
    event = events[0]
    assert event.actor_id == user.id
    assert event.actor_login == user.login
    assert (event.target_type, event.target_id) == ("contract", str(contract.id))
    assert event.client_ip == "127.0.0.1"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert event.details == {
        "contract_number": contract.contract_number,
        "pbx_tenant": contract.pbx_tenant,
        "jti": claims["jti"],
    }
    assert token not in str(event.details)

    # The redirect is a hand-off too, with an event of its own.
    response = await client.get(f"/api/v1/contracts/{contract.id}/pbx-redirect", headers=headers)
    assert response.status_code == 303
    redirect_jti = jwt.decode(
        token_from_url(response.headers["location"]), options={"verify_signature": False}
    )["jti"]
    jtis = (
        await session.execute(
            select(AuditEvent.details).where(
                AuditEvent.customer_id == customer.id, AuditEvent.action == "pbx.opened"
            )
        )
    ).scalars()
    assert sorted(details["jti"] for details in jtis) == sorted([claims["jti"], redirect_jti])


@pytest.mark.parametrize("role", [Role.CUSTOMER_PORTAL_ADMIN, Role.CUSTOMER_ACCOUNTING])
async def test_other_roles_get_403(
    role: Role, client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    customer = await create_customer(session)
    user = await create_user(session, state, customer, role=role)
    contract = await create_contract(session, customer)
    headers = await auth_headers(session, state, user)
    post = await client.post(f"/api/v1/contracts/{contract.id}/pbx-sessions", headers=headers)
    get = await client.get(f"/api/v1/contracts/{contract.id}/pbx-redirect", headers=headers)
    for response in (post, get):
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "forbidden"


async def test_another_customers_contract_is_404(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    _, _, _, headers = await _pbx_admin(session, state)
    other = await create_customer(session)
    foreign = await create_contract(session, other)
    for response in (
        await client.post(f"/api/v1/contracts/{foreign.id}/pbx-sessions", headers=headers),
        await client.get(f"/api/v1/contracts/{foreign.id}/pbx-redirect", headers=headers),
        await client.post("/api/v1/contracts/2147483647/pbx-sessions", headers=headers),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


async def test_terminated_contract_is_409(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    customer, _, _, headers = await _pbx_admin(session, state)
    ended = await create_contract(session, customer, state=ContractState.TERMINATED)
    for response in (
        await client.post(f"/api/v1/contracts/{ended.id}/pbx-sessions", headers=headers),
        await client.get(f"/api/v1/contracts/{ended.id}/pbx-redirect", headers=headers),
    ):
        assert response.status_code == 409
        assert response.json()["code"] == "contract_terminated"


async def test_contract_without_pbx_tenant_is_409(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    customer, _, _, headers = await _pbx_admin(session, state)
    bare = await create_contract(session, customer, pbx_tenant=None)
    response = await client.post(f"/api/v1/contracts/{bare.id}/pbx-sessions", headers=headers)
    assert response.status_code == 409
    assert response.json()["code"] == "pbx_not_configured"


async def test_anonymous_and_bad_ids(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/contracts/1/pbx-sessions")
    assert response.status_code == 401
    assert (await client.post("/api/v1/contracts/0/pbx-sessions")).status_code in (401, 422)
    assert (await client.post("/api/v1/contracts/99999999999/pbx-sessions")).status_code in (
        401,
        422,
    )


async def test_huge_or_zero_contract_id_is_422_for_pbx_admin(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    _, _, _, headers = await _pbx_admin(session, state)
    for contract_id in ("0", "99999999999", "abc"):
        response = await client.post(
            f"/api/v1/contracts/{contract_id}/pbx-sessions", headers=headers
        )
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
