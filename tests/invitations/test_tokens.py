from datetime import timedelta

from sqlalchemy import select

from app.core.clock import clock
from app.core.security import hash_token
from app.invitations.models import PasswordToken, TokenPurpose
from app.invitations.tokens import consume_token, find_usable_token, issue_token
from tests.factories import create_customer, create_user


async def test_only_the_hash_is_stored_and_a_new_token_voids_the_old(session, state):
    user = await create_user(session, state, await create_customer(session))
    first, row = await issue_token(session, user.id, TokenPurpose.INVITATION, timedelta(hours=24))
    assert len(first) >= 43
    assert row.token_hash == hash_token(first) != first
    stored = (await session.execute(select(PasswordToken.token_hash))).scalars().all()
    assert first not in stored

    second, _ = await issue_token(session, user.id, TokenPurpose.RESET, timedelta(hours=1))
    assert await find_usable_token(session, first) is None
    assert (await find_usable_token(session, second)) is not None


async def test_consumed_once_and_purpose_returned(session, state):
    user = await create_user(session, state, await create_customer(session))
    token, _ = await issue_token(session, user.id, TokenPurpose.RESET, timedelta(hours=1))
    assert await consume_token(session, token) == (user.id, TokenPurpose.RESET)
    assert await consume_token(session, token) is None
    assert await find_usable_token(session, token) is None


async def test_expired_token_is_not_usable(session, state):
    user = await create_user(session, state, await create_customer(session))
    token, _ = await issue_token(session, user.id, TokenPurpose.RESET, timedelta(hours=1))
    clock.advance(timedelta(hours=1, seconds=1))
    assert await find_usable_token(session, token) is None
    assert await consume_token(session, token) is None


async def test_unknown_token(session):
    assert await consume_token(session, "no-such-token") is None
