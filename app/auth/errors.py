"""Errors of login and the signed-in user's own account."""

from app.core.errors import AppError, Unauthenticated


class InvalidCredentials(Unauthenticated):
    """Wrong password, unknown login or an account that may not log in: one answer for all."""

    code, title = "invalid_credentials", "Login failed"

    def __init__(self) -> None:
        # One fixed detail, and the throttle counters and audit event are kept.
        super().__init__("The login ID or the password is wrong.", keep_changes=True)


class CurrentPasswordInvalid(AppError):
    """The `current_password` that confirms a sensitive change of the own account is wrong."""

    status, code, title = 403, "current_password_invalid", "The current password is wrong"

    def __init__(self) -> None:
        super().__init__("The current password is wrong.", keep_changes=True)


class CurrentPasswordRequired(AppError):
    """Changing the login ID or the e-mail needs the current password."""

    status, code, title = 422, "current_password_required", "The current password is required"
