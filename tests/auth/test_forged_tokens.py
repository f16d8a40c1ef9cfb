"""Forged and foreign access tokens are refused; the genuine one (the control) passes."""

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.signing import ALGORITHM
from app.core.state import AppState
from tests.auth.helpers import bearer
from tests.factories import auth_headers, create_customer, create_user


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())


def _attacker_key() -> tuple[str, dict[str, str]]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    numbers = key.public_key().public_numbers()
    public = {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }
    return pem, public


def genuine(state: AppState, claims: dict[str, Any]) -> str:
    return state.keys.sign(claims)


def alg_none(state: AppState, claims: dict[str, Any]) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": state.keys.signer.kid}
    return _segments(header, claims) + "."


def hs256_with_public_key(state: AppState, claims: dict[str, Any]) -> str:
    public_pem = state.keys.signer.public.to_pem()
    signing_input = _segments({"alg": "HS256", "typ": "JWT", "kid": state.keys.signer.kid}, claims)
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def wrong_audience(state: AppState, claims: dict[str, Any]) -> str:
    return state.keys.sign({**claims, "aud": state.settings.pbx_audience})


def wrong_issuer(state: AppState, claims: dict[str, Any]) -> str:
    return state.keys.sign({**claims, "iss": "https://evil.example"})


def expired(state: AppState, claims: dict[str, Any]) -> str:
    return state.keys.sign({**claims, "iat": claims["iat"] - 3600, "exp": claims["iat"] - 1})


def unknown_kid(state: AppState, claims: dict[str, Any]) -> str:
    pem, _ = _attacker_key()
    return jwt.encode(claims, pem, algorithm=ALGORITHM, headers={"kid": "not-a-key-of-ours"})


def own_key_with_our_kid(state: AppState, claims: dict[str, Any]) -> str:
    pem, _ = _attacker_key()
    return jwt.encode(claims, pem, algorithm=ALGORITHM, headers={"kid": state.keys.signer.kid})


def embedded_jwk(state: AppState, claims: dict[str, Any]) -> str:
    pem, public = _attacker_key()
    headers = {"kid": state.keys.signer.kid, "jwk": public}
    return jwt.encode(claims, pem, algorithm=ALGORITHM, headers=headers)


def jku_header(state: AppState, claims: dict[str, Any]) -> str:
    pem, _ = _attacker_key()
    headers = {"kid": state.keys.signer.kid, "jku": "https://evil.example/jwks.json"}
    return jwt.encode(claims, pem, algorithm=ALGORITHM, headers=headers)


def jwk_header_on_a_genuine_signature(state: AppState, claims: dict[str, Any]) -> str:
    # Even our own signature does not make a token with a key-naming header acceptable.
    signer = state.keys.signer
    headers = {"kid": signer.kid, "jwk": signer.public_jwk}
    return jwt.encode(claims, signer.private, algorithm=ALGORITHM, headers=headers)


def jku_header_on_a_genuine_signature(state: AppState, claims: dict[str, Any]) -> str:
    signer = state.keys.signer
    headers = {"kid": signer.kid, "jku": "https://evil.example/jwks.json"}
    return jwt.encode(claims, signer.private, algorithm=ALGORITHM, headers=headers)


def flipped_signature(state: AppState, claims: dict[str, Any]) -> str:
    token = state.keys.sign(claims)
    head, _, signature = token.rpartition(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return head + "." + flipped


def other_session(state: AppState, claims: dict[str, Any]) -> str:
    return state.keys.sign({**claims, "sid": "0" * 32})


def other_user(state: AppState, claims: dict[str, Any]) -> str:
    return state.keys.sign({**claims, "sub": str(int(claims["sub"]) + 1000)})


Forger = Callable[[AppState, dict[str, Any]], str]


@pytest.fixture
async def claims(session: AsyncSession, state: AppState) -> dict[str, Any]:
    """The claims of a real access token of a live session."""
    user = await create_user(session, state, await create_customer(session))
    token = (await auth_headers(session, state, user))["Authorization"].split()[1]
    claims: dict[str, Any] = jwt.get_unverified_claims(token)
    return claims


async def test_the_genuine_token_is_accepted(
    client: httpx.AsyncClient, state: AppState, claims: dict[str, Any]
) -> None:
    response = await client.get("/api/v1/me", headers=bearer(genuine(state, claims)))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "forge",
    [
        alg_none,
        hs256_with_public_key,
        wrong_audience,
        wrong_issuer,
        expired,
        unknown_kid,
        own_key_with_our_kid,
        embedded_jwk,
        jku_header,
        jwk_header_on_a_genuine_signature,
        jku_header_on_a_genuine_signature,
        flipped_signature,
        other_session,
        other_user,
    ],
)
async def test_forged_tokens_are_refused(
    client: httpx.AsyncClient, state: AppState, claims: dict[str, Any], forge: Forger
) -> None:
    response = await client.get("/api/v1/me", headers=bearer(forge(state, claims)))
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Bearer a.b.c.d", "Token x"],
)
async def test_malformed_authorization_headers(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get("/api/v1/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
