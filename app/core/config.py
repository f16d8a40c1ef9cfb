"""Settings of the service: environment variables with the prefix ESERVICE_, or a .env file."""

import os
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.urls import http_base_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/eservice.db"
DEFAULT_FRONTEND_URL = "http://127.0.0.1:8000"
DEFAULT_PBX_UI_URL = "https://pbx.example.net"


def usable_cores() -> int:
    """The cores this process may run on (`taskset` and container CPU sets count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - platforms without CPU affinity
        return os.cpu_count() or 1


class UnsafeProductionSettings(ValueError):
    """Raised when ESERVICE_ENVIRONMENT=production meets a default that is only safe on a laptop."""


class Settings(BaseSettings):
    """Every knob of the service, with the defaults of DESIGN.md section 5."""

    model_config = SettingsConfigDict(
        env_prefix="ESERVICE_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    allow_sqlite_in_production: bool = False
    database_pool_size: int = Field(default=10, ge=1, le=200)

    frontend_url: str = DEFAULT_FRONTEND_URL
    password_setup_path: str = "/password-setup"  # noqa: S105 - a path, not a secret
    portal_url: str = DEFAULT_FRONTEND_URL
    brand_name: str = "e:service"

    mail_backend: Literal["file", "smtp", "console"] = "file"
    mail_dir: Path = Path("var/mail")
    mail_from: str = "e:service <noreply@eservice.example>"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout: float = 10.0
    run_dispatcher: bool = True
    dispatcher_interval: float = Field(default=2.0, gt=0)
    outbox_max_attempts: int = Field(default=8, ge=1)
    outbox_retry_base: timedelta = timedelta(seconds=30)
    outbox_retry_max: timedelta = timedelta(hours=1)
    outbox_batch_size: int = Field(default=10, ge=1, le=500)
    # How long a claimed message stays reserved; a crashed dispatcher's claim runs out then.
    outbox_claim_lease: timedelta = timedelta(minutes=5)

    invitation_ttl: timedelta = timedelta(hours=24)
    reset_ttl: timedelta = timedelta(hours=1)
    invitation_resend_per_hour: int = 3
    invitation_resend_per_day: int = 10
    access_token_ttl: timedelta = timedelta(minutes=10)
    session_idle_ttl: timedelta = timedelta(minutes=30)
    session_ttl: timedelta = timedelta(hours=12)

    pbx_token_ttl: timedelta = timedelta(seconds=60)
    pbx_ui_url: str = DEFAULT_PBX_UI_URL
    pbx_audience: str = "cloud-pbx"
    jwt_issuer: str = "http://127.0.0.1:8000"
    api_audience: str = "eservice-api"
    # The per-process cache of signed-in sessions (app/auth/cache.py), and how long a checked
    # session is answered from it before the database is asked again.
    auth_cache: bool = True
    auth_cache_max_age: timedelta = Field(
        default=timedelta(seconds=5), ge=timedelta(0), le=timedelta(minutes=5)
    )
    # The per-process cache of the contracts that hand-offs open (app/contracts/cache.py).
    contract_cache: bool = True
    contract_cache_max_age: timedelta = Field(
        default=timedelta(seconds=5), ge=timedelta(0), le=timedelta(minutes=5)
    )
    keys_dir: Path = Path("var/keys")
    documents_dir: Path = Path("var/documents")

    cors_origins: list[str] = Field(default_factory=list)
    access_log: bool = False
    log_level: str = "INFO"

    # Login throttling (DESIGN.md section 6).
    login_failures_before_delay: int = 5
    login_delay_step: timedelta = timedelta(seconds=60)
    login_delay_max: timedelta = timedelta(minutes=15)
    login_failures_before_lock: int = 100
    ip_failures_per_window: int = 30
    ip_failure_window: timedelta = timedelta(minutes=15)
    password_reset_per_login_per_hour: int = 3
    password_reset_per_ip_per_hour: int = 20
    registration_failures_per_ip_per_hour: int = 10

    # argon2id, OWASP's recommended minimum: 19 MiB, 2 iterations, 1 lane.
    argon2_memory_cost: int = Field(default=19456, ge=8)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_parallelism: int = Field(default=1, ge=1)
    hash_concurrency: int = Field(default_factory=lambda: usable_cores(), ge=1)

    @field_validator("invitation_ttl")
    @classmethod
    def _invitation_ttl_in_range(cls, value: timedelta) -> timedelta:
        if not timedelta(hours=1) <= value <= timedelta(days=7):
            raise ValueError("must be between 1 hour and 7 days")
        return value

    @field_validator("pbx_token_ttl")
    @classmethod
    def _pbx_ttl_in_range(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=10) <= value <= timedelta(seconds=300):
            raise ValueError("must be between 10 and 300 seconds")
        return value

    @field_validator("frontend_url", "portal_url", "pbx_ui_url", "jwt_issuer")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("pbx_ui_url")
    @classmethod
    def _pbx_ui_url_is_http(cls, value: str) -> str:
        # The hand-off redirects browsers there with a token: only a plain http(s) base URL.
        return http_base_url(value)

    @model_validator(mode="after")
    def _session_ttls_consistent(self) -> "Settings":
        if self.session_idle_ttl > self.session_ttl:
            raise ValueError("session_idle_ttl must not exceed session_ttl")
        return self

    @model_validator(mode="after")
    def _audiences_differ(self) -> "Settings":
        # Access tokens and hand-off tokens share the signing keys and differ by `aud` only:
        # with one audience, an access token would pass as a hand-off token.
        if self.pbx_audience == self.api_audience:
            raise ValueError("pbx_audience must differ from api_audience")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def check_production_safety(self) -> None:
        """Refuse to run in production on defaults that only make sense on a developer machine."""
        if self.environment != "production":
            return
        problems = []
        if self.is_sqlite and not self.allow_sqlite_in_production:
            problems.append("SQLite database (set ESERVICE_ALLOW_SQLITE_IN_PRODUCTION=true)")
        if self.frontend_url == DEFAULT_FRONTEND_URL:
            problems.append("ESERVICE_FRONTEND_URL is the development default")
        elif not self.frontend_url.startswith("https://"):
            # The password-setup link carries a token: it must not travel in clear text.
            problems.append("ESERVICE_FRONTEND_URL is not https")
        if self.portal_url == DEFAULT_FRONTEND_URL:
            problems.append("ESERVICE_PORTAL_URL is the development default")
        if self.jwt_issuer == DEFAULT_FRONTEND_URL:
            problems.append("ESERVICE_JWT_ISSUER is the development default")
        if self.pbx_ui_url == DEFAULT_PBX_UI_URL:
            problems.append("ESERVICE_PBX_UI_URL is the example default")
        if self.mail_backend != "smtp":
            problems.append("mail backend is not smtp")
        if self.smtp_username and not self.smtp_password:
            problems.append("ESERVICE_SMTP_USERNAME without ESERVICE_SMTP_PASSWORD")
        if not any(self.keys_dir.glob("*.pem")):
            problems.append(f"no signing keys in {self.keys_dir} (run `eservice keys rotate`)")
        if problems:
            raise UnsafeProductionSettings(
                "refusing to start in production: " + "; ".join(problems)
            )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
