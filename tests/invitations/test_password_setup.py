"""Inspecting a link and setting the password with it, over HTTP."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.auth.sessions import start_session
from app.core.clock import clock
from app.core.errors import Unauthenticated
from app.core.permissions import Role
from app.customers.models import Customer, EServiceState
from app.invitations.models import Invitation, PasswordToken, TokenPurpose
from app.invitations.service import send_invitation
from app.users.models import UserAccount
from app.users.status import UserStatus
from tests.auth.helpers import log_in
from tests.factories import create_customer, create_user
from tests.invitations.outbox_helpers import new_token_for, queued_mails, token_in

NEW_PASSWORD = "lila Laterne am Rheinufer 7"


async def _invited(session, state, **kwargs):
    customer = kwargs.pop("customer", None) or await create_customer(session)
    user = await create_user(
        session, state, customer, status=UserStatus.INVITED, password=None, **kwargs
    )
    await send_invitation(session, state.settings, user)
    [mail] = await queued_mails(session, user.id, "invitation")
    return user, token_in(mail)


async def _reload(session, model, key):
    return (
        await session.execute(
            select(model)
            .where(model.__mapper__.primary_key[0] == key)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()


def _setup(token, password=NEW_PASSWORD, confirmation=None):
    return {
        "token": token,
        "password": password,
        "password_confirmation": password if confirmation is None else confirmation,
    }


async def test_inspect_does_not_consume(client, session, state):
    _user, token = await _invited(session, state, login="Admin.Telefonanlage1")
    for _ in range(3):
        response = await client.post("/api/v1/password-tokens/inspect", json={"token": token})
        assert response.status_code == 200
    body = response.json()
    assert body["purpose"] == "invitation"
    assert body["login"] == "Admin.Telefonanlage1"
    assert (body["first_name"], body["last_name"]) == ("Erika", "Mustermann")
    assert response.headers["cache-control"] == "no-store"
    response = await client.post("/api/v1/password-setup", json=_setup(token))
    assert response.status_code == 200


async def test_setup_activates_and_kills_the_token(client, session, state):
    user, token = await _invited(session, state)
    response = await client.post("/api/v1/password-setup", json=_setup(token))
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Ihr Kennwort wurde festgelegt.", "login": user.login}

    user = await _reload(session, UserAccount, user.id)
    assert user.status == UserStatus.ACTIVE
    assert user.password_hash is not None
    assert NEW_PASSWORD not in user.password_hash
    assert (await state.hasher.verify(NEW_PASSWORD, user.password_hash))[0]
    invitation = await _reload(session, Invitation, user.id)
    assert invitation.accepted_at is not None

    again = await client.post("/api/v1/password-setup", json=_setup(token))
    assert again.status_code == 410
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["code"] == "token_invalid"
    inspect = await client.post("/api/v1/password-tokens/inspect", json={"token": token})
    assert inspect.status_code == 410

    events = (
        await session.execute(select(AuditEvent.action).where(AuditEvent.target_id == str(user.id)))
    ).scalars()
    assert "password.set" in set(events)


@pytest.mark.parametrize(
    ("password", "confirmation", "code"),
    [
        (NEW_PASSWORD, NEW_PASSWORD + "x", "password_mismatch"),
        ("short pass 1", None, "password_policy"),
        ("x" * 129, None, "password_policy"),
        ("iloveyou", None, "password_policy"),
        ("mein Mustermann geheimnis", None, "password_policy"),
        ("Mein e:service Zugang 2026!", None, "password_policy"),
    ],
)
async def test_refused_passwords_do_not_consume(
    client, session, state, password, confirmation, code
):
    _user, token = await _invited(session, state)
    response = await client.post(
        "/api/v1/password-setup", json=_setup(token, password, confirmation)
    )
    assert response.status_code == 422
    assert response.json()["code"] == code
    assert password not in response.text
    # The link still works.
    assert (
        await client.post("/api/v1/password-tokens/inspect", json={"token": token})
    ).status_code == 200
    assert (await client.post("/api/v1/password-setup", json=_setup(token))).status_code == 200


async def test_expired_and_unknown_tokens(client, session, state):
    _user, token = await _invited(session, state)
    clock.advance(state.settings.invitation_ttl + timedelta(seconds=1))
    for path, body in [
        ("/api/v1/password-tokens/inspect", {"token": token}),
        ("/api/v1/password-setup", _setup(token)),
        ("/api/v1/password-tokens/inspect", {"token": "A" * 43}),
        ("/api/v1/password-setup", _setup("A" * 43)),
    ]:
        response = await client.post(path, json=body)
        assert response.status_code == 410, path
        assert response.json()["code"] == "token_invalid"


async def test_bad_bodies_are_422(client):
    for body in [
        {},
        {"token": ""},
        {"token": "a" * 257},
        {"token": "abc", "extra": 1},
    ]:
        response = await client.post("/api/v1/password-tokens/inspect", json=body)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_error"
    response = await client.post("/api/v1/password-setup", json={"token": "x", "password": "y"})
    assert response.status_code == 422


async def test_a_resent_invitation_voids_the_old_link(client, session, state):
    user, old = await _invited(session, state)
    await send_invitation(session, state.settings, user)
    # The unsent mail with the dead link is withdrawn; only the new link goes out.
    [mail] = await queued_mails(session, user.id, "invitation")
    new = token_in(mail)
    assert new != old
    assert (await client.post("/api/v1/password-setup", json=_setup(old))).status_code == 410
    assert (await client.post("/api/v1/password-setup", json=_setup(new))).status_code == 200


async def test_disabled_account_cannot_use_its_link(client, session, state):
    user, token = await _invited(session, state)
    user.status = UserStatus.DISABLED
    await session.flush()
    response = await client.post("/api/v1/password-setup", json=_setup(token))
    assert response.status_code == 410
    assert (await _reload(session, UserAccount, user.id)).password_hash is None


async def test_reset_token_unlocks_ends_sessions_and_notifies(client, session, state):
    customer = await create_customer(session)
    user = await create_user(session, state, customer, status=UserStatus.LOCKED)
    old_session = await start_session(state, session, user)
    token = await new_token_for(session, user.id, TokenPurpose.RESET, hours=1)
    clock.advance(timedelta(seconds=1))
    response = await client.post("/api/v1/password-setup", json=_setup(token))
    assert response.status_code == 200, response.text
    user = await _reload(session, UserAccount, user.id)
    assert user.status == UserStatus.ACTIVE
    assert user.sessions_valid_from is not None
    with pytest.raises(Unauthenticated):
        await state.authenticate(old_session.access_token)
    [notice] = await queued_mails(session, user.id, "password_changed")
    assert user.login in notice.body_text


async def test_invitation_token_does_not_serve_an_active_account(client, session, state):
    user = await create_user(session, state, await create_customer(session))
    token = await new_token_for(session, user.id, TokenPurpose.INVITATION)
    assert (await client.post("/api/v1/password-setup", json=_setup(token))).status_code == 410
    unused = (
        await session.execute(select(PasswordToken.used_at).where(PasswordToken.user_id == user.id))
    ).scalar_one()
    assert unused is None


async def test_setup_activates_a_pending_customer(client, session, state):
    customer = await create_customer(session, state=EServiceState.PENDING)
    _pbx_user, pbx_token = await _invited(session, state, customer=customer)
    _admin, admin_token = await _invited(
        session, state, customer=customer, role=Role.CUSTOMER_PORTAL_ADMIN
    )
    # A PBX admin setting his password does not activate the customer's e:service.
    assert (await client.post("/api/v1/password-setup", json=_setup(pbx_token))).status_code == 200
    assert (await _reload(session, Customer, customer.id)).eservice_state == EServiceState.PENDING

    assert (
        await client.post("/api/v1/password-setup", json=_setup(admin_token))
    ).status_code == 200
    customer = await _reload(session, Customer, customer.id)
    assert customer.eservice_state == EServiceState.ACTIVE
    assert customer.activated_at is not None


async def test_a_reset_password_logs_in_at_once_after_a_lock(client, session, state):
    """The locked owner resets his password: the failures that locked him no longer delay him."""
    user = await create_user(session, state, await create_customer(session))
    for _ in range(6):
        await log_in(client, user.login, "not the password at all")
    assert (await log_in(client, user.login)).status_code == 429
    user.status = UserStatus.LOCKED
    await session.flush()
    token = await new_token_for(session, user.id, TokenPurpose.RESET, hours=1)
    assert (await client.post("/api/v1/password-setup", json=_setup(token))).status_code == 200
    response = await log_in(client, user.login, NEW_PASSWORD)
    assert response.status_code == 200, response.text
