"""Signing keys: the JWKS document, rotation with overlap, production without keys."""

from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.models import Contract
from app.core.clock import clock, utcnow
from app.core.config import Settings, UnsafeProductionSettings
from app.core.db import Database
from app.core.permissions import Role
from app.core.signing import KeyRing, NoSigningKey
from app.core.state import AppState
from app.main import create_app
from app.pbx.router import jwks_max_age
from tests.cli_runner import eservice_settings, invoke_eservice
from tests.factories import auth_headers, create_contract, create_customer, create_user
from tests.pbx.jose_check import fetch_jwks, token_from_url, verify_with_jwks

ISSUER, AUDIENCE = "http://testserver", "cloud-pbx"


async def test_jwks_holds_public_keys_only_with_a_short_cache_lifetime(
    client: httpx.AsyncClient, state: AppState
) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    cache = response.headers["cache-control"]
    assert cache.startswith("public, max-age=")
    max_age = int(cache.rsplit("=", 1)[1])
    assert 0 < max_age < state.keys.overlap.total_seconds()
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert set(key) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
        assert "d" not in key
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    assert keys[0]["kid"] == state.keys.signer.kid


async def pbx_admin_with_contract(
    session: AsyncSession, state: AppState
) -> tuple[Contract, dict[str, str]]:
    """A contract of a new customer, and the bearer header of its PBX administrator."""
    customer = await create_customer(session)
    user = await create_user(session, state, customer, role=Role.PBX_ADMIN)
    contract = await create_contract(session, customer)
    return contract, await auth_headers(session, state, user)


@pytest.fixture
def rotating_app(settings: Settings, database: Database, tmp_path: Path):  # type: ignore[no-untyped-def]
    """An app with a key folder of its own, so rotating does not disturb other tests."""
    own = settings.model_copy(update={"keys_dir": tmp_path / "keys"})
    return create_app(own, database, run_background=False)


