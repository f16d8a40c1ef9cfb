"""ES256 signing keys and JWTs. The only module that imports python-jose.

One key ring signs the API's access tokens and the PBX hand-off tokens (told apart by `aud`),
as an identity provider's realm key does. Keys are PEM files named `<created>-<kid>.pem` under
ESERVICE_KEYS_DIR, parsed once and re-read only when the folder changes. The newest key signs;
an older key stays published in the JWKS until every token it can have signed has expired.
"""

import base64
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk, jws, jwt
from jose.exceptions import JOSEError

from app.core.clock import utcnow

ALGORITHM = "ES256"
# Headers that would let a token name its own verification key: never honoured.
FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "x5t", "crit"})
_STAMP = "%Y%m%dT%H%M%SZ"

logger = logging.getLogger(__name__)


class InvalidToken(Exception):
    """A JWT that is malformed, forged, expired, or meant for someone else."""


class NoSigningKey(Exception):
    """The key folder holds no key and may not generate one."""


def _b64(number: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes(32, "big")).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    """One EC P-256 key pair of the ring."""

    kid: str
    created_at: datetime
    path: Path
    private: Any  # jose key object, parsed once
    public: Any
    public_jwk: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> "SigningKey":
        stamp, kid = path.stem.split("-", 1)
        created_at = datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
        pem = path.read_bytes()
        private_key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise ValueError(f"{path.name} is not an EC P-256 private key")
        numbers = private_key.public_key().public_numbers()
        public_pem = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        public_jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(numbers.x),
            "y": _b64(numbers.y),
            "kid": kid,
            "use": "sig",
            "alg": ALGORITHM,
        }
        return cls(
            kid=kid,
            created_at=created_at,
            path=path,
            private=jwk.construct(pem.decode(), ALGORITHM),
            public=jwk.construct(public_pem.decode(), ALGORITHM),
            public_jwk=public_jwk,
        )


