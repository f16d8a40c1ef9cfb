"""The process's cache of hand-off targets: a PBX hand-off without a query.

Every cloud.phone user opens the PBX through a contract, and contracts change seldom (the
operator adds them; the provider's provisioning terminates them). A hand-off answers the
contract's columns from here, read once per `max_age` at most, and forgotten as soon as a
change is known (app/core/changes.py):

- in this process, when a flush or bulk statement touches `contracts` or `customers`;
- in every process on PostgreSQL, through a trigger that NOTIFYs `eservice_contracts` with
  the contract id at commit (`*` for a customer's change; migration 0004). While the
  listening connection is down, the cache answers nothing.

On SQLite a change made by another process (the CLI, a provisioning job writing the
database) is seen once the entry is `max_age` old: 5 seconds by default. A contract that is
not found is not remembered, so a new contract can be opened at once.
"""

from app.contracts.models import Contract
from app.contracts.repository import PbxTarget, get_pbx_target
from app.core.changes import RecentCache, Watch
from app.core.db import Database
from app.customers.models import Customer

# The NOTIFY channel of contract changes (migration 0004).
CHANNEL = "eservice_contracts"
# Execution option of a bulk UPDATE that touches one contract only: `{CHANGED_CONTRACT: id}`.
CHANGED_CONTRACT = "changed_contract_id"
CONTRACTS = Watch(
    "contract_cache_changes",
    # A hand-off target holds the customer's number: a change of a customer forgets all.
    owners={Contract: lambda contract: contract.id, Customer: lambda _customer: None},
    tables=frozenset({Contract.__tablename__, Customer.__tablename__}),
    option=CHANGED_CONTRACT,
)


class PbxTargets(RecentCache[tuple[int, int], PbxTarget]):
    """Hand-off targets by (contract id, customer id), each under its contract."""

    def __init__(self, *, active: bool, max_age: float) -> None:
        super().__init__(active=active, max_age=max_age)
        CONTRACTS.register(self)

    async def target(
        self, database: Database, contract_id: int, customer_id: int
    ) -> PbxTarget | None:
        """The contract's hand-off columns, only if it belongs to `customer_id`."""
        key = (contract_id, customer_id)
        found = self.get(key)
        if found is None:
            generation = self.generation
            # A read of its own: a hand-off answered from the cache opens no connection.
            async with database.direct() as connection:
                found = await get_pbx_target(connection, contract_id, customer_id)
            if found is not None:
                self.remember(key, contract_id, found, generation)
        return found
