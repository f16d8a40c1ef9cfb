"""e:service activation with the letter's customer number and activation code."""

from sqlalchemy import select

from app.audit.service import Actor
from app.core.permissions import Role
from app.customers.models import Customer, EServiceState
from app.customers.service import (
    NewAccount,
    create_customer,
    hash_activation_code,
    invite_account,
    new_activation_code,
)
from app.users.models import UserAccount
from app.users.status import UserStatus
from tests.factories import create_customer as create_active_customer
from tests.factories import create_user, unique
from tests.invitations.outbox_helpers import queued_mails, token_in

PASSWORD = "Sonnenblumen im August 2026"


def _body(number, code, login=None, **extra):
    return {
        "customer_number": number,
        "activation_code": code,
        "login": login or unique("Admin.Kundenportal"),
        "first_name": "Max",
        "last_name": "Muster",
        "email": "max.muster@example.com",
        **extra,
    }


async def _reload_customer(session, customer_id):
    return (
        await session.execute(
            select(Customer)
            .where(Customer.id == customer_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()


async def test_code_format_and_hash():
    code = new_activation_code()
    assert len(code) == 19
    assert code.count("-") == 3
    assert hash_activation_code(code) == hash_activation_code(code.lower().replace("-", " "))
    assert hash_activation_code(code) != hash_activation_code(new_activation_code())


async def test_registration_invites_the_first_admin_and_setup_activates(client, session):
    customer, code = await create_customer(
        session, customer_number=unique("77"), name="Muster GmbH"
    )
    assert customer.eservice_state == EServiceState.PENDING
    body = _body(customer.customer_number, code.lower(), phone="0221 1234567")
    response = await client.post("/api/v1/registrations", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["login"] == body["login"]

    user = (
        await session.execute(select(UserAccount).where(UserAccount.customer_id == customer.id))
    ).scalar_one()
    assert (user.role, user.status) == (Role.CUSTOMER_PORTAL_ADMIN, UserStatus.INVITED)
    assert user.phone == "+492211234567"
    assert (await _reload_customer(session, customer.id)).activation_code_hash is None
    [mail] = await queued_mails(session, user.id, "invitation")
    assert body["login"] in mail.body_text

    setup = await client.post(
        "/api/v1/password-setup",
        json={"token": token_in(mail), "password": PASSWORD, "password_confirmation": PASSWORD},
    )
    assert setup.status_code == 200
    assert (await _reload_customer(session, customer.id)).eservice_state == EServiceState.ACTIVE


async def test_wrong_number_wrong_code_and_used_code_answer_alike(client, session):
    customer, code = await create_customer(session, customer_number=unique("77"), name="A GmbH")
    wrong_code = await client.post(
        "/api/v1/registrations", json=_body(customer.customer_number, new_activation_code())
    )
    wrong_number = await client.post("/api/v1/registrations", json=_body("999999999", code))
    for response in (wrong_code, wrong_number):
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "activation_invalid"
    assert wrong_code.json() == wrong_number.json()

    assert (
        await client.post("/api/v1/registrations", json=_body(customer.customer_number, code))
    ).status_code == 202
    used = await client.post("/api/v1/registrations", json=_body(customer.customer_number, code))
    assert used.status_code == 400
    assert used.json() == wrong_code.json()


async def test_letter_is_void_once_the_operators_admin_activated_the_customer(
    client, session, state
):
    customer, code = await create_customer(session, customer_number=unique("77"), name="E GmbH")
    operator_admin = await invite_account(
        session,
        state.settings,
        customer.id,
        NewAccount(
            login=unique("Admin.Betreiber"),
            first_name="Erika",
            last_name="Muster",
            email="erika.muster@example.com",
            role=Role.CUSTOMER_PORTAL_ADMIN,
        ),
        actor=Actor(None, "operator"),
        client_ip=None,
    )
    [mail] = await queued_mails(session, operator_admin.id, "invitation")
    setup = await client.post(
        "/api/v1/password-setup",
        json={"token": token_in(mail), "password": PASSWORD, "password_confirmation": PASSWORD},
    )
    assert setup.status_code == 200, setup.text
    reloaded = await _reload_customer(session, customer.id)
    assert reloaded.eservice_state == EServiceState.ACTIVE
    assert reloaded.activation_code_hash is None

    late = await client.post("/api/v1/registrations", json=_body(customer.customer_number, code))
    assert late.status_code == 400
    assert late.json()["code"] == "activation_invalid"
    admins = (
        await session.execute(select(UserAccount).where(UserAccount.customer_id == customer.id))
    ).scalars()
    assert [user.id for user in admins] == [operator_admin.id]


async def test_code_of_an_active_customer_is_refused(client, session):
    customer, code = await create_customer(session, customer_number=unique("77"), name="F GmbH")
    customer.eservice_state = EServiceState.ACTIVE
    await session.flush()
    response = await client.post(
        "/api/v1/registrations", json=_body(customer.customer_number, code)
    )
    assert response.status_code == 400
    assert response.json()["code"] == "activation_invalid"


async def test_taken_login_is_409_and_keeps_the_code(client, session, state):
    other = await create_active_customer(session)
    await create_user(session, state, other, login="Max.Muster")
    customer, code = await create_customer(session, customer_number=unique("77"), name="B GmbH")
    taken = await client.post(
        "/api/v1/registrations", json=_body(customer.customer_number, code, login="max.MUSTER")
    )
    assert taken.status_code == 409
    assert taken.json()["code"] == "login_taken"
    assert (await _reload_customer(session, customer.id)).activation_code_hash is not None
    retry = await client.post("/api/v1/registrations", json=_body(customer.customer_number, code))
    assert retry.status_code == 202


async def test_failures_are_rate_limited_per_ip(client, session, state):
    customer, code = await create_customer(session, customer_number=unique("77"), name="C GmbH")
    limit = state.settings.registration_failures_per_ip_per_hour
    for _ in range(limit):
        response = await client.post(
            "/api/v1/registrations", json=_body(customer.customer_number, new_activation_code())
        )
        assert response.status_code == 400
    blocked = await client.post("/api/v1/registrations", json=_body(customer.customer_number, code))
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "rate_limited"
    assert int(blocked.headers["retry-after"]) > 0
    assert (await _reload_customer(session, customer.id)).activation_code_hash is not None


async def test_bad_bodies(client, session):
    customer, code = await create_customer(session, customer_number=unique("77"), name="D GmbH")
    number = customer.customer_number
    for body in [
        _body(number, code, first_name="Max\r\nBcc: victim@example.com"),
        _body(number, code, last_name=""),
        _body(number, code, login="ab"),
        _body(number, code, login="with space"),
        _body(number, code, email="not-an-email"),
        _body(number, code, phone="12"),
        _body(number, code, role="customer_portal_admin"),
        _body(number, "x" * 65),
    ]:
        response = await client.post("/api/v1/registrations", json=body)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_error"
    assert (await _reload_customer(session, customer.id)).activation_code_hash is not None