async def test_jwks_headers_stay_exact_across_polls_and_rotation(rotating_app) -> None:  # type: ignore[no-untyped-def]
    state: AppState = rotating_app.state.eservice
    transport = httpx.ASGITransport(app=rotating_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

        async def poll() -> httpx.Response:
            response = await client.get("/.well-known/jwks.json")
            assert response.status_code == 200
            assert response.headers.get_list("content-type") == ["application/json"]
            assert response.headers.get_list("cache-control") == [
                f"public, max-age={jwks_max_age(state)}"
            ]
            assert response.headers.get_list("content-length") == [str(len(response.content))]
            # The headers every answer gets are added once per answer, not once per poll.
            assert response.headers.get_list("x-content-type-options") == ["nosniff"]
            assert len(response.headers.get_list("x-request-id")) == 1
            return response

        first, second = await poll(), await poll()
        assert first.content == second.content
        assert first.headers["x-request-id"] != second.headers["x-request-id"]
        old_kid = state.keys.signer.kid

        new_key, _ = state.keys.rotate()
        rotated = await poll()
        assert [key["kid"] for key in rotated.json()["keys"]] == [new_key.kid, old_kid]
        assert len(rotated.content) > len(first.content)


async def test_rotation_keeps_old_tokens_verifiable_until_the_overlap_ends(
    rotating_app, session: AsyncSession
) -> None:  # type: ignore[no-untyped-def]
    state: AppState = rotating_app.state.eservice
    contract, headers = await pbx_admin_with_contract(session, state)
    transport = httpx.ASGITransport(app=rotating_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

        async def handoff() -> str:
            response = await client.post(
                f"/api/v1/contracts/{contract.id}/pbx-sessions", headers=headers
            )
            assert response.status_code == 201
            return token_from_url(response.json()["redirect_url"])

        old_kid = state.keys.signer.kid
        old_token = await handoff()
        assert jwt.get_unverified_header(old_token)["kid"] == old_kid

        new_key, removed = state.keys.rotate()
        assert removed == []
        assert new_key.kid != old_kid

        jwks = await fetch_jwks(client)
        assert [key["kid"] for key in jwks["keys"]] == [new_key.kid, old_kid]
        verify_with_jwks(old_token, jwks, audience=AUDIENCE, issuer=ISSUER)

        new_token = await handoff()
        assert jwt.get_unverified_header(new_token)["kid"] == new_key.kid
        verify_with_jwks(new_token, jwks, audience=AUDIENCE, issuer=ISSUER)
        # The access token signed by the old key still works too.
        assert (await client.get("/api/v1/contracts", headers=headers)).status_code == 200

        # The old key is retired when the new one was made; it stays published for the overlap.
        retired_at = new_key.created_at
        overlap = state.keys.overlap
        clock.advance(retired_at + overlap - timedelta(seconds=1) - utcnow())
        kids = [key["kid"] for key in (await fetch_jwks(client))["keys"]]
        assert kids == [new_key.kid, old_kid]

        clock.advance(timedelta(seconds=2))
        kids = [key["kid"] for key in (await fetch_jwks(client))["keys"]]
        assert kids == [new_key.kid]
        assert [row["state"] for row in state.keys.describe()] == ["expired", "signing"]

        # The next rotation deletes the expired key's file.
        newest, removed = state.keys.rotate()
        assert [key.kid for key in removed] == [old_kid]
        assert {key["kid"] for key in (await fetch_jwks(client))["keys"]} == {
            newest.kid,
            new_key.kid,
        }


async def test_rotation_by_another_process_is_picked_up_by_the_running_service(
    rotating_app, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    state: AppState = rotating_app.state.eservice
    # The service looks at its key folder at most every RELOAD_INTERVAL seconds.
    monkeypatch.setattr(state.keys, "RELOAD_INTERVAL", 0.0)
    contract, headers = await pbx_admin_with_contract(session, state)
    transport = httpx.ASGITransport(app=rotating_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        old_kid = state.keys.signer.kid
        # What `eservice keys rotate` does: its own ring over the same folder.
        operator_ring = KeyRing(state.keys.keys_dir, state.keys.overlap)
        new_key, _ = operator_ring.rotate()

        kids = [key["kid"] for key in (await fetch_jwks(client))["keys"]]
        assert kids == [new_key.kid, old_kid]
        response = await client.post(
            f"/api/v1/contracts/{contract.id}/pbx-sessions", headers=headers
        )
        assert response.status_code == 201
        token = token_from_url(response.json()["redirect_url"])
        assert jwt.get_unverified_header(token)["kid"] == new_key.kid
        # The access token signed before the rotation still works.
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 200


async def test_stray_and_damaged_key_files_are_skipped(
    rotating_app, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    state: AppState = rotating_app.state.eservice
    monkeypatch.setattr(state.keys, "RELOAD_INTERVAL", 0.0)
    contract, headers = await pbx_admin_with_contract(session, state)
    good_kid = state.keys.signer.kid
    folder = state.keys.keys_dir
    (folder / "backup.pem").write_text("not a key")
    (folder / "20991231T235959Z-damaged.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\n")
    (folder / "20991231T235958Z-rsa.pem").write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    transport = httpx.ASGITransport(app=rotating_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        jwks = await fetch_jwks(client)
        assert [key["kid"] for key in jwks["keys"]] == [good_kid]
        response = await client.post(
            f"/api/v1/contracts/{contract.id}/pbx-sessions", headers=headers
        )
        assert response.status_code == 201
        verify_with_jwks(
            token_from_url(response.json()["redirect_url"]),
            jwks,
            audience=AUDIENCE,
            issuer=ISSUER,
        )


def test_a_folder_that_empties_keeps_the_loaded_keys(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys", timedelta(minutes=10))
    key = ring.generate()
    key.path.unlink()
    ring.load()
    assert ring.signer.kid == key.kid
    assert not list((tmp_path / "keys").glob("*.partial"))


def test_two_keys_made_in_one_second_keep_their_order(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path / "keys", timedelta(minutes=10))
    keys = [ring.generate() for _ in range(3)]
    # File names carry whole seconds: each new key must still sort after the previous one.
    assert [key.created_at for key in keys] == sorted({key.created_at for key in keys})
    assert ring.signer.kid == keys[-1].kid
    assert [row["kid"] for row in ring.describe()] == [key.kid for key in keys]


def test_production_refuses_to_start_without_keys(tmp_path: Path, database_url: str) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="production",
        database_url="postgresql+asyncpg://db.example/eservice",
        keys_dir=tmp_path / "no-keys",
        frontend_url="https://portal.example.com",
        jwt_issuer="https://portal.example.com",
        portal_url="https://portal.example.com",
        mail_backend="smtp",
        pbx_ui_url="https://pbx.provider.example",
    )
    with pytest.raises(UnsafeProductionSettings, match="no signing keys"):
        settings.check_production_safety()
    with pytest.raises(UnsafeProductionSettings, match="no signing keys"):
        create_app(settings, run_background=False)
    with pytest.raises(NoSigningKey):
        KeyRing(settings.keys_dir, timedelta(minutes=1)).ensure_key(may_generate=False)
    assert not (tmp_path / "no-keys").exists()

    KeyRing(settings.keys_dir, timedelta(minutes=1)).generate()
    settings.check_production_safety()  # with a key it may start
    with pytest.raises(UnsafeProductionSettings, match="PBX_UI_URL"):
        settings.model_copy(
            update={"pbx_ui_url": "https://pbx.example.net"}
        ).check_production_safety()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pbx_token_ttl", timedelta(seconds=301)),
        ("pbx_token_ttl", timedelta(seconds=0)),
        ("pbx_ui_url", "javascript:alert(1)"),
        ("pbx_ui_url", "ftp://pbx.example.com"),
        ("pbx_ui_url", "https://user:secret@pbx.example.com"),
        ("pbx_ui_url", "https://pbx.example.com/?next=https://evil.example"),
        ("pbx_audience", "eservice-api"),
    ],
)
def test_settings_refuse_unsafe_handoff_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        Settings(_env_file=None, **{field: value})  # type: ignore[call-arg]


def test_keys_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with eservice_settings(monkeypatch, cwd=str(tmp_path), keys_dir=str(tmp_path / "keys")):
        listed = invoke_eservice(monkeypatch, "keys", "list")
        assert listed.exit_code == 0
        assert "no signing keys" in listed.stdout

        first = invoke_eservice(monkeypatch, "keys", "rotate")
        assert first.exit_code == 0, first.stderr
        second = invoke_eservice(monkeypatch, "keys", "rotate")
        assert second.exit_code == 0, second.stderr
        first_kid = first.stdout.split()[3]
        second_kid = second.stdout.split()[3]

        listed = invoke_eservice(monkeypatch, "keys", "list")
        lines = listed.stdout.splitlines()
        assert lines[1].split()[:2] == [second_kid, "signing"]
        assert lines[2].split()[:2] == [first_kid, "published"]
        pem_files = list((tmp_path / "keys").glob("*.pem"))
        assert len(pem_files) == 2
        assert all(path.stat().st_mode & 0o077 == 0 for path in pem_files)

        bad = invoke_eservice(monkeypatch, "keys", "spin")
        assert bad.exit_code != 0
        assert len(bad.stderr.strip().splitlines()) == 1
