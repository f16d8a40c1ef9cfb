"""contract change notifications: NOTIFY eservice_contracts when a contract or customer changes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 12:00:00.000000+00:00

PostgreSQL only: each API process LISTENs on `eservice_contracts` to keep its cache of
hand-off targets exact (app/contracts/cache.py). The payload is the contract id, or `*` for a
change of a customer (every contract of the cache is forgotten). SQLite has no
cross-process notifications; there the cache's entries expire after a few seconds.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE FUNCTION eservice_notify_contract_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- The trigger's argument, if any, names the column that holds the contract id.
    IF TG_NARGS > 0 THEN
        PERFORM pg_notify('eservice_contracts', to_jsonb(OLD) ->> TG_ARGV[0]);
    ELSE
        PERFORM pg_notify('eservice_contracts', '*');
    END IF;
    RETURN NULL;
END
$$
"""
# table: (trigger, the function's arguments)
TRIGGERS = {
    "contracts": ("trg_contracts_notify_change", "'id'"),
    "customers": ("trg_customers_notify_change", ""),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    for table, (trigger, arguments) in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {trigger} AFTER UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION eservice_notify_contract_change({arguments})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, (trigger, _arguments) in TRIGGERS.items():
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    op.execute("DROP FUNCTION eservice_notify_contract_change()")
