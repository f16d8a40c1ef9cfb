"""Status changes through HTTP: disable, enable, unlock, resend; and the invariants."""

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.clock import clock, utcnow
from app.core.permissions import Role
from app.core.state import AppState
from app.customers.models import EServiceState
from app.invitations.models import PasswordToken, TokenPurpose
from app.invitations.tokens import find_usable_token, issue_token
from app.outbox.models import OutboxMessage
from app.users import lifecycle, service
from app.users.errors import LastAdmin
from app.users.schemas import UserUpdate
from app.users.service import AdminContext
from app.users.status import UserStatus
from tests.auth.helpers import log_in
from tests.factories import auth_headers, create_user
from tests.invitations.outbox_helpers import mark_all_sent, queued_mails, token_in
from tests.users.helpers import audit_actions, make_tenant, new_user_body

S = UserStatus

# (endpoint, from status, has password) -> expected status, or None for 409 invalid_transition
CASES = [
    ("disable", S.SCHEDULED, False, S.DISABLED),
    ("disable", S.INVITED, False, S.DISABLED),
    ("disable", S.ACTIVE, True, S.DISABLED),
    ("disable", S.LOCKED, True, S.DISABLED),
    ("disable", S.EXPIRED, True, S.DISABLED),
    ("disable", S.DISABLED, True, None),
    ("enable", S.DISABLED, True, S.ACTIVE),
    ("enable", S.DISABLED, False, S.INVITED),
    ("enable", S.EXPIRED, True, S.ACTIVE),
    ("enable", S.EXPIRED, False, S.INVITED),
    ("enable", S.ACTIVE, True, None),
    ("enable", S.INVITED, False, None),
    ("enable", S.LOCKED, True, None),
    ("enable", S.SCHEDULED, False, None),
    ("unlock", S.LOCKED, True, S.ACTIVE),
    ("unlock", S.ACTIVE, True, None),
    ("unlock", S.DISABLED, True, None),
    ("unlock", S.INVITED, False, None),
    ("unlock", S.EXPIRED, True, None),
    ("unlock", S.SCHEDULED, False, None),
    ("invitation", S.SCHEDULED, False, S.INVITED),
    ("invitation", S.INVITED, False, S.INVITED),
    ("invitation", S.ACTIVE, True, None),
    ("invitation", S.LOCKED, True, None),
    ("invitation", S.DISABLED, False, None),
    ("invitation", S.EXPIRED, False, None),
]


@pytest.mark.parametrize(("endpoint", "before", "has_password", "after"), CASES)
async def test_transitions(
    client: httpx.AsyncClient,
    session: AsyncSession,
    state: AppState,
    endpoint: str,
    before: UserStatus,
    has_password: bool,
    after: UserStatus | None,
) -> None:
    tenant = await make_tenant(session, state)
    user = await create_user(
        session,
        state,
        tenant.customer,
        status=before,
        password="correct horse battery staple 42" if has_password else None,
    )
    response = await client.post(f"/api/v1/users/{user.id}/{endpoint}", headers=tenant.headers)
    await session.refresh(user)
    if after is None:
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "invalid_transition"
        assert user.status == before
        assert await audit_actions(session, user.id) == []
        return
    assert response.status_code == (202 if endpoint == "invitation" else 200), response.text
    assert response.json()["status"] == after
    assert user.status == after
    actions = await audit_actions(session, user.id)
    assert actions
    mails = await session.execute(select(OutboxMessage).where(OutboxMessage.user_id == user.id))
    sends_invitation = after == S.INVITED
    assert (len(list(mails.scalars())) == 1) == sends_invitation
    assert ("invitation.sent" in actions) == sends_invitation


