"""Outbox behaviour that needs real commits: the transactional outbox, concurrent dispatchers."""

import asyncio
from collections import Counter
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from app.core.db import Database, create_engine
from app.core.state import AppState
from app.outbox.dispatcher import dispatch_once
from app.outbox.models import DeliveryState, OutboxMessage
from app.outbox.service import enqueue_email
from app.users.models import UserAccount
from tests.conftest import postgres_only
from tests.factories import create_customer, unique
from tests.outbox.helpers import count_outbox, invite
from tests.outbox.smtp_server import SmtpServer


class Boom(Exception):
    pass


@pytest.mark.committing
async def test_exception_after_user_insert_leaves_neither_user_nor_mail(
    state: AppState, smtp: SmtpServer
) -> None:
    async with state.database.sessionmaker.begin() as session:
        customer = await create_customer(session)

    async def create_then_fail() -> None:
        async with state.database.sessionmaker.begin() as session:
            _user, invitation = await invite(session, state, customer)
            assert invitation.outbox_message_id is not None  # the mail was in the outbox
            raise Boom

    with pytest.raises(Boom):
        await create_then_fail()

    async with state.database.sessionmaker() as session:
        users = (await session.execute(select(func.count()).select_from(UserAccount))).scalar()
        assert users == 0
        assert await count_outbox(session) == 0
    assert await dispatch_once(state) == 0
    assert smtp.handler.messages == []

    # The same unit of work without the exception commits both, and the mail goes out.
    async with state.database.sessionmaker.begin() as session:
        user, _invitation = await invite(session, state, customer)
    assert await dispatch_once(state) == 1
    assert [str(message["To"]) for message in smtp.handler.messages] == [user.email]


@postgres_only()
@pytest.mark.committing
@pytest.mark.parametrize("round_", range(3))
async def test_two_dispatchers_at_once_send_each_message_once(
    state: AppState, smtp: SmtpServer, round_: int
) -> None:
    total = 40
    async with state.database.sessionmaker.begin() as session:
        for _ in range(total):
            await enqueue_email(
                session,
                kind="password_changed",
                recipient=f"{unique('u')}@example.com",
                language="de",
                context={
                    "brand_name": "e:service",
                    "portal_url": "https://portal.example.com",
                    "login": "x.y",
                    "first_name": "A",
                    "last_name": "B",
                    "changed_at": "heute",
                },
            )
    smtp.handler.delay = 0.005  # keeps both dispatchers busy at the same time
    settings = state.settings.model_copy(update={"outbox_batch_size": 3})
    # Two engines, as two processes would have.
    engines = [create_engine(settings) for _ in range(2)]
    dispatchers = [
        replace(state, settings=settings, database=Database(engine)) for engine in engines
    ]

    async def drain(dispatcher: AppState) -> int:
        attempted = 0
        while (count := await dispatch_once(dispatcher)) > 0:
            attempted += count
        return attempted

    try:
        attempted = await asyncio.gather(*(drain(dispatcher) for dispatcher in dispatchers))
    finally:
        for engine in engines:
            await engine.dispose()

    assert sum(attempted) == total
    assert all(count > 0 for count in attempted)  # both really took part
    counts = Counter(smtp.handler.message_ids())
    assert len(counts) == total
    assert set(counts.values()) == {1}
    async with state.database.sessionmaker() as session:
        states = (await session.execute(select(OutboxMessage.state, OutboxMessage.attempts))).all()
    assert {(row.state, row.attempts) for row in states} == {(DeliveryState.SENT, 1)}
