"""Errors of the password-token flows (inspect, setup)."""

from app.core.errors import AppError


class TokenInvalid(AppError):
    """The link is unknown, used, voided, expired, or its account can no longer use it."""

    status, code, title = 410, "token_invalid", "This link is no longer valid"


class PasswordMismatch(AppError):
    """The password and its repetition differ."""

    status, code, title = 422, "password_mismatch", "The passwords do not match"
