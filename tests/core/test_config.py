"""Settings: defaults of DESIGN §5, range checks, and production's refusal of unsafe defaults."""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.core.config import Settings, UnsafeProductionSettings
from app.core.signing import KeyRing
from app.main import create_app


def make(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def signing_keys(tmp_path: Path) -> Path:
    keys = tmp_path / "keys"
    KeyRing(keys, timedelta(minutes=5)).ensure_key(may_generate=True)
    return keys


def safe_production(keys_dir: Path, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "environment": "production",
        "database_url": "postgresql+asyncpg://eservice@db.internal/eservice",
        "frontend_url": "https://portal.example.com",
        "portal_url": "https://portal.example.com",
        "jwt_issuer": "https://portal.example.com",
        "mail_backend": "smtp",
        "pbx_ui_url": "https://pbx.provider.example",
        "keys_dir": keys_dir,
    }
    values.update(overrides)
    return values


def test_defaults_match_the_design(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("ESERVICE_")]:
        monkeypatch.delenv(name)
    settings = make()
    assert settings.environment == "development"
    assert settings.database_url == "sqlite+aiosqlite:///./var/eservice.db"
    assert settings.frontend_url == "http://127.0.0.1:8000"
    assert settings.password_setup_path == "/password-setup"
    assert settings.mail_backend == "file"
    assert settings.invitation_ttl == timedelta(hours=24)
    assert settings.reset_ttl == timedelta(hours=1)
    assert settings.access_token_ttl == timedelta(minutes=10)
    assert settings.session_idle_ttl == timedelta(minutes=30)
    assert settings.session_ttl == timedelta(hours=12)
    assert settings.pbx_token_ttl == timedelta(seconds=60)
    assert settings.pbx_audience == "cloud-pbx"
    assert settings.keys_dir == Path("var/keys")
    assert settings.cors_origins == []


def test_environment_variables_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESERVICE_FRONTEND_URL", "https://portal.example.com/")
    monkeypatch.setenv("ESERVICE_INVITATION_TTL", "PT48H")
    monkeypatch.setenv("ESERVICE_CORS_ORIGINS", '["https://app.example.com"]')
    settings = make()
    assert settings.frontend_url == "https://portal.example.com"  # trailing slash dropped
    assert settings.invitation_ttl == timedelta(hours=48)
    assert settings.cors_origins == ["https://app.example.com"]


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ESERVICE_BRAND_NAME=Beispiel Telekom\n", encoding="utf-8")
    assert Settings(_env_file=env_file).brand_name == "Beispiel Telekom"  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "values",
    [
        {"invitation_ttl": timedelta(minutes=59)},
        {"invitation_ttl": timedelta(days=7, seconds=1)},
        {"pbx_token_ttl": timedelta(seconds=301)},
        {"pbx_token_ttl": timedelta(seconds=5)},
        {"session_idle_ttl": timedelta(hours=13)},
        {"mail_backend": "carrier-pigeon"},
        {"environment": "staging"},
        {"argon2_time_cost": 0},
    ],
)
def test_out_of_range_values_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        make(**values)


def test_safe_production_settings_pass(signing_keys: Path) -> None:
    make(**safe_production(signing_keys)).check_production_safety()


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"database_url": "sqlite+aiosqlite:///./var/eservice.db"}, "SQLite"),
        ({"frontend_url": "http://127.0.0.1:8000"}, "FRONTEND_URL is the development default"),
        ({"frontend_url": "http://portal.example.com"}, "FRONTEND_URL is not https"),
        ({"portal_url": "http://127.0.0.1:8000"}, "PORTAL_URL is the development default"),
        ({"jwt_issuer": "http://127.0.0.1:8000"}, "JWT_ISSUER is the development default"),
        ({"mail_backend": "file"}, "mail backend is not smtp"),
        ({"smtp_username": "relay"}, "SMTP_USERNAME without"),
        ({"pbx_ui_url": "https://pbx.example.net"}, "PBX_UI_URL is the example default"),
    ],
)
def test_production_refuses_unsafe_defaults(
    signing_keys: Path, overrides: dict[str, Any], reason: str
) -> None:
    settings = make(**safe_production(signing_keys, **overrides))
    with pytest.raises(UnsafeProductionSettings, match=reason):
        settings.check_production_safety()


def test_production_refuses_to_start_without_signing_keys(tmp_path: Path) -> None:
    settings = make(**safe_production(tmp_path / "empty"))
    with pytest.raises(UnsafeProductionSettings, match="no signing keys"):
        settings.check_production_safety()
    with pytest.raises(UnsafeProductionSettings):
        create_app(settings)
    assert not (tmp_path / "empty").exists() or not any((tmp_path / "empty").iterdir())


def test_sqlite_in_production_only_when_allowed(signing_keys: Path) -> None:
    settings = make(
        **safe_production(
            signing_keys, database_url="sqlite+aiosqlite:///./x.db", allow_sqlite_in_production=True
        )
    )
    settings.check_production_safety()


def test_development_tolerates_the_defaults(tmp_path: Path) -> None:
    make(keys_dir=tmp_path / "none").check_production_safety()


def test_every_setting_is_documented() -> None:
    text = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`{name.upper()}`" not in text]
    assert not missing, f"add to docs/configuration.md: {missing}"


def test_hash_concurrency_defaults_to_the_cores_the_process_may_use() -> None:
    assert make().hash_concurrency == len(os.sched_getaffinity(0))
    original = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(original)})
    try:
        assert make().hash_concurrency == 1
    finally:
        os.sched_setaffinity(0, original)
