"""account change notifications: NOTIFY eservice_accounts when an account or session changes

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 18:00:00.000000+00:00

PostgreSQL only: each API process LISTENs on `eservice_accounts` to keep its cache of
signed-in sessions exact (app/auth/cache.py). The payload is the user id. SQLite has no
cross-process notifications; there the API process invalidates its cache itself.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE FUNCTION eservice_notify_account_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- The trigger's argument names the column that holds the user id.
    PERFORM pg_notify('eservice_accounts', to_jsonb(OLD) ->> TG_ARGV[0]);
    RETURN NULL;
END
$$
"""
# table: (trigger, column holding the user id)
TRIGGERS = {
    "user_accounts": ("trg_user_accounts_notify_change", "id"),
    "auth_sessions": ("trg_auth_sessions_notify_change", "user_id"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    for table, (trigger, user_column) in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {trigger} AFTER UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION eservice_notify_account_change('{user_column}')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, (trigger, _user_column) in TRIGGERS.items():
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    op.execute("DROP FUNCTION eservice_notify_account_change()")
