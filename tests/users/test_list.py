"""The user table: filters, sort orders, keyset pagination over several pages."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.clock import utcnow
from app.core.pagination import decode_cursor, encode_cursor
from app.core.permissions import Role
from app.core.state import AppState
from app.users.status import UserStatus
from tests.factories import create_user
from tests.users.helpers import Tenant, make_tenant, new_user_body

STATUSES = [UserStatus.ACTIVE, UserStatus.INVITED, UserStatus.DISABLED, UserStatus.LOCKED]
ROLES = [Role.PBX_ADMIN, Role.CUSTOMER_ACCOUNTING]
SORTS = ["id", "login", "last_name", "status", "created_at"]


@pytest.fixture
async def crowd(session: AsyncSession, state: AppState) -> Tenant:
    """120 users besides the admin, with repeated last names, statuses and creation times."""
    tenant = await make_tenant(session, state)
    other = await make_tenant(session, state)
    start = utcnow() - timedelta(days=1)
    for number in range(120):
        user = await create_user(
            session,
            state,
            tenant.customer,
            login=f"{'Crowd' if number % 2 else 'crowd'}.{number:03d}",
            role=ROLES[number % 2],
            status=STATUSES[number % 4],
            password=None,
            last_name=f"name{number % 7}",
            first_name="Findme" if number % 10 == 0 else "Erika",
            email=f"person{number}@example.com",
        )
        # Every three users share a creation time: the id must break the tie.
        user.created_at = start + timedelta(minutes=number // 3)
    for number in range(5):
        await create_user(session, state, other.customer, login=f"other.{number}", password=None)
    await session.flush()
    return tenant


async def _all_pages(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/v1/users", params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 10


@pytest.mark.parametrize("sort", [*SORTS, *[f"-{sort}" for sort in SORTS]])
async def test_pages_have_no_duplicates_or_gaps(
    client: httpx.AsyncClient, crowd: Tenant, sort: str
) -> None:
    pages = await _all_pages(client, crowd.headers, sort=sort, limit=50)
    assert [len(page) for page in pages] == [50, 50, 21]
    paged = [item["id"] for page in pages for item in page]
    assert len(set(paged)) == 121
    whole = await client.get(
        "/api/v1/users", params={"sort": sort, "limit": 200}, headers=crowd.headers
    )
    assert [item["id"] for item in whole.json()["items"]] == paged
    assert whole.json()["next_cursor"] is None
    key = sort.lstrip("-")
    if key in ("id", "status", "created_at"):
        items = [item for page in pages for item in page]
        expected = sorted(items, key=lambda item: (item[key], item["id"]), reverse=sort[0] == "-")
        assert [item["id"] for item in expected] == paged


async def test_login_sort_is_case_insensitive(client: httpx.AsyncClient, crowd: Tenant) -> None:
    response = await client.get(
        "/api/v1/users", params={"sort": "login", "limit": 4}, headers=crowd.headers
    )
    logins = [item["login"] for item in response.json()["items"]]
    assert logins == ["crowd.000", "Crowd.001", "crowd.002", "Crowd.003"]


async def test_filters(client: httpx.AsyncClient, crowd: Tenant) -> None:
    pages = await _all_pages(
        client, crowd.headers, status="locked", role="customer_accounting", limit=7
    )
    items = [item for page in pages for item in page]
    assert len(items) == 30
    assert {(item["status"], item["role"]) for item in items} == {("locked", "customer_accounting")}
    found = await client.get("/api/v1/users", params={"q": "FINDME"}, headers=crowd.headers)
    assert len(found.json()["items"]) == 12
    by_login = await client.get("/api/v1/users", params={"q": "CROWD.11"}, headers=crowd.headers)
    assert {item["login"] for item in by_login.json()["items"]} == {
        f"{'Crowd' if n % 2 else 'crowd'}.{n}" for n in range(110, 120)
    }
    by_mail = await client.get("/api/v1/users", params={"q": "person7@"}, headers=crowd.headers)
    assert [item["email"] for item in by_mail.json()["items"]] == ["person7@example.com"]
    wildcard = await client.get("/api/v1/users", params={"q": "%"}, headers=crowd.headers)
    assert wildcard.json()["items"] == []
    underscore = await client.get("/api/v1/users", params={"q": "_"}, headers=crowd.headers)
    assert underscore.json()["items"] == []


async def test_total_only_on_request(client: httpx.AsyncClient, crowd: Tenant) -> None:
    plain = await client.get("/api/v1/users", params={"limit": 5}, headers=crowd.headers)
    assert plain.json()["total"] is None
    counted = await client.get(
        "/api/v1/users",
        params={"limit": 5, "include_total": "true", "status": "active"},
        headers=crowd.headers,
    )
    assert counted.json()["total"] == 31
    assert len(counted.json()["items"]) == 5


async def test_lists_never_mix_customers(client: httpx.AsyncClient, crowd: Tenant) -> None:
    pages = await _all_pages(client, crowd.headers, limit=200, q="other")
    assert pages == [[]]
    everything = await _all_pages(client, crowd.headers, limit=200)
    assert all(not item["login"].startswith("other.") for item in everything[0])


def _cursor_for(**payload: Any) -> str:
    return encode_cursor(payload)


@pytest.mark.parametrize(
    ("params", "cursor"),
    [
        ({}, "not-a-cursor!!"),
        ({}, "e30"),  # {}
        ({}, "W10"),  # []
        ({}, "bnVsbA"),  # null
        ({}, "%%%"),
        ({"sort": "login"}, "__PAGE1__"),  # made for sort=id
        ({"status": "active"}, "__PAGE1__"),  # made for other filters
        ({"sort": "created_at"}, "created_at:garbage"),
        ({"sort": "created_at"}, "created_at:naive"),
        ({"sort": "status"}, "status:bogus"),
        ({}, "id:string"),
        ({}, "id:huge"),
        ({"sort": "status"}, "status:list"),
        ({"sort": "last_name"}, "last_name:nul"),
        ({"sort": "last_name"}, "last_name:surrogate"),
        ({"sort": "last_name"}, "last_name:dict"),
        ({"sort": "created_at"}, "created_at:overflow"),
        ({}, "id:bool"),
        ({}, "x" * 600),
    ],
)
async def test_bad_cursor_is_a_client_error(
    client: httpx.AsyncClient,
    session: AsyncSession,
    state: AppState,
    params: dict[str, str],
    cursor: str,
) -> None:
    crowd = await make_tenant(session, state)
    for _ in range(3):
        await create_user(session, state, crowd.customer, password=None)
    first = await client.get("/api/v1/users", params={"limit": 2}, headers=crowd.headers)
    fingerprint_cursor = first.json()["next_cursor"]
    payload = decode_cursor(fingerprint_cursor)
    crafted = {
        "__PAGE1__": fingerprint_cursor,
        "created_at:garbage": _cursor_for(**{**payload, "s": "created_at", "v": "yesterday"}),
        "created_at:naive": _cursor_for(**{**payload, "s": "created_at", "v": "2026-01-01T00:00"}),
        "status:bogus": _cursor_for(**{**payload, "s": "status", "v": "zombie"}),
        "id:string": _cursor_for(**{**payload, "i": "7"}),
        "id:bool": _cursor_for(**{**payload, "i": True}),
        "id:huge": _cursor_for(**{**payload, "i": 2**40, "v": 2**40}),
        "status:list": _cursor_for(**{**payload, "s": "status", "v": ["active"]}),
        "last_name:nul": _cursor_for(**{**payload, "s": "last_name", "v": "a\x00b"}),
        "last_name:surrogate": _cursor_for(**{**payload, "s": "last_name", "v": "\ud800"}),
        "last_name:dict": _cursor_for(**{**payload, "s": "last_name", "v": {}}),
        "created_at:overflow": _cursor_for(
            **{**payload, "s": "created_at", "v": "9999-12-31T23:00:00-05:00"}
        ),
    }
    response = await client.get(
        "/api/v1/users",
        params={**params, "cursor": crafted.get(cursor, cursor)},
        headers=crowd.headers,
    )
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] in ("invalid_cursor", "validation_error")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"limit": "ten"},
        {"sort": "password_hash"},
        {"sort": "--id"},
        {"status": "sleeping"},
        {"role": "root"},
        {"q": ""},
        {"q": "x" * 101},
        {"q": "nul\x00byte"},
        {"q": "line\nbreak"},
        {"include_total": "maybe"},
    ],
)
async def test_bad_list_parameters(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, params: dict[str, Any]
) -> None:
    tenant = await make_tenant(session, state)
    response = await client.get("/api/v1/users", params=params, headers=tenant.headers)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_list_queries_do_not_grow_with_rows(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, engine: AsyncEngine
) -> None:
    """The invitation block is loaded in the list query itself (no query per row)."""
    tenant = await make_tenant(session, state)
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    async def queries_for_list() -> int:
        statements.clear()
        event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            response = await client.get(
                "/api/v1/users", params={"limit": 200}, headers=tenant.headers
            )
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", count)
        assert response.status_code == 200
        return len(statements)

    for number in range(2):
        await client.post(
            "/api/v1/users",
            json=new_user_body(login=f"few.{number}", email=f"f{number}@example.com"),
            headers=tenant.headers,
        )
    few = await queries_for_list()
    for number in range(20):
        await client.post(
            "/api/v1/users",
            json=new_user_body(login=f"many.{number}", email=f"m{number}@example.com"),
            headers=tenant.headers,
        )
    listed = await client.get("/api/v1/users", params={"limit": 200}, headers=tenant.headers)
    assert sum(item["invitation"] is not None for item in listed.json()["items"]) == 22
    assert await queries_for_list() == few


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("50%", {"50% off"}),
        ("0_o", {"a0_own"}),
        ("/x", {"a/x", "a//x"}),
        ("//", {"a//x"}),
        ("\\y", {"back\\yard"}),
        ("%", {"50% off"}),
        ("_", {"a0_own"}),
    ],
)
async def test_search_matches_wildcards_and_escapes_literally(
    session: AsyncSession, state: AppState, client: httpx.AsyncClient, q: str, expected: set[str]
) -> None:
    tenant = await make_tenant(session, state)
    names = ["50% off", "50x off", "a0_own", "a0xown", "a/x", "a//x", "back\\yard", "backyard"]
    for name in names:
        await create_user(session, state, tenant.customer, first_name=name, password=None)
    await session.flush()
    found = await client.get("/api/v1/users", params={"q": q}, headers=tenant.headers)
    assert found.status_code == 200, found.text
    assert {item["first_name"] for item in found.json()["items"]} == expected


@pytest.mark.parametrize("sort", [*SORTS, *[f"-{sort}" for sort in SORTS]])
async def test_filtered_pages_follow_every_sort(
    client: httpx.AsyncClient, crowd: Tenant, sort: str
) -> None:
    params = {"sort": sort, "status": "active", "q": "crowd.0", "include_total": "true"}
    pages = await _all_pages(client, crowd.headers, limit=4, **params)
    paged = [item["id"] for page in pages for item in page]
    whole = await client.get(
        "/api/v1/users", params={**params, "limit": 200}, headers=crowd.headers
    )
    assert whole.json()["total"] == 25
    assert [item["id"] for item in whole.json()["items"]] == paged
    assert len(set(paged)) == 25
    assert all(item["status"] == "active" for page in pages for item in page)
