"""What the invitation mail carries; names are data, never template code."""

from app.invitations.service import send_invitation
from app.users.models import Language
from app.users.status import UserStatus
from tests.factories import create_customer, create_user
from tests.invitations.outbox_helpers import queued_mails, token_in


async def test_invitation_mail_names_everything_the_guide_lists(session, state):
    user = await create_user(
        session,
        state,
        await create_customer(session),
        login="Admin.Telefonanlage1",
        status=UserStatus.INVITED,
        password=None,
    )
    invitation = await send_invitation(session, state.settings, user)
    [mail] = await queued_mails(session, user.id, "invitation")
    assert mail.recipient == user.email
    assert "Kundenportal" in mail.subject
    text = mail.body_text
    assert "Guten Tag Erika Mustermann" in text
    assert "https://portal.example.com" in text
    assert "Admin.Telefonanlage1" in text
    token = token_in(mail)
    assert f"https://portal.example.com/password-setup#token={token}" in text
    assert "sicher auf" in text
    assert invitation.sent_count == 1
    assert invitation.outbox_message_id == mail.id


async def test_english_mail_for_english_users(session, state):
    user = await create_user(
        session,
        state,
        await create_customer(session),
        status=UserStatus.INVITED,
        password=None,
        language=Language.EN,
    )
    await send_invitation(session, state.settings, user)
    [mail] = await queued_mails(session, user.id)
    assert "Guten Tag" not in mail.body_text
    assert user.login in mail.body_text


async def test_template_looking_names_stay_literal(session, state):
    user = await create_user(
        session,
        state,
        await create_customer(session),
        status=UserStatus.INVITED,
        password=None,
        first_name="{{7*7}}",
        last_name="<b>{% raw %}</b>",
    )
    await send_invitation(session, state.settings, user)
    [mail] = await queued_mails(session, user.id)
    assert "Guten Tag {{7*7}} <b>{% raw %}</b>," in mail.body_text
    assert "49" not in mail.body_text.split("Portal:")[0]
    assert "{% raw %}" in mail.body_text
    assert mail.body_html is not None
    assert "{{7*7}}" in mail.body_html
    assert "&lt;b&gt;" in mail.body_html
    assert "<b>{%" not in mail.body_html
