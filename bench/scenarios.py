"""The measured scenarios: each compares the service with the ceiling (or the hashing limit)."""

import http.client
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import httpx
from loadgen import Request, WrkResult, finish_wrk, run_wrk, start_wrk
from seed import ADMIN_LOGIN, PASSWORD, PBX_LOGIN, USER_PREFIX, Seeded
from server import SERVER_CORES

LOGIN_PATH = "/api/v1/auth/login"
DEEP_ROW = 90_000
WALK_LIMIT = 200
PAGE_LIMIT = 50
MAX_ERROR_SHARE = 0.01
PROBE_INTERVAL = 0.01  # 100 /healthz probes per second during the login flood


@dataclass
class Row:
    """One line of the results table."""

    scenario: str
    target: str
    verdict: str  # PASS, FAIL, SKIP or ERROR
    subject: float | None = None
    ceiling: float | None = None
    ratio: float | None = None
    unit: str = "req/s"
    note: str = ""
    rounds: dict[str, list[dict[str, object]]] = field(default_factory=dict)


@dataclass
class Bench:
    """Where the servers are, what was seeded, and how long and how often to measure."""

    subject_url: str
    ceiling_url: str
    seeded: Seeded
    seconds: float
    rounds: int
    connections: int
    warmup: float
    # Times one argon2 verify with the service's settings on the service's (idle) core.
    measure_verify: Callable[[], float]
    tokens: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.subject_url + path

    def bearer(self, token: str, method: str = "GET") -> tuple[tuple[str, str], ...]:
        return (("BENCH_TOKEN", token), ("BENCH_METHOD", method))


class Skipped(Exception):
    """The endpoint answers 404: not in this build yet; measured once it is merged."""


class Broken(Exception):
    """The endpoint answers something other than success; the figures would mean nothing."""


