"""Roles and what each may do: one table (role x action), from which checks and tests derive."""

from enum import StrEnum


class Role(StrEnum):
    """The one role of a user account, as the provider's portal has them."""

    CUSTOMER_PORTAL_ADMIN = "customer_portal_admin"
    PBX_ADMIN = "pbx_admin"
    CUSTOMER_ACCOUNTING = "customer_accounting"


ROLE_LABELS: dict[Role, dict[str, str]] = {
    Role.CUSTOMER_PORTAL_ADMIN: {
        "de": "Administrator Kundenportal",
        "en": "Customer portal administrator",
    },
    Role.PBX_ADMIN: {"de": "Administrator Telefonanlage", "en": "PBX administrator"},
    Role.CUSTOMER_ACCOUNTING: {"de": "Buchhaltung Kunde", "en": "Customer accounting"},
}


class Action(StrEnum):
    """Something a signed-in user may be allowed to do."""

    MANAGE_USERS = "users.manage"
    READ_AUDIT = "audit.read"
    READ_CONTRACTS = "contracts.read"
    OPEN_PBX = "pbx.open"
    READ_DOCUMENTS = "documents.read"


PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.CUSTOMER_PORTAL_ADMIN: frozenset(
        {Action.MANAGE_USERS, Action.READ_AUDIT, Action.READ_CONTRACTS, Action.READ_DOCUMENTS}
    ),
    Role.PBX_ADMIN: frozenset({Action.OPEN_PBX, Action.READ_CONTRACTS, Action.READ_DOCUMENTS}),
    Role.CUSTOMER_ACCOUNTING: frozenset({Action.READ_CONTRACTS, Action.READ_DOCUMENTS}),
}


def is_allowed(role: Role, action: Action) -> bool:
    return action in PERMISSIONS[role]