async def test_disable_ends_sessions_and_voids_links(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    user = await create_user(session, state, tenant.customer)
    headers = await auth_headers(session, state, user)
    token, _row = await issue_token(session, user.id, TokenPurpose.RESET, timedelta(hours=1))
    assert (await client.get("/api/v1/users", headers=headers)).status_code == 403
    response = await client.post(f"/api/v1/users/{user.id}/disable", headers=tenant.headers)
    assert response.status_code == 200
    assert (await client.get("/api/v1/users", headers=headers)).status_code == 401
    assert await find_usable_token(session, token) is None


async def test_enable_clears_a_passed_planned_end(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    user = await create_user(
        session, state, tenant.customer, status=S.EXPIRED, expires_at=utcnow() - timedelta(days=1)
    )
    response = await client.post(f"/api/v1/users/{user.id}/enable", headers=tenant.headers)
    assert response.json()["status"] == "active"
    assert response.json()["expires_at"] is None


async def test_enable_into_invited_for_pending_customer_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state, EServiceState.PENDING)
    user = await create_user(session, state, tenant.customer, status=S.DISABLED, password=None)
    response = await client.post(f"/api/v1/users/{user.id}/enable", headers=tenant.headers)
    assert response.json()["code"] == "customer_pending"
    resend = await client.post(f"/api/v1/users/{user.id}/invitation", headers=tenant.headers)
    assert resend.status_code == 409
    await session.refresh(user)
    assert user.status == S.DISABLED


async def test_transition_with_stale_etag(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    user = await create_user(session, state, tenant.customer)
    response = await client.post(
        f"/api/v1/users/{user.id}/disable", headers={**tenant.headers, "If-Match": '"2"'}
    )
    assert response.status_code == 412
    await session.refresh(user)
    assert user.status == S.ACTIVE


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("POST", "/disable", None),
        ("DELETE", "", None),
        ("PATCH", "", {"role": "pbx_admin"}),
        ("PATCH", "", {"role": "customer_accounting"}),
    ],
)
async def test_no_self_disable_delete_or_demotion(
    client: httpx.AsyncClient,
    session: AsyncSession,
    state: AppState,
    method: str,
    suffix: str,
    body: dict[str, str] | None,
) -> None:
    tenant = await make_tenant(session, state)
    await create_user(session, state, tenant.customer, role=Role.CUSTOMER_PORTAL_ADMIN)
    response = await client.request(
        method, f"/api/v1/users/{tenant.admin.id}{suffix}", json=body, headers=tenant.headers
    )
    assert response.status_code == 409
    assert response.json()["code"] == "self_change"
    await session.refresh(tenant.admin)
    assert (tenant.admin.status, tenant.admin.role) == (S.ACTIVE, Role.CUSTOMER_PORTAL_ADMIN)


