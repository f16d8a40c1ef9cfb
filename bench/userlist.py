"""The user list: the first page and the page at row 90,000 of 100,000 users, by login."""

from urllib.parse import quote

import httpx
from loadgen import Request
from measure import (
    Bench,
    Broken,
    Row,
    admin_token,
    ceiling_request,
    check_endpoint,
    interleaved,
    ratio_row,
)

DEEP_ROW = 90_000
WALK_LIMIT = 200
PAGE_LIMIT = 50


def users_path(limit: int, cursor: str | None = None) -> str:
    path = f"/api/v1/users?sort=login&limit={limit}"
    return path + (f"&cursor={quote(cursor, safe='')}" if cursor else "")


def deep_cursor(bench: Bench, token: str) -> str:
    """Walk the list once, 200 rows a page, to the cursor of the page that starts at row 90,000."""
    cursor: str | None = None
    seen = 0
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        while seen < DEEP_ROW:
            response = client.get(bench.url(users_path(WALK_LIMIT, cursor)))
            if response.status_code != 200:
                raise Broken(f"user list answered {response.status_code}: {response.text[:200]}")
            page = response.json()
            seen += len(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                raise Broken(f"the user list ended after {seen} rows, before row {DEEP_ROW}")
    return cursor


def users(bench: Bench) -> list[Row]:
    """A page of 50 of 100,000 users sorted by login: the first page and the one at row 90,000."""
    token = admin_token(bench)
    first = users_path(PAGE_LIMIT)
    check_endpoint(bench, "GET", first, expect=200, token=token)
    deep = users_path(PAGE_LIMIT, deep_cursor(bench, token))
    results = interleaved(
        bench,
        {
            "ceiling": ceiling_request(bench),
            "first": Request(bench.url(first), "bearer.lua", bench.bearer(token)),
            "deep": Request(bench.url(deep), "bearer.lua", bench.bearer(token)),
        },
    )
    first_row = ratio_row("users-first", 0.10, results["first"], results["ceiling"])
    deep_row = ratio_row("users-deep", 0.10, results["deep"], results["ceiling"])
    assert first_row.subject is not None
    assert deep_row.subject is not None
    deep_share = deep_row.subject / first_row.subject if first_row.subject else 0.0
    deep_row.target += ", >= 90% of first"
    deep_row.note = f"deep/first = {deep_share:.0%}. {deep_row.note}".strip()
    if deep_share < 0.9:
        deep_row.verdict = "FAIL"
    return [first_row, deep_row]
