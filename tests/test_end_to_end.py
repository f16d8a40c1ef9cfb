"""The provider's guide, end to end, against a real `eservice serve` process and SMTP server.

Login ▶ create user account ▶ user activates account ▶ login e:service ▶ login PBX: the
portal administrator of the demo customer creates a PBX administrator, the invitation
arrives over SMTP, the link sets the password, and the new user opens the PBX with a
hand-off token that verifies against the published JWKS alone.
"""

import asyncio
import email
import email.policy
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import httpx
import jwt
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

ESERVICE = str(Path(sys.executable).with_name("eservice"))
ADMIN_PASSWORD = "demo password for the guide 2300229"
NEW_PASSWORD = "Telefonanlage sicher einrichten 2026"
PBX_URL = "https://pbx.example.net"
FRONTEND_URL = "https://portal.example.com"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Mailbox:
    """What the SMTP server received."""

    messages: list[EmailMessage] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.arrived.set()
        return "250 OK"

    async def wait_for(self, recipient: str) -> EmailMessage:
        while True:
            for message in self.messages:
                if message["To"] and recipient in str(message["To"]):
                    return message
            self.arrived.clear()
            await self.arrived.wait()


@pytest.fixture
async def mailbox() -> AsyncIterator[tuple[Mailbox, int]]:
    box = Mailbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(box), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield box, port
    server.close()
    await server.wait_closed()


