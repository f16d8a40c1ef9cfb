"""The cache of hand-off targets (app/contracts/cache.py): a repeated hand-off reads no contract,
and every change of a contract or its customer takes effect on the very next hand-off."""

import asyncio

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts import cache as cache_module
from app.contracts.cache import CHANGED_CONTRACT, PbxTargets
from app.contracts.models import Contract, ContractState
from app.contracts.repository import get_pbx_target
from app.core.config import Settings
from app.core.db import Database, create_engine
from app.core.direct import Queries
from app.core.permissions import Role
from app.core.state import AppState
from app.main import create_app
from tests.conftest import postgres_only
from tests.factories import auth_headers, create_contract, create_customer, create_user
from tests.listening import listening_client


@pytest.fixture
def contract_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The contract ids that hand-offs read from the database."""
    reads: list[int] = []

    async def counted(connection: Queries, contract_id: int, customer_id: int) -> object:
        reads.append(contract_id)
        return await get_pbx_target(connection, contract_id, customer_id)

    monkeypatch.setattr(cache_module, "get_pbx_target", counted)
    return reads


@pytest.fixture
def targets(state: AppState) -> PbxTargets:
    """The app's cache, on (on PostgreSQL it is on only while the listener runs)."""
    assert state.pbx_targets is not None
    if not state.pbx_targets.active:
        state.pbx_targets.activate()
    return state.pbx_targets


async def _pbx_admin(session: AsyncSession, state: AppState):  # type: ignore[no-untyped-def]
    customer = await create_customer(session)
    user = await create_user(session, state, customer, role=Role.PBX_ADMIN)
    contract = await create_contract(session, customer)
    return customer, contract, await auth_headers(session, state, user)


async def _status(client: httpx.AsyncClient, contract_id: int, headers: dict[str, str]) -> int:
    response = await client.post(f"/api/v1/contracts/{contract_id}/pbx-sessions", headers=headers)
    return response.status_code


async def test_a_repeated_handoff_reads_no_contract(
    client: httpx.AsyncClient,
    session: AsyncSession,
    state: AppState,
    targets: PbxTargets,
    contract_reads: list[int],
) -> None:
    _, contract, headers = await _pbx_admin(session, state)
    assert await _status(client, contract.id, headers) == 201
    assert await _status(client, contract.id, headers) == 201
    assert contract_reads == [contract.id]


@pytest.mark.parametrize(
    "change", ["terminate by flush", "bulk update of the contract", "plain SQL", "delete"]
)
async def test_every_kind_of_change_reaches_the_next_handoff(
    client: httpx.AsyncClient,
    session: AsyncSession,
    state: AppState,
    targets: PbxTargets,
    change: str,
) -> None:
    _, contract, headers = await _pbx_admin(session, state)
    assert await _status(client, contract.id, headers) == 201
    if change == "terminate by flush":
        contract.state = ContractState.TERMINATED
        await session.flush()
    elif change == "bulk update of the contract":
        await session.execute(
            update(Contract)
            .where(Contract.id == contract.id)
            .values(state=ContractState.TERMINATED)
            .execution_options(synchronize_session=False, **{CHANGED_CONTRACT: contract.id})
        )
    elif change == "plain SQL":
        await session.execute(text("UPDATE contracts SET state = 'terminated'"))
    else:
        await session.delete(contract)
        await session.flush()
    expected = 404 if change == "delete" else 409
    assert await _status(client, contract.id, headers) == expected


async def test_a_change_of_the_customer_forgets_every_contract(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, targets: PbxTargets
) -> None:
    customer, contract, headers = await _pbx_admin(session, state)
    assert await _status(client, contract.id, headers) == 201
    assert targets.get((contract.id, customer.id)) is not None
    customer.name = "Renamed GmbH"
    await session.flush()
    assert targets.get((contract.id, customer.id)) is None


async def test_a_contract_not_found_is_not_remembered(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, targets: PbxTargets
) -> None:
    _, _, headers = await _pbx_admin(session, state)
    other = await create_customer(session)
    foreign = await create_contract(session, other)
    assert await _status(client, foreign.id, headers) == 404
    assert targets._entries == {}


async def test_an_entry_is_read_again_once_it_is_old(
    client: httpx.AsyncClient,
    session: AsyncSession,
    state: AppState,
    targets: PbxTargets,
    contract_reads: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, contract, headers = await _pbx_admin(session, state)
    moment = [1000.0]
    monkeypatch.setattr("app.core.changes.time.monotonic", lambda: moment[0])
    assert await _status(client, contract.id, headers) == 201
    moment[0] += targets.max_age - 0.1
    assert await _status(client, contract.id, headers) == 201
    assert contract_reads == [contract.id]
    moment[0] += 0.1
    assert await _status(client, contract.id, headers) == 201
    assert contract_reads == [contract.id, contract.id]


async def test_a_change_during_a_read_is_not_remembered(
    session: AsyncSession, state: AppState, database: Database, targets: PbxTargets
) -> None:
    customer, contract, _ = await _pbx_admin(session, state)
    generation = targets.generation
    found = await targets.target(database, contract.id, customer.id)
    assert found is not None
    targets.forget_owner(contract.id)  # a change that arrived while the read ran
    targets.remember((contract.id, customer.id), contract.id, found, generation)
    assert targets.get((contract.id, customer.id)) is None


async def _terminate_from_another_process(settings: Settings, contract_id: int) -> None:
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(Contract)
                .where(Contract.id == contract_id)
                .values(state=ContractState.TERMINATED)
            )
    finally:
        await engine.dispose()


@postgres_only()
@pytest.mark.committing
async def test_a_change_by_another_process_reaches_the_cache(
    settings: Settings, database: Database
) -> None:
    """PostgreSQL: a contract terminated elsewhere arrives by NOTIFY."""
    app = create_app(settings, database, run_background=False)
    state: AppState = app.state.eservice
    targets = state.pbx_targets
    assert targets is not None
    async with listening_client(app, targets) as client:
        async with state.database.sessionmaker.begin() as session:
            customer, contract, headers = await _pbx_admin(session, state)
        assert await _status(client, contract.id, headers) == 201
        assert targets.get((contract.id, customer.id)) is not None

        await _terminate_from_another_process(settings, contract.id)
        statuses = []
        for _ in range(100):
            statuses.append(await _status(client, contract.id, headers))
            if statuses[-1] == 409:
                break
            await asyncio.sleep(0.02)
        assert statuses[-1] == 409, statuses
    assert not targets.active  # the listener stopped with the app