class KeyRing:
    """The signing keys in one folder: the newest signs, the recent ones verify."""

    RELOAD_INTERVAL = 5.0

    def __init__(self, keys_dir: Path, overlap: timedelta) -> None:
        self.keys_dir = keys_dir
        self.overlap = overlap
        self._keys: list[SigningKey] = []
        self._by_kid: dict[str, SigningKey] = {}
        self._seen_mtime: float | None = None
        self._checked_at = 0.0
        self._jwks_kids: tuple[str, ...] | None = None
        self._jwks_json = b""
        self._jwks_valid_until: datetime | None = None

    # -- files ---------------------------------------------------------------

    def _dir_mtime(self) -> float | None:
        try:
            return self.keys_dir.stat().st_mtime
        except FileNotFoundError:
            return None

    def load(self) -> None:
        """Read the folder. A file that is not a key of ours is skipped with a warning.

        Skipping rather than failing keeps a stray `backup.pem` or a damaged file from
        turning every signed request into an error. A reload that finds no key at all keeps
        the keys already in memory, so a folder briefly unmounted does not stop signing.
        """
        paths = sorted(self.keys_dir.glob("*.pem")) if self.keys_dir.is_dir() else []
        keys = []
        for path in paths:
            try:
                keys.append(SigningKey.load(path))
            except Exception as exc:  # any fault of one file: unreadable, misnamed, not P-256
                # The reason names the file and the kind of fault, never key material.
                logger.warning(
                    "signing key file skipped",
                    extra={"file": path.name, "reason": type(exc).__name__},
                )
        keys.sort(key=lambda key: key.created_at)
        if not keys and self._keys:
            logger.error("no readable signing key in %s; keeping the loaded keys", self.keys_dir)
            keys = self._keys
        self._keys = keys
        self._by_kid = {key.kid: key for key in keys}
        self._seen_mtime = self._dir_mtime()
        self._checked_at = time.monotonic()
        self._jwks_valid_until = None

    def _refresh(self) -> None:
        if time.monotonic() - self._checked_at < self.RELOAD_INTERVAL:
            return
        self._checked_at = time.monotonic()
        if self._dir_mtime() != self._seen_mtime:
            self.load()

    def generate(self) -> SigningKey:
        """Write a new key; it becomes the signer."""
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.keys_dir, 0o700)
        # File names carry whole seconds; two keys in one second must still order correctly.
        created = utcnow().replace(microsecond=0)
        if self._keys and created <= self._keys[-1].created_at:
            created = self._keys[-1].created_at + timedelta(seconds=1)
        kid = secrets.token_urlsafe(12).replace("-", "x")
        path = self.keys_dir / f"{created.strftime(_STAMP)}-{kid}.pem"
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Written under a name the ring ignores, then renamed: a process reloading the folder
        # meanwhile never reads half a key.
        partial = path.with_suffix(".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        self.load()
        return self._by_kid[kid]

    def ensure_key(self, *, may_generate: bool) -> None:
        self.load()
        if not self._keys:
            if not may_generate:
                raise NoSigningKey(f"no signing key in {self.keys_dir}")
            self.generate()

    def rotate(self) -> tuple[SigningKey, list[SigningKey]]:
        """A new signer; keys retired longer than the overlap ago are deleted."""
        self.load()
        new_key = self.generate()
        removed = [key for key in self._keys if not self._is_published(key)]
        for key in removed:
            key.path.unlink(missing_ok=True)
        self.load()
        return new_key, removed

    # -- state ---------------------------------------------------------------

    def _retired_at(self, key: SigningKey) -> datetime | None:
        later = [other.created_at for other in self._keys if other.created_at > key.created_at]
        return min(later) if later else None

    def _is_published(self, key: SigningKey) -> bool:
        retired = self._retired_at(key)
        return retired is None or utcnow() < retired + self.overlap

    def describe(self) -> list[dict[str, Any]]:
        """Each key with its state, for `eservice keys list`."""
        self.load()
        rows = []
        for key in self._keys:
            retired = self._retired_at(key)
            state = (
                "signing"
                if retired is None
                else ("published" if self._is_published(key) else "expired")
            )
            rows.append(
                {
                    "kid": key.kid,
                    "created_at": key.created_at,
                    "retired_at": retired,
                    "state": state,
                }
            )
        return rows

    @property
    def signer(self) -> SigningKey:
        self._refresh()
        if not self._keys:
            raise NoSigningKey(f"no signing key in {self.keys_dir}")
        return self._keys[-1]

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys that may have signed a still-valid token (never private parts)."""
        self._refresh()
        return {"keys": [key.public_jwk for key in reversed(self._keys) if self._is_published(key)]}

    def jwks_json(self) -> bytes:
        """The JWKS document serialised; re-encoded only when the published keys change.

        The document changes only when the folder does or when a retired key's overlap ends,
        so between those moments the bytes are served as they are.
        """
        self._refresh()
        now = utcnow()
        if self._jwks_valid_until is None or now >= self._jwks_valid_until:
            document = self.jwks()
            kids = tuple(key["kid"] for key in document["keys"])
            if kids != self._jwks_kids:
                self._jwks_json = json.dumps(document, separators=(",", ":")).encode()
                self._jwks_kids = kids
            ends = [
                retired + self.overlap
                for key in self._keys
                if (retired := self._retired_at(key)) is not None and now < retired + self.overlap
            ]
            self._jwks_valid_until = min(ends, default=now + timedelta(days=1))
        return self._jwks_json

    # -- tokens --------------------------------------------------------------

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.signer
        token: str = jwt.encode(
            claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "JWT"}
        )
        return token

    def verify(
        self, token: str, *, audience: str, issuer: str, leeway: timedelta = timedelta(0)
    ) -> dict[str, Any]:
        """The claims of a token this ring signed for `audience`, or InvalidToken."""
        self._refresh()
        try:
            header = jws.get_unverified_header(token)
        except JOSEError as exc:
            raise InvalidToken("malformed token") from exc
        if header.get("alg") != ALGORITHM or FORBIDDEN_HEADERS & header.keys():
            raise InvalidToken("unexpected token header")
        key = self._by_kid.get(str(header.get("kid")))
        if key is None or not self._is_published(key):
            raise InvalidToken("unknown signing key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=issuer,
                # Times are checked below against the service's clock.
                options={
                    "require_aud": True,
                    "require_exp": True,
                    "require_iat": True,
                    "require_iss": True,
                    "require_sub": True,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except JOSEError as exc:
            raise InvalidToken("invalid token") from exc
        now = utcnow().timestamp()
        slack = leeway.total_seconds()
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
        if not isinstance(exp, int | float) or now > exp + slack:
            raise InvalidToken("token expired")
        if isinstance(nbf, int | float) and now + slack < nbf:
            raise InvalidToken("token not yet valid")
        return claims
