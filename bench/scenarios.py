"""The scenarios of the bench, by name, with their targets (see docs/benchmarks.md)."""

from collections.abc import Callable

from loadgen import Request
from logins import healthz_under_logins, logins
from measure import (
    Bench,
    Row,
    ceiling_request,
    check_endpoint,
    interleaved,
    pbx_token,
    ratio_row,
)
from userlist import users


def compare_get(name: str, path: str, minimum: float) -> Callable[[Bench], list[Row]]:
    """An anonymous GET against the ceiling."""

    def scenario(bench: Bench) -> list[Row]:
        check_endpoint(bench, "GET", path, expect=200)
        results = interleaved(
            bench, {"ceiling": ceiling_request(bench), "subject": Request(bench.url(path))}
        )
        return [ratio_row(name, minimum, results["subject"], results["ceiling"])]

    return scenario


def compare_authenticated(
    name: str, method: str, path: Callable[[Bench], str], minimum: float, expect: int
) -> Callable[[Bench], list[Row]]:
    """A request of the PBX administrator against the ceiling."""

    def scenario(bench: Bench) -> list[Row]:
        token = pbx_token(bench)
        check_endpoint(bench, method, path(bench), expect=expect, token=token)
        subject = Request(bench.url(path(bench)), "bearer.lua", bench.bearer(token, method))
        results = interleaved(bench, {"ceiling": ceiling_request(bench), "subject": subject})
        return [ratio_row(name, minimum, results["subject"], results["ceiling"])]

    return scenario


SCENARIOS: dict[str, Callable[[Bench], list[Row]]] = {
    "healthz": compare_get("healthz", "/healthz", 0.95),
    "me": compare_authenticated("me", "GET", lambda _bench: "/api/v1/me", 0.20, 200),
    "login": logins,
    "healthz-under-login": healthz_under_logins,
    "users": users,
    "pbx-session": compare_authenticated(
        "pbx-session",
        "POST",
        lambda bench: f"/api/v1/contracts/{bench.seeded.contract_id}/pbx-sessions",
        0.20,
        201,
    ),
    "jwks": compare_get("jwks", "/.well-known/jwks.json", 0.95),
}
# Rows a scenario produces, for the SKIP lines of a scenario that could not run.
ROW_NAMES = {"users": ["users-first", "users-deep"]}
TARGETS = {
    "healthz": ">= 95% of ceiling",
    "me": ">= 20% of ceiling",
    "login": ">= 90% of hash limit",
    "healthz-under-login": "p99 <= 15 ms",
    "users-first": ">= 10% of ceiling",
    "users-deep": ">= 10% of ceiling, >= 90% of first",
    "pbx-session": ">= 20% of ceiling",
    "jwks": ">= 95% of ceiling",
}
