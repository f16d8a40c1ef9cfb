"""What the hand-off endpoints answer."""

from datetime import datetime

from pydantic import BaseModel, Field


class PbxSession(BaseModel):
    """Where to send the browser: the PBX web UI with a short-lived signed token."""

    redirect_url: str = Field(
        description="`{pbx_ui_url}/sso?token=<jwt>`; open it at once, the token is single use",
        examples=["https://pbx.example.net/sso?token=eyJhbGciOiJFUzI1NiIs..."],
    )
    expires_at: datetime = Field(description="When the token in the URL expires")


class PublicJwk(BaseModel):
    """One public EC P-256 key (RFC 7517); never carries private parts."""

    kty: str = Field(examples=["EC"])
    crv: str = Field(examples=["P-256"])
    x: str
    y: str
    kid: str
    use: str = Field(examples=["sig"])
    alg: str = Field(examples=["ES256"])


class JwkSet(BaseModel):
    keys: list[PublicJwk]
