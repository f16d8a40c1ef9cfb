"""The account model keeps the key that makes login IDs unique case-insensitively."""

from app.users.models import UserAccount


def test_login_key_follows_every_assignment_of_the_login() -> None:
    user = UserAccount(login="Admin.Telefonanlage1")
    assert user.login_key == "admin.telefonanlage1"
    user.login = "STRASSE.Müller"
    assert user.login_key == "strasse.müller"