def check_endpoint(
    bench: Bench, method: str, path: str, *, expect: int, token: str | None = None, **kwargs: object
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.request(method, bench.url(path), headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]
    if response.status_code == 404:
        raise Skipped(f"{method} {path.split('?')[0]} answers 404: not in this build")
    if response.status_code != expect:
        raise Broken(f"{method} {path} answered {response.status_code}: {response.text[:200]}")
    return response


def interleaved(bench: Bench, requests: dict[str, Request]) -> dict[str, list[WrkResult]]:
    """Warm each up, then take turns, round after round, so drift hits all of them alike."""
    for request in requests.values():
        run_wrk(request, seconds=bench.warmup, connections=bench.connections)
    results: dict[str, list[WrkResult]] = {name: [] for name in requests}
    for _ in range(bench.rounds):
        for name, request in requests.items():
            results[name].append(
                run_wrk(request, seconds=bench.seconds, connections=bench.connections)
            )
    return results


def median_rate(results: list[WrkResult]) -> float:
    return statistics.median(result.ok_rate for result in results)


def ratio_row(
    name: str, minimum: float, subject: list[WrkResult], ceiling: list[WrkResult], note: str = ""
) -> Row:
    subject_rate, ceiling_rate = median_rate(subject), median_rate(ceiling)
    ratio = subject_rate / ceiling_rate
    errors = max(result.error_share for result in subject)
    verdict = "PASS" if ratio >= minimum else "FAIL"
    if errors > MAX_ERROR_SHARE:
        verdict, note = "FAIL", f"{errors:.1%} of requests failed. {note}"
    return Row(
        scenario=name,
        target=f">= {minimum:.0%} of ceiling",
        verdict=verdict,
        subject=subject_rate,
        ceiling=ceiling_rate,
        ratio=ratio,
        note=note.strip(),
        rounds={
            "subject": [result.as_dict() for result in subject],
            "ceiling": [result.as_dict() for result in ceiling],
        },
    )


def ceiling_request(bench: Bench) -> Request:
    return Request(bench.ceiling_url + "/")


def compare_get(name: str, path: str, minimum: float) -> Callable[[Bench], list[Row]]:
    """An anonymous GET against the ceiling."""

    def scenario(bench: Bench) -> list[Row]:
        check_endpoint(bench, "GET", path, expect=200)
        results = interleaved(
            bench, {"ceiling": ceiling_request(bench), "subject": Request(bench.url(path))}
        )
        return [ratio_row(name, minimum, results["subject"], results["ceiling"])]

    return scenario


# -- tokens -------------------------------------------------------------------


def token_for(bench: Bench, login: str, seeded_token: str) -> str:
    """An access token through the login endpoint; the seeded session's token without it."""
    if login in bench.tokens:
        return bench.tokens[login]
    response = httpx.post(
        bench.url(LOGIN_PATH), json={"login": login, "password": PASSWORD}, timeout=30
    )
    if response.status_code == 200:
        token = str(response.json()["access_token"])
    elif response.status_code == 404:
        token = seeded_token  # the login endpoint is not in this build
    else:
        raise Broken(f"login of {login} answered {response.status_code}: {response.text[:200]}")
    bench.tokens[login] = token
    return token


def pbx_token(bench: Bench) -> str:
    return token_for(bench, PBX_LOGIN, bench.seeded.pbx_token)


def admin_token(bench: Bench) -> str:
    return token_for(bench, ADMIN_LOGIN, bench.seeded.admin_token)


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


# -- logins -------------------------------------------------------------------


def login_request(bench: Bench) -> Request:
    count = min(bench.seeded.list_users, 64)
    env = (
        ("BENCH_LOGIN_PREFIX", USER_PREFIX),
        ("BENCH_LOGIN_COUNT", str(count)),
        ("BENCH_PASSWORD", PASSWORD),
    )
    return Request(bench.url(LOGIN_PATH), "login.lua", env)


LOGIN_CONNECTIONS = 8


def logins(bench: Bench) -> list[Row]:
    """Successful logins per second against the hashing limit (1 core / one verify's time)."""
    check_endpoint(
        bench,
        "POST",
        LOGIN_PATH,
        expect=200,
        json={"login": f"{USER_PREFIX}000000", "password": PASSWORD},
    )
    request = login_request(bench)
    run_wrk(request, seconds=bench.warmup, connections=LOGIN_CONNECTIONS)
    verifies: list[float] = []
    results: list[WrkResult] = []
    for _ in range(bench.rounds):  # the hashing limit, measured between the login runs
        verifies.append(bench.measure_verify())
        results.append(run_wrk(request, seconds=bench.seconds, connections=LOGIN_CONNECTIONS))
    verify = statistics.median(verifies)
    limit = SERVER_CORES / verify
    rate = median_rate(results)
    errors = max(result.error_share for result in results)
    verdict = "PASS" if rate >= 0.9 * limit and errors <= MAX_ERROR_SHARE else "FAIL"
    return [
        Row(
            scenario="login",
            target=">= 90% of hash limit",
            verdict=verdict,
            subject=rate,
            ceiling=limit,
            ratio=rate / limit,
            note=f"limit = {SERVER_CORES} core / {verify * 1e3:.1f} ms per argon2 verify"
            + (f"; {errors:.1%} failed" if errors else ""),
            rounds={
                "subject": [result.as_dict() for result in results],
                "verify_seconds": [{"median": seconds} for seconds in verifies],
            },
        )
    ]


def healthz_under_logins(bench: Bench) -> list[Row]:
    """/healthz latency at 100 probes/s while a login flood keeps the server's core busy."""
    check_endpoint(
        bench,
        "POST",
        LOGIN_PATH,
        expect=200,
        json={"login": f"{USER_PREFIX}000001", "password": PASSWORD},
    )
    probe_seconds = 2 * bench.seconds
    flood = start_wrk(
        login_request(bench), seconds=probe_seconds + 2, connections=LOGIN_CONNECTIONS
    )
    time.sleep(1)  # let the flood fill the hashing threads first
    latencies = probe(bench.url("/healthz"), probe_seconds)
    flood_result = finish_wrk(flood, timeout=probe_seconds + 40)
    latencies.sort()
    p99 = latencies[math.ceil(0.99 * len(latencies)) - 1]
    p50 = latencies[len(latencies) // 2]
    return [
        Row(
            scenario="healthz-under-login",
            target="p99 <= 15 ms",
            verdict="PASS" if p99 <= 15 else "FAIL",
            subject=p99,
            unit="ms p99",
            note=f"{len(latencies)} probes, p50 {p50:.2f} ms, max {latencies[-1]:.1f} ms; "
            f"logins meanwhile {flood_result.ok_rate:.1f}/s",
            rounds={"flood": [flood_result.as_dict()], "probe_ms": [{"sorted": latencies}]},
        )
    ]


def probe(url: str, seconds: float) -> list[float]:
    """GET `url` on a schedule; latency counts from the scheduled time (no coordinated omission)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    latencies: list[float] = []
    scheduled = time.perf_counter()
    end = scheduled + seconds
    try:
        while scheduled < end:
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            connection.request("GET", parts.path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise Broken(f"/healthz answered {response.status} during the login flood")
            latencies.append((time.perf_counter() - scheduled) * 1e3)
            scheduled += PROBE_INTERVAL
    finally:
        connection.close()
    return latencies


# -- user list ------------------------------------------------------------------


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
    deep_share = deep_row.subject / first_row.subject
    deep_row.target += ", >= 90% of first"
    deep_row.note = f"deep/first = {deep_share:.0%}. {deep_row.note}".strip()
    if deep_share < 0.9:
        deep_row.verdict = "FAIL"
    return [first_row, deep_row]


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
