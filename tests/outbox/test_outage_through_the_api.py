"""An SMTP outage does not cost an invitation: accounts are created, the mails wait."""

from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import clock
from app.core.state import AppState
from app.outbox.dispatcher import dispatch_once
from tests.factories import auth_headers
from tests.outbox.smtp_server import SmtpServer
from tests.users.helpers import make_tenant, new_user_body


async def test_invitations_created_during_an_outage_arrive_once_afterwards(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, smtp: SmtpServer
) -> None:
    k = 4
    await smtp.stop()
    tenant = await make_tenant(session, state)
    ids = []
    for n in range(k):
        body = new_user_body(login=f"Telefon.Outage{n}", email=f"outage{n}@example.com")
        response = await client.post("/api/v1/users", json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])

    assert await dispatch_once(state) == k  # every attempt fails: the server is down
    for user_id in ids:
        shown = await client.get(f"/api/v1/users/{user_id}", headers=tenant.headers)
        assert shown.status_code == 200, shown.text
        assert shown.json()["invitation"]["delivery"] == "pending"

    await smtp.start()
    clock.advance(timedelta(seconds=31))
    assert await dispatch_once(state) == k
    clock.advance(timedelta(hours=2))
    assert await dispatch_once(state) == 0

    recipients = sorted(str(message["To"]) for message in smtp.handler.messages)
    assert recipients == [f"outage{n}@example.com" for n in range(k)]
    headers = await auth_headers(session, state, tenant.admin)  # hours later: a new login
    for user_id in ids:
        shown = await client.get(f"/api/v1/users/{user_id}", headers=headers)
        assert shown.status_code == 200, shown.text
        assert shown.json()["invitation"]["delivery"] == "sent"
