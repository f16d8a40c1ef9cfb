"""The hand-off to the cloud PBX: a short-lived ES256 token in a redirect to a configured URL."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from app.audit.service import Actor, event_row
from app.contracts.errors import ContractNotFound, ContractTerminated, PbxNotConfigured
from app.contracts.models import ContractState
from app.contracts.repository import PbxTarget
from app.core.auth import Principal
from app.core.clock import utcnow
from app.core.state import AppState
from app.core.urls import http_base_url


@dataclass(frozen=True)
class Handoff:
    """A minted hand-off: the URL to send the browser to, and when its token expires."""

    redirect_url: str
    expires_at: datetime
    jti: str


def pbx_base_url(state: AppState, contract: PbxTarget) -> str:
    """The contract's own PBX URL or the configured default; never anything from a request."""
    if contract.pbx_ui_url:
        try:
            return http_base_url(contract.pbx_ui_url)
        except ValueError as exc:
            raise PbxNotConfigured("The contract's PBX address is not a valid URL.") from exc
    return state.settings.pbx_ui_url


def handoff_claims(
    state: AppState,
    principal: Principal,
    contract: PbxTarget,
    *,
    now: datetime,
    jti: str,
) -> dict[str, Any]:
    """Exactly the claims DESIGN lists; `aud` tells them apart from the API's access tokens."""
    settings, user = state.settings, principal.user
    issued = int(now.timestamp())
    return {
        "iss": settings.jwt_issuer,
        "aud": settings.pbx_audience,
        "sub": str(user.id),
        "jti": jti,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(settings.pbx_token_ttl.total_seconds()),
        "login": user.login,
        "name": f"{user.first_name} {user.last_name}",
        "email": user.email,
        "role": str(user.role),
        "customer_number": contract.customer_number,
        "contract_number": contract.contract_number,
        "pbx_tenant": contract.pbx_tenant,
    }


async def open_pbx(
    state: AppState,
    principal: Principal,
    contract_id: int,
    *,
    client_ip: str | None = None,
) -> Handoff:
    """Mint a hand-off token for one of the caller's customer's contracts and audit it.

    The audit event is the hand-off's only write: it is committed, together with those of
    the hand-offs that came at the same time, before the token is handed out.
    """
    targets, events = state.pbx_targets, state.lone_events
    if targets is None or events is None:
        raise RuntimeError("create_app() sets the hand-off's cache and event writer")
    contract = await targets.target(state.database, contract_id, principal.customer_id)
    if contract is None:
        raise ContractNotFound("No such contract.")
    if contract.state != ContractState.ACTIVE:
        raise ContractTerminated("The contract is terminated; its PBX cannot be opened.")
    if not contract.pbx_tenant:
        raise PbxNotConfigured("The contract has no cloud PBX tenant.")
    base_url = pbx_base_url(state, contract)
    now, jti = utcnow(), secrets.token_urlsafe(16)
    claims = handoff_claims(state, principal, contract, now=now, jti=jti)
    token = state.keys.sign(claims)
    event = event_row(
        "pbx.opened",
        customer_id=principal.customer_id,
        actor=Actor(principal.user_id, principal.user.login),
        target_type="contract",
        target_id=contract.id,
        client_ip=client_ip,
        details={
            "contract_number": contract.contract_number,
            "pbx_tenant": contract.pbx_tenant,
            "jti": jti,
        },
    )
    await events.write(event)
    return Handoff(
        redirect_url=f"{base_url}/sso?{urlencode({'token': token})}",
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        jti=jti,
    )
