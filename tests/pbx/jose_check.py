"""Verifying hand-off tokens as a PBX would: PyJWT, given nothing but the JWKS document."""

import base64
from collections.abc import Sequence
from typing import Any

import httpx
import jwt

HANDOFF_CLAIMS = {
    "iss",
    "aud",
    "sub",
    "jti",
    "iat",
    "nbf",
    "exp",
    "login",
    "name",
    "email",
    "role",
    "customer_number",
    "contract_number",
    "pbx_tenant",
}


async def fetch_jwks(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    jwks: dict[str, Any] = response.json()
    return jwks


REQUIRED = ("exp", "iat", "nbf", "iss", "aud", "sub", "jti")


def verify_with_jwks(
    token: str,
    jwks: dict[str, Any],
    *,
    audience: str,
    issuer: str,
    require: Sequence[str] = REQUIRED,
) -> dict[str, Any]:
    """PyJWT's own checks: ES256 only, signature by the JWKS key named by `kid`, aud, iss, times."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks)[kid]
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=["ES256"],
        audience=audience,
        issuer=issuer,
        options={"require": list(require)},
    )
    return claims


def token_from_url(url: str) -> str:
    return httpx.URL(url).params["token"]


def flip_signature_byte(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    flipped = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    return f"{header}.{payload}.{flipped}"