async def test_admin_may_change_own_names(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    response = await client.patch(
        f"/api/v1/users/{tenant.admin.id}",
        json={"last_name": "Neu", "role": "customer_portal_admin"},
        headers=tenant.headers,
    )
    assert response.status_code == 200
    assert response.json()["last_name"] == "Neu"


async def test_other_admin_may_be_disabled_and_demoted(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    other = await create_user(session, state, tenant.customer, role=Role.CUSTOMER_PORTAL_ADMIN)
    response = await client.patch(
        f"/api/v1/users/{other.id}", json={"role": "pbx_admin"}, headers=tenant.headers
    )
    assert response.status_code == 200
    assert response.json()["role"] == "pbx_admin"


def _acting_as(admin: Principal) -> AdminContext:
    return AdminContext(principal=admin, client_ip="192.0.2.1")


@pytest.mark.parametrize("operation", ["disable", "delete", "demote"])
async def test_last_active_admin_stays(
    session: AsyncSession, state: AppState, operation: str
) -> None:
    """The caller is an admin who is no longer active himself (e.g. disabled meanwhile)."""
    tenant = await make_tenant(session, state)
    former = await create_user(
        session, state, tenant.customer, role=Role.CUSTOMER_PORTAL_ADMIN, status=S.DISABLED
    )
    ctx = _acting_as(Principal(user=former, session_id="x"))
    operations = {
        "disable": lambda: lifecycle.disable_user(session, ctx, tenant.admin.id, None),
        "delete": lambda: service.delete_user(session, ctx, tenant.admin.id, None),
        "demote": lambda: service.update_user(
            session, ctx, tenant.admin.id, UserUpdate(role=Role.PBX_ADMIN), None
        ),
    }
    with pytest.raises(LastAdmin):
        await operations[operation]()
    assert tenant.admin.status == S.ACTIVE
    assert tenant.admin.role == Role.CUSTOMER_PORTAL_ADMIN


async def test_last_admin_rule_ignores_inactive_targets(
    session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    locked_admin = await create_user(
        session, state, tenant.customer, role=Role.CUSTOMER_PORTAL_ADMIN, status=S.LOCKED
    )
    ctx = _acting_as(Principal(user=tenant.admin, session_id="x"))
    row = await lifecycle.disable_user(session, ctx, locked_admin.id, None)
    assert row["status"] == S.DISABLED


async def test_resend_voids_the_old_link(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    created = await client.post("/api/v1/users", json=new_user_body(), headers=tenant.headers)
    user_id = created.json()["id"]
    tokens = await session.execute(select(PasswordToken).where(PasswordToken.user_id == user_id))
    (first,) = list(tokens.scalars())
    response = await client.post(f"/api/v1/users/{user_id}/invitation", headers=tenant.headers)
    assert response.status_code == 202
    assert response.json()["invitation"]["sent_count"] == 2
    await session.refresh(first)
    assert first.voided_at is not None
    live = await session.execute(
        select(PasswordToken).where(
            PasswordToken.user_id == user_id, PasswordToken.voided_at.is_(None)
        )
    )
    assert len(list(live.scalars())) == 1
    # The first mail, not sent yet, is withdrawn: only the live link goes out.
    [mail] = await queued_mails(session, user_id, "invitation")
    live_token = token_in(mail)
    assert (await find_usable_token(session, live_token)) is not None


@pytest.mark.parametrize("ending", ["disable", "delete"])
async def test_disabling_or_deleting_withdraws_the_unsent_invitation(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, ending: str
) -> None:
    tenant = await make_tenant(session, state)
    created = await client.post("/api/v1/users", json=new_user_body(), headers=tenant.headers)
    user_id = created.json()["id"]
    [mail] = await queued_mails(session, user_id, "invitation")
    mail_id = mail.id
    if ending == "disable":
        response = await client.post(f"/api/v1/users/{user_id}/disable", headers=tenant.headers)
        assert response.status_code == 200
    else:
        response = await client.delete(f"/api/v1/users/{user_id}", headers=tenant.headers)
        assert response.status_code == 204
    left = await session.execute(
        select(OutboxMessage.id)
        .where(OutboxMessage.id == mail_id)
        .execution_options(populate_existing=True)
    )
    assert left.scalar_one_or_none() is None


async def test_resend_rate_limits(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    user = await create_user(session, state, tenant.customer, status=S.INVITED, password=None)
    url = f"/api/v1/users/{user.id}/invitation"
    for _ in range(3):
        assert (await client.post(url, headers=tenant.headers)).status_code == 202
        await mark_all_sent(session)
    refused = await client.post(url, headers=tenant.headers)
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    mails = await session.execute(select(OutboxMessage).where(OutboxMessage.user_id == user.id))
    assert len(list(mails.scalars())) == 3
    # Each new hour allows 3 more, until the daily limit of 10 is reached.
    sent = 3
    for _hour in range(1, 5):
        clock.advance(timedelta(hours=1, seconds=1))
        headers = await auth_headers(session, state, tenant.admin)
        for _ in range(3):
            response = await client.post(url, headers=headers)
            if response.status_code == 202:
                sent += 1
            else:
                assert response.status_code == 429
    assert sent == 10
    clock.advance(timedelta(days=1))
    headers = await auth_headers(session, state, tenant.admin)
    assert (await client.post(url, headers=headers)).status_code == 202


async def test_invitation_block_shows_expiry_and_delivery(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    created = await client.post("/api/v1/users", json=new_user_body(), headers=tenant.headers)
    user_id = created.json()["id"]
    message = (
        await session.execute(select(OutboxMessage).where(OutboxMessage.user_id == user_id))
    ).scalar_one()
    message.state = "failed"  # type: ignore[assignment]
    await session.flush()
    clock.advance(state.settings.invitation_ttl + timedelta(seconds=1))
    headers = await auth_headers(session, state, tenant.admin)
    listed = await client.get("/api/v1/users", params={"q": "Admin.Tele"}, headers=headers)
    (item,) = listed.json()["items"]
    assert item["invitation"]["delivery"] == "failed"
    assert item["invitation"]["expired"] is True


async def test_resend_of_a_scheduled_invitation_sends_it_now(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    later = (utcnow() + timedelta(days=3)).isoformat()
    created = await client.post(
        "/api/v1/users", json=new_user_body(send_invitation_at=later), headers=tenant.headers
    )
    assert created.json()["invitation"]["scheduled_for"] is not None
    user_id = created.json()["id"]
    response = await client.post(f"/api/v1/users/{user_id}/invitation", headers=tenant.headers)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "invited"
    assert body["invitation"]["scheduled_for"] is None
    assert body["invitation"]["sent_count"] == 1
    assert body["invitation"]["delivery"] == "pending"
    assert await audit_actions(session, user_id) == [
        "user.created",
        "invitation.scheduled",
        "invitation.resent",
        "invitation.sent",
    ]


async def test_an_unlocked_user_may_log_in_at_once(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    """Unlocking also forgets the failed logins, so their delay does not outlive the lock."""
    tenant = await make_tenant(session, state)
    user = await create_user(session, state, tenant.customer)
    for _ in range(6):
        await log_in(client, user.login, "not the password at all")
    user.status = S.LOCKED
    await session.flush()
    response = await client.post(f"/api/v1/users/{user.id}/unlock", headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert (await log_in(client, user.login)).status_code == 200
