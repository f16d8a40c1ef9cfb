"""Benchmark of the service against a bare FastAPI app, on SQLite and PostgreSQL.

    .venv/bin/python bench/run.py [--db sqlite|postgres|both] [--duration S] [--only SCENARIO]

For each database: a fresh database, migrated and seeded; the service with one uvicorn
worker pinned to core 0, wrk pinned to core 1; each scenario alternates runs of the ceiling
and of the service and reports the ratio of the medians. See docs/benchmarks.md.
"""

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from loadgen import LOAD_CORE, WrkFailed, WrkMissing, require_wrk
from measure import Bench, Broken, Row, Skipped
from scenarios import ROW_NAMES, SCENARIOS, TARGETS
from seed import (
    PASSWORD,
    MigrationFailed,
    fresh_database,
    migrate,
    seed,
    service_env,
    service_settings,
)
from server import SERVER_CORE, SUBJECT_FACTORY, ServerFailed, ceiling_app, serve, subject_app

from app.core.security import PasswordHasher

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LIST_USERS = 100_000
LOGIN_USERS = 64
VERIFY_SAMPLES = 10
VERIFY_WARMUP = 2
# Above this one-minute load average, something else competes with the server and wrk.
BUSY_LOAD = 0.5


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds of one measured run (default 5)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument(
        "--only", choices=sorted(SCENARIOS), action="append", help="run only this scenario"
    )
    parser.add_argument(
        "--subject",
        default=SUBJECT_FACTORY,
        help=f"uvicorn app factory of the service under test (default {SUBJECT_FACTORY})",
    )
    return parser.parse_args(argv)


def machine() -> dict[str, object]:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next(
        (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line), "?"
    )
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "load_average": Path("/proc/loadavg").read_text().split()[:3],
        "cpus": os.cpu_count(),
        "model": model,
        "memory_gib": round(memory_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


@contextmanager
def verify_timer(env: dict[str, str]) -> Iterator[Callable[[], float]]:
    """A function timing one argon2 verify with the service's settings, on the service's core.

    It runs in this process, moved to the service's core between load runs (the service is
    idle then), so that the hashing limit and the logins are measured on the same core. One
    event loop serves every measurement, so its hashing thread stays warm, as the service's.
    """
    hasher = PasswordHasher(service_settings(env))
    stored = hasher.hash_blocking(PASSWORD)

    async def timed() -> list[float]:
        samples = []
        for number in range(VERIFY_WARMUP + VERIFY_SAMPLES):
            started = time.perf_counter()
            matches, _ = await hasher.verify(PASSWORD, stored)
            if number >= VERIFY_WARMUP:
                samples.append(time.perf_counter() - started)
            assert matches
        return samples

    with asyncio.Runner() as runner:

        def measure() -> float:
            os.sched_setaffinity(0, {SERVER_CORE})
            try:
                return statistics.median(runner.run(timed()))
            finally:
                os.sched_setaffinity(0, {LOAD_CORE})

        yield measure


def run_database(kind: str, args: argparse.Namespace, ceiling_url: str) -> list[Row]:
    selected = args.only or list(SCENARIOS)
    list_users = LIST_USERS if "users" in selected else LOGIN_USERS
    with tempfile.TemporaryDirectory(prefix=f"eservice-bench-{kind}-") as tmp:
        workdir = Path(tmp)
        with fresh_database(kind, workdir) as database_url:
            env = service_env(database_url, workdir / "keys")
            started = time.monotonic()
            migrate(env)
            migrated = time.monotonic()
            seeded = seed(service_settings(env), list_users)
            print(
                f"[{kind}] migrated in {migrated - started:.1f} s, "
                f"seeded {list_users:,} users in {time.monotonic() - migrated:.1f} s",
                flush=True,
            )
            with (
                verify_timer(env) as measure_verify,
                serve(
                    subject_app(args.subject),
                    env=env,
                    log=workdir / "service.log",
                    ready_path="/healthz",
                ) as url,
            ):
                bench = Bench(
                    subject_url=url,
                    ceiling_url=ceiling_url,
                    seeded=seeded,
                    seconds=args.duration,
                    rounds=args.rounds,
                    connections=args.connections,
                    warmup=2.0,
                    measure_verify=measure_verify,
                )
                return [row for name in selected for row in run_scenario(kind, name, bench)]


def run_scenario(kind: str, name: str, bench: Bench) -> list[Row]:
    print(f"[{kind}] {name} ...", flush=True)
    names = ROW_NAMES.get(name, [name])
    try:
        rows = SCENARIOS[name](bench)
    except Skipped as skip:
        rows = [
            Row(row, TARGETS[row], "SKIP", note=f"{skip}; measured after the merge")
            for row in names
        ]
    except (Broken, WrkFailed) as broken:
        note = str(broken).splitlines()[0]
        rows = [Row(row, TARGETS[row], "ERROR", note=note) for row in names]
    for row in rows:
        print(f"[{kind}]   {format_row(kind, row)}", flush=True)
    return rows


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} ms" if unit.startswith("ms") else f"{value:,.0f}/s"


def format_row(kind: str, row: Row) -> str:
    ratio = "-" if row.ratio is None else f"{row.ratio:.1%}"
    subject = _figure(row.subject, row.unit) + (" p99" if row.unit == "ms p99" else "")
    return (
        f"{kind:<9}{row.scenario:<21}{subject:>14}{_figure(row.ceiling, row.unit):>12}"
        f"{ratio:>9}  {row.target:<36}{row.verdict:<6}{row.note}"
    )


def print_table(results: dict[str, list[Row]]) -> None:
    print()
    print(
        f"{'db':<9}{'scenario':<21}{'subject':>14}{'ceiling':>12}{'ratio':>9}  "
        f"{'target':<36}{'result':<6}note"
    )
    for kind, rows in results.items():
        for row in rows:
            print(format_row(kind, row))


def write_results(results: dict[str, list[Row]], args: argparse.Namespace) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{stamp}.json"
    document = {
        "at": stamp,
        "command": shlex.join([sys.executable, *sys.argv]),
        "machine": machine(),
        "duration": args.duration,
        "rounds": args.rounds,
        "connections": args.connections,
        "results": {
            kind: [dataclasses.asdict(row) for row in rows] for kind, rows in results.items()
        },
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        require_wrk()
    except WrkMissing as missing:
        print(f"bench: {missing}", file=sys.stderr)
        return 2
    # This process (the /healthz probe, the walks) stays on the load generator's core.
    os.sched_setaffinity(0, {LOAD_CORE})
    load = float(Path("/proc/loadavg").read_text().split()[0])
    if load > BUSY_LOAD:
        print(
            f"bench: warning: the machine is busy (load average {load:.1f}); other processes "
            "share both cores, so the figures are unreliable",
            file=sys.stderr,
        )
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results: dict[str, list[Row]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="eservice-bench-ceiling-") as tmp,
        serve(ceiling_app(), env={}, log=Path(tmp) / "ceiling.log") as ceiling_url,
    ):
        for kind in kinds:
            try:
                results[kind] = run_database(kind, args, ceiling_url)
            except (MigrationFailed, ServerFailed, OSError, asyncpg.PostgresError) as error:
                print(f"bench: {kind}: {error}", file=sys.stderr)
                results[kind] = [Row("setup", "-", "ERROR", note=str(error).splitlines()[0])]
    print_table(results)
    print(f"\nresults: {write_results(results, args)}")
    failed = [row for rows in results.values() for row in rows if row.verdict in {"FAIL", "ERROR"}]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
