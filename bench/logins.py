"""Logins against the hashing limit, and /healthz latency while logins saturate the core."""

import http.client
import math
import statistics
import time
from urllib.parse import urlsplit

from loadgen import Request, WrkResult, finish_wrk, run_wrk, start_wrk
from measure import LOGIN_PATH, MAX_ERROR_SHARE, Bench, Broken, Row, check_endpoint, median_rate
from seed import PASSWORD, USER_PREFIX
from server import SERVER_CORES, wait_until_idle

PROBE_INTERVAL = 0.01  # 100 /healthz probes per second during the login flood
LOGIN_CONNECTIONS = 8


def login_request(bench: Bench) -> Request:
    return logins_of(bench.url(LOGIN_PATH), min(bench.seeded.list_users, 64))


def logins_of(url: str, users: int) -> Request:
    """Successful logins at `url`, taking turns among the first `users` seeded users."""
    env = (
        ("BENCH_LOGIN_PREFIX", USER_PREFIX),
        ("BENCH_LOGIN_COUNT", str(users)),
        ("BENCH_PASSWORD", PASSWORD),
    )
    return Request(url, "login.lua", env)


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
    verifies: list[tuple[float, float]] = []
    results: list[WrkResult] = []
    for _ in range(bench.rounds):
        # The hashing limit, measured right before and right after each login run: the
        # machine's speed drifts, and each run is compared with the limit of its own time.
        # Logins still queued when wrk stops would share the core with the measurement.
        wait_until_idle(bench.url("/"))
        before = bench.measure_verify()
        results.append(run_wrk(request, seconds=bench.seconds, connections=LOGIN_CONNECTIONS))
        wait_until_idle(bench.url("/"))
        verifies.append((before, bench.measure_verify()))
    # One ratio per run (its rate against the limit of the verifies around it); the median.
    ratios = [
        result.ok_rate * (before + after) / 2 / SERVER_CORES
        for result, (before, after) in zip(results, verifies, strict=True)
    ]
    ratio = statistics.median(ratios)
    rate = median_rate(results)
    verify = statistics.median(sum(pair) / 2 for pair in verifies)
    errors = max(result.error_share for result in results)
    verdict = "PASS" if ratio >= 0.9 and errors <= MAX_ERROR_SHARE else "FAIL"
    return [
        Row(
            scenario="login",
            target=">= 90% of hash limit",
            verdict=verdict,
            subject=rate,
            ceiling=SERVER_CORES / verify,
            ratio=ratio,
            note=f"limit = {SERVER_CORES} core / {verify * 1e3:.1f} ms per argon2 verify;"
            f" per run {', '.join(f'{r:.1%}' for r in ratios)}"
            + (f"; {errors:.1%} failed" if errors else ""),
            rounds={
                "subject": [result.as_dict() for result in results],
                "verify_seconds": [
                    {"before": before, "after": after} for before, after in verifies
                ],
                "ratios": ratios,
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
