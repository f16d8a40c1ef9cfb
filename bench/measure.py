"""What every scenario shares: the bench's context, the check request, interleaved wrk runs."""

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from loadgen import Request, WrkResult, run_wrk
from seed import ADMIN_LOGIN, PASSWORD, PBX_LOGIN, Seeded

LOGIN_PATH = "/api/v1/auth/login"
MAX_ERROR_SHARE = 0.01


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
    bench: Bench,
    method: str,
    path: str,
    *,
    expect: int,
    token: str | None = None,
    json: object | None = None,
) -> httpx.Response:
    """One request before the load: SKIP on 404, ERROR on any answer but the expected one."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.request(method, bench.url(path), headers=headers, json=json, timeout=30)
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


def median_cpu(results: list[WrkResult]) -> float | None:
    samples = [result.server_cpu_ms for result in results if result.server_cpu_ms is not None]
    return statistics.median(samples) if samples else None


def ratio_row(
    name: str, minimum: float, subject: list[WrkResult], ceiling: list[WrkResult], note: str = ""
) -> Row:
    subject_rate, ceiling_rate = median_rate(subject), median_rate(ceiling)
    ratio = subject_rate / ceiling_rate
    errors = max(result.error_share for result in subject)
    cpu_subject, cpu_ceiling = median_cpu(subject), median_cpu(ceiling)
    if cpu_subject and cpu_ceiling:
        note = (
            f"CPU per request {cpu_subject:.3f} ms, ceiling {cpu_ceiling:.3f} ms "
            f"({cpu_ceiling / cpu_subject:.0%}). {note}"
        )
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
