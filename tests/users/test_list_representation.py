"""The user table shows every user exactly as the single-user endpoints do."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import clock, utcnow
from app.core.state import AppState
from app.invitations.models import Invitation
from app.outbox.models import DeliveryState, OutboxMessage
from app.users.repository import DocumentLayout
from app.users.schemas import InvitationOut, UserOut, UserPage
from tests.factories import auth_headers, create_user
from tests.users.helpers import Tenant, make_tenant, new_user_body


async def _listed(client: httpx.AsyncClient, tenant: Tenant, **params: Any) -> dict[int, Any]:
    response = await client.get(
        "/api/v1/users", params={"limit": 200, **params}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return {item["id"]: item for item in response.json()["items"]}


async def _single(client: httpx.AsyncClient, tenant: Tenant, user_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/users/{user_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_list_items_equal_the_single_user_representation(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    invited = await client.post(
        "/api/v1/users",
        json=new_user_body(login="invited.now", phone="+4930123456"),
        headers=tenant.headers,
    )
    later = (utcnow() + timedelta(days=2)).isoformat()
    scheduled = await client.post(
        "/api/v1/users",
        json=new_user_body(
            login="invited.later", email="later@example.com", send_invitation_at=later
        ),
        headers=tenant.headers,
    )
    plain = await create_user(
        session, state, tenant.customer, expires_at=utcnow() + timedelta(days=30)
    )
    ids = [invited.json()["id"], scheduled.json()["id"], plain.id, tenant.admin.id]

    listed = await _listed(client, tenant)
    assert sorted(listed) == sorted(ids)
    for user_id in ids:
        assert listed[user_id] == await _single(client, tenant, user_id)
    assert listed[invited.json()["id"]]["invitation"]["delivery"] == "pending"
    assert listed[scheduled.json()["id"]]["invitation"]["delivery"] is None
    assert listed[plain.id]["invitation"] is None
    # The creation answer is the same representation too.
    assert listed[invited.json()["id"]] == invited.json()
    # Timestamps as pydantic writes them: ISO 8601 in UTC with a "Z".
    assert listed[plain.id]["created_at"].endswith("Z")
    assert listed[plain.id]["expires_at"].endswith("Z")


async def test_list_and_single_user_agree_on_expired_and_accepted_invitations(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    created = [
        await client.post(
            "/api/v1/users",
            json=new_user_body(login=f"invitee.{number}", email=f"i{number}@example.com"),
            headers=tenant.headers,
        )
        for number in range(2)
    ]
    accepted_id = created[1].json()["id"]
    invitation = await session.get(Invitation, accepted_id)
    assert invitation is not None
    invitation.accepted_at = utcnow()
    await session.flush()
    clock.advance(state.settings.invitation_ttl + timedelta(seconds=1))
    tenant.headers = await auth_headers(session, state, tenant.admin)

    listed = await _listed(client, tenant, q="invitee")
    assert listed[created[0].json()["id"]]["invitation"]["expired"] is True
    # Accepted in time: the link's lifetime no longer matters.
    assert listed[accepted_id]["invitation"]["expired"] is False
    for user_id, item in listed.items():
        assert item == await _single(client, tenant, user_id)


async def test_a_changed_user_is_listed_as_the_change_answered(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    user = await create_user(session, state, tenant.customer)
    changed = await client.patch(
        f"/api/v1/users/{user.id}",
        json={"last_name": "Neu", "mobile": "+491701234567"},
        headers=tenant.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert changed.headers["etag"] == '"2"'
    listed = await _listed(client, tenant)
    assert listed[user.id] == changed.json()


async def test_listed_values_equal_the_stored_account(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    """The list's documents, written by the database, hold what the ORM reads."""
    tenant = await make_tenant(session, state)
    whole_second = utcnow().replace(microsecond=0) + timedelta(days=3)
    user = await create_user(session, state, tenant.customer, expires_at=whole_second)
    user.created_at = whole_second - timedelta(days=9)
    user.last_login_at = utcnow()
    await session.flush()
    await session.refresh(user)
    stored = UserOut.build(user).model_dump(mode="json", exclude={"invitation"})
    listed = (await _listed(client, tenant))[user.id]
    assert {name: listed[name] for name in stored} == stored
    assert listed["expires_at"] == whole_second.isoformat().replace("+00:00", "Z")


async def test_the_database_writes_each_value_as_the_models_serialise_it(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    """The list's documents are written by the database; the single user by pydantic.

    Text that JSON must escape, every delivery state of an invitation mail, timestamps with
    and without microseconds: the two agree byte for byte in every value.
    """
    tenant = await make_tenant(session, state)
    awkward = await create_user(
        session,
        state,
        tenant.customer,
        first_name='Zoë "Q" \\ Ünal',
        last_name="O'Brien\u00a0\u2013\u2028Smith\t/",
        expires_at=utcnow().replace(microsecond=0) + timedelta(days=1),
    )
    awkward.phone = "+49 30 1234"
    awkward.created_at = awkward.created_at.replace(microsecond=0)
    awkward.updated_at = awkward.updated_at.replace(microsecond=7)
    invited_ids = []
    for number, delivery in enumerate(DeliveryState):
        created = await client.post(
            "/api/v1/users",
            json=new_user_body(login=f"mail.{number}", email=f"mail{number}@example.com"),
            headers=tenant.headers,
        )
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        invitation = await session.get(Invitation, user_id)
        assert invitation is not None
        assert invitation.outbox_message_id is not None
        message = await session.get(OutboxMessage, invitation.outbox_message_id)
        assert message is not None
        message.state = delivery
        invitation.sent_at = utcnow().replace(microsecond=0)
        invited_ids.append(user_id)
    await session.flush()

    response = await client.get(
        "/api/v1/users", params={"limit": 200, "sort": "id"}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    page = response.json()
    assert list(page) == list(UserPage.model_fields)
    listed = {item["id"]: item for item in page["items"]}
    for user_id in [awkward.id, *invited_ids]:
        single = await _single(client, tenant, user_id)
        assert listed[user_id] == single
        # The same keys in the same order as the model writes them.
        assert list(listed[user_id]) == list(single)
    assert listed[awkward.id]["first_name"] == 'Zoë "Q" \\ Ünal'
    assert (
        listed[awkward.id]["created_at"].endswith(":00Z")
        or "." not in (listed[awkward.id]["created_at"])
    )
    assert listed[awkward.id]["updated_at"].endswith(".000007Z")
    assert [listed[user_id]["invitation"]["delivery"] for user_id in invited_ids] == [
        str(delivery) for delivery in DeliveryState
    ]
    assert list(listed[invited_ids[0]]["invitation"]) == list(InvitationOut.model_fields)


def test_a_document_key_without_a_column_is_refused_when_the_layout_is_made() -> None:
    """A field added to the representation but not to the query fails at import, not as a
    500 on the first request."""
    with pytest.raises(ValueError, match="nickname"):
        DocumentLayout(account=("id", "nickname"), invitation=("expired",))
    with pytest.raises(ValueError, match="opened_at"):
        DocumentLayout(account=("id",), invitation=("opened_at",))
    assert DocumentLayout(account=("id", "login"), invitation=("expired", "delivery"))