def server_environment(tmp_path: Path, database_url: str, smtp_port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ESERVICE_")}
    env.update(
        ESERVICE_ENVIRONMENT="development",
        ESERVICE_DATABASE_URL=database_url,
        ESERVICE_KEYS_DIR=str(tmp_path / "keys"),
        ESERVICE_DOCUMENTS_DIR=str(tmp_path / "documents"),
        ESERVICE_MAIL_BACKEND="smtp",
        ESERVICE_SMTP_HOST="127.0.0.1",
        ESERVICE_SMTP_PORT=str(smtp_port),
        ESERVICE_DISPATCHER_INTERVAL="0.2",
        ESERVICE_FRONTEND_URL=FRONTEND_URL,
        ESERVICE_PORTAL_URL=FRONTEND_URL,
        ESERVICE_PBX_UI_URL=PBX_URL,
        ESERVICE_ARGON2_MEMORY_COST="1024",
        ESERVICE_ARGON2_TIME_COST="1",
        ESERVICE_LOG_LEVEL="DEBUG",
    )
    return env


@pytest.fixture
async def server(
    tmp_path: Path, empty_database_url: str, mailbox: tuple[Mailbox, int]
) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    """`eservice demo`, then `eservice serve` on a free port; yields a client and its log."""
    env = server_environment(tmp_path, empty_database_url, mailbox[1])
    demo = await asyncio.create_subprocess_exec(
        ESERVICE, "demo", "--password", ADMIN_PASSWORD, env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await demo.communicate()
    assert demo.returncode == 0, output.decode()

    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            ESERVICE, "serve", "--port", str(port), env=env, cwd=tmp_path,
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            async with asyncio.timeout(30):
                while True:
                    assert process.returncode is None, log_path.read_text()
                    try:
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
            yield client, log_path
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            await process.wait()


async def login(client: httpx.AsyncClient, login_id: str, password: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/login", json={"login": login_id, "password": password}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_the_guide_from_invitation_to_the_pbx(
    server: tuple[httpx.AsyncClient, Path], mailbox: tuple[Mailbox, int]
) -> None:
    client, log_path = server
    box, _ = mailbox

    # 1. The portal administrator logs in and creates the PBX administrator.
    admin = await login(client, "customer2300229", ADMIN_PASSWORD)
    created = await client.post(
        "/api/v1/users",
        headers=admin,
        json={
            "login": "Admin.Telefonanlage2",
            "role": "pbx_admin",
            "first_name": "Petra",
            "last_name": "Fernsprech",
            "email": "petra.fernsprech@example.com",
        },
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["status"] == "invited"
    assert created.headers["Location"].endswith(f"/api/v1/users/{user['id']}")

    # 2. The invitation arrives over SMTP with the login ID and a set-password link.
    async with asyncio.timeout(30):
        mail = await box.wait_for("petra.fernsprech@example.com")
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "Admin.Telefonanlage2" in text
    assert "Petra" in text
    match = re.search(re.escape(FRONTEND_URL) + r"/password-setup#token=([A-Za-z0-9_-]+)", text)
    assert match, text
    token = match.group(1)

    # 3. Inspecting the link does not consume it (mail scanners open links).
    for _ in range(2):
        inspected = await client.post("/api/v1/password-tokens/inspect", json={"token": token})
        assert inspected.status_code == 200, inspected.text
        assert inspected.json()["login"] == "Admin.Telefonanlage2"
        assert inspected.json()["purpose"] == "invitation"

    # 4. Mismatch and weak passwords are refused, and the link still works after them.
    mismatch = await client.post(
        "/api/v1/password-setup",
        json={"token": token, "password": NEW_PASSWORD, "password_confirmation": "other"},
    )
    assert mismatch.status_code == 422
    assert mismatch.json()["code"] == "password_mismatch"
    weak = "mein Admin.Telefonanlage2 Kennwort"
    refused = await client.post(
        "/api/v1/password-setup",
        json={"token": token, "password": weak, "password_confirmation": weak},
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "password_policy"

    # 5. The password is set; the link is dead afterwards; the account is active.
    setup = await client.post(
        "/api/v1/password-setup",
        json={"token": token, "password": NEW_PASSWORD, "password_confirmation": NEW_PASSWORD},
    )
    assert setup.status_code == 200, setup.text
    assert setup.json() == {"message": "Ihr Kennwort wurde festgelegt.", "login": user["login"]}
    again = await client.post(
        "/api/v1/password-setup",
        json={"token": token, "password": NEW_PASSWORD, "password_confirmation": NEW_PASSWORD},
    )
    assert again.status_code == 410
    assert again.json()["code"] == "token_invalid"
    shown = (await client.get(f"/api/v1/users/{user['id']}", headers=admin)).json()
    assert shown["status"] == "active"
    assert shown["invitation"]["delivery"] == "sent"

    # 6. The new user logs in, picks the contract and is handed over to the PBX.
    pbx_admin = await login(client, "admin.telefonanlage2", NEW_PASSWORD)
    contracts = (await client.get("/api/v1/contracts", headers=pbx_admin)).json()
    contract = next(item for item in contracts["items"] if item["product"] == "cloud.phone")
    assert contract["can_open_pbx"] is True
    handoff = await client.post(
        f"/api/v1/contracts/{contract['id']}/pbx-sessions", headers=pbx_admin
    )
    assert handoff.status_code == 201, handoff.text
    redirect_url = handoff.json()["redirect_url"]
    assert redirect_url.startswith(f"{PBX_URL}/sso?token=")

    # 7. The PBX verifies the token with an independent library and the JWKS alone.
    jwks = jwt.PyJWKSet.from_dict((await client.get("/.well-known/jwks.json")).json())
    hand_off_token = redirect_url.split("token=", 1)[1]
    kid = jwt.get_unverified_header(hand_off_token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims = jwt.decode(
        hand_off_token,
        key=key,
        algorithms=["ES256"],
        audience="cloud-pbx",
        options={"require": ["exp", "iat", "nbf", "jti", "aud", "iss", "sub"]},
    )
    assert claims["login"] == "Admin.Telefonanlage2"
    assert claims["contract_number"] == contract["contract_number"]
    assert claims["customer_number"] == "2300229"
    assert claims["exp"] - claims["iat"] <= 300

    # Nothing secret reached the server's log.
    await asyncio.sleep(0.2)
    log = log_path.read_text()
    for secret in (ADMIN_PASSWORD, NEW_PASSWORD, token, hand_off_token):
        leaks = [line for line in log.splitlines() if secret in line]
        assert not leaks, leaks
    assert admin["Authorization"].split()[1] not in log
