"""Of concurrent uses of one link exactly one sets the password (PostgreSQL, real commits)."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.core.clock import utcnow
from app.invitations.jobs import send_due_invitations
from app.invitations.models import Invitation, PasswordToken, TokenPurpose
from app.invitations.tokens import consume_token
from app.outbox.models import OutboxMessage
from app.users.models import UserAccount
from app.users.status import UserStatus
from tests.conftest import postgres_only
from tests.factories import create_customer, create_user
from tests.invitations.outbox_helpers import new_token_for

PASSWORDS = [f"gleichzeitiger Versuch Nummer {i:02d}" for i in range(16)]


@postgres_only()
@pytest.mark.committing
async def test_sixteen_concurrent_uses_one_wins(client, database, state):
    for _round in range(20):
        async with database.sessionmaker.begin() as session:
            customer = await create_customer(session)
            user = await create_user(
                session, state, customer, status=UserStatus.INVITED, password=None
            )
            token = await new_token_for(session, user.id, TokenPurpose.INVITATION)

        responses = await asyncio.gather(
            *(
                client.post(
                    "/api/v1/password-setup",
                    json={"token": token, "password": p, "password_confirmation": p},
                )
                for p in PASSWORDS
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] + [410] * 15, [r.text for r in responses if r.status_code >= 500]

        async with database.sessionmaker() as session:
            stored = await session.get(UserAccount, user.id)
            assert stored is not None
            assert stored.status == UserStatus.ACTIVE
            winner = next(
                p for p, r in zip(PASSWORDS, responses, strict=True) if r.status_code == 200
            )
            assert (await state.hasher.verify(winner, stored.password_hash))[0]
            used = await session.scalar(
                select(func.count())
                .select_from(PasswordToken)
                .where(PasswordToken.user_id == user.id, PasswordToken.used_at.is_not(None))
            )
            assert used == 1


@postgres_only()
@pytest.mark.committing
async def test_the_claim_statement_itself_admits_one(database, state):
    """The UPDATE ... RETURNING alone (no later status check) lets exactly one use through."""
    for _round in range(20):
        async with database.sessionmaker.begin() as session:
            customer = await create_customer(session)
            user = await create_user(session, state, customer, status=UserStatus.INVITED)
            token = await new_token_for(session, user.id, TokenPurpose.INVITATION)

        async def claim(token: str) -> bool:
            async with database.sessionmaker.begin() as session:
                claimed = await consume_token(session, token)
                await asyncio.sleep(0.01)  # hold the row lock a moment, as a real setup does
                return claimed is not None

        results = await asyncio.gather(*(claim(token) for _ in range(16)))
        assert results.count(True) == 1


@postgres_only()
@pytest.mark.committing
async def test_several_schedulers_send_each_invitation_once(database, state):
    """`FOR UPDATE SKIP LOCKED`: four schedulers at once, every due invitation goes out once."""
    async with database.sessionmaker.begin() as session:
        customer = await create_customer(session)
        due = utcnow() - timedelta(minutes=1)
        users = []
        for _ in range(30):
            user = await create_user(
                session, state, customer, status=UserStatus.SCHEDULED, password=None
            )
            session.add(Invitation(user_id=user.id, scheduled_for=due, sent_count=0))
            users.append(user.id)

    async def run_scheduler() -> int:
        async with database.sessionmaker.begin() as session:
            sent = await send_due_invitations(session, state, utcnow())
            await asyncio.sleep(0.05)  # keep the claimed rows locked a moment
            return sent

    counts = await asyncio.gather(*(run_scheduler() for _ in range(4)))
    assert sum(counts) == 30
    async with database.sessionmaker() as session:
        mails = (
            await session.execute(
                select(OutboxMessage.user_id, func.count())
                .where(OutboxMessage.kind == "invitation")
                .group_by(OutboxMessage.user_id)
            )
        ).all()
        assert sorted(mails) == sorted((user_id, 1) for user_id in users)
        statuses = (await session.execute(select(UserAccount.status))).scalars().all()
        assert set(statuses) == {UserStatus.INVITED}
