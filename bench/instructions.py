"""Instructions per request of one endpoint, counted by valgrind, to compare two versions.

Unlike time, the count does not move with the load of a shared machine: the same code, data
and request give nearly the same figure on every run. It is for telling whether a change
made a request cheaper, not for the targets (those are ratios of time: bench/run.py). It
counts the service's own work in-process, through the ASGI interface (no HTTP server, no
socket); time in the kernel and in a PostgreSQL server is not in it, nor are cache misses.

    .venv/bin/python bench/instructions.py --scenario users [--db sqlite|postgres] [--requests N]

The database is made and seeded as bench/run.py does; the app runs twice under
`valgrind --tool=callgrind`, with 1 and with 1 + N measured requests after the same warm-up,
and the difference divided by N is the figure. Needs valgrind (Debian package `valgrind`);
a run takes one to three minutes.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The app of this checkout, also where another one is installed (comparing two versions).
sys.path.insert(0, str(ROOT))

from seed import fresh_database, migrate, seed, service_env, service_settings  # noqa: E402

WARM_UP = 100
SCENARIOS = ("healthz", "me", "users", "pbx-session")


def _request(scenario: str, job: dict[str, Any]) -> tuple[str, str, bytes, str | None]:
    """(method, path, query string, bearer token) of one request of the scenario."""
    if scenario == "healthz":
        return "GET", "/healthz", b"", None
    if scenario == "me":
        return "GET", "/api/v1/me", b"", job["admin_token"]
    if scenario == "users":
        return "GET", "/api/v1/users", b"sort=login&limit=50", job["admin_token"]
    path = f"/api/v1/contracts/{job['contract_id']}/pbx-sessions"
    return "POST", path, b"", job["pbx_token"]


async def _serve_in_process(job: dict[str, Any], scenario: str, requests: int) -> None:
    os.environ.update(job["env"])
    from app.main import create_app

    app = create_app()
    method, path, query, token = _request(scenario, job)
    headers = [(b"host", b"127.0.0.1")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async with app.router.lifespan_context(app):
        for _ in range(WARM_UP + requests):
            await app({**scope, "state": {}}, receive, send)
    if any(status >= 400 for status in statuses):
        raise SystemExit(f"{scenario}: unexpected status {sorted(set(statuses))}")


def _count(job_file: Path, scenario: str, requests: int) -> int:
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--job",
            str(job_file),
            "--scenario",
            scenario,
            "--requests",
            str(requests),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    collected = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or collected is None:
        raise SystemExit(f"the run under valgrind failed:\n{done.stderr[-2000:]}")
    return int(collected.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=SCENARIOS, required=True)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--job", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job is not None:  # the run under valgrind
        job = json.loads(args.job.read_text())
        asyncio.run(_serve_in_process(job, args.scenario, args.requests))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("bench: valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="eservice-instructions-") as folder:
        workdir = Path(folder)
        with fresh_database(args.db, workdir) as database_url:
            env = service_env(database_url, workdir / "keys")
            migrate(env)
            seeded = seed(service_settings(env), 100_000 if args.scenario == "users" else 64)
            job_file = workdir / "job.json"
            job_file.write_text(
                json.dumps(
                    {
                        "env": env,
                        "admin_token": seeded.admin_token,
                        "pbx_token": seeded.pbx_token,
                        "contract_id": seeded.contract_id,
                    }
                )
            )
            base = _count(job_file, args.scenario, 1)
            measured = _count(job_file, args.scenario, 1 + args.requests)
    per_request = (measured - base) / args.requests
    print(f"{args.db} {args.scenario}: {per_request:,.0f} instructions per request")


if __name__ == "__main__":
    main()
