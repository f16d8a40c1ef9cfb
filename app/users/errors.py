"""Errors of user management that other features raise too."""

from app.core.errors import AppError, Conflict, register_unique_violation


class LoginTaken(Conflict):
    code, title = "login_taken", "This login ID is already taken"


class LastAdmin(Conflict):
    code, title = "last_admin", "The last active portal administrator must stay"


class SelfChange(Conflict):
    code, title = "self_change", "You cannot do this to your own account"


class PendingCustomer(AppError):
    status, code, title = 409, "customer_pending", "The e:service access is not activated yet"


register_unique_violation("uq_user_accounts_login_key", "user_accounts.login_key", LoginTaken)
