"""Where a login's CPU goes: the service's threads during a login flood, per login.

    .venv/bin/python bench/login_threads.py [--db sqlite|postgres] [--hash argon2|pbkdf2|sleep]
                                            [--seconds S] [--rounds N]

The `login` scenario of bench/run.py compares logins/s with the hashing limit (one core /
one verify's time). On one core the hash and the event loop take turns, so the ratio is
hash / (hash + loop) per login. This run shows both terms: the CPU time of the event loop's
thread and of the hashing threads, read from /proc for each login flood (wrk, 8
connections, the `login` scenario's request), with the real argon2 verify or with a
stand-in of the same duration (bench/standins.py):

- `argon2`: the service as it runs;
- `pbkdf2`: a verify as long as argon2's that touches almost no memory, so the loop's work
  meets caches argon2 did not just evict;
- `sleep`: no CPU in the "hash" at all.

"verify alone" is one argon2 verify timed in this process on the service's core between the
floods, as bench/run.py times it; "ratio" is logins/s times it. Not a scenario with a target:
a tool for finding out what limits the `login` scenario. See docs/benchmarks.md.
"""

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loadgen import require_wrk, run_wrk
from logins import LOGIN_CONNECTIONS, logins_of
from measure import LOGIN_PATH
from run import verify_timer
from seed import fresh_database, migrate, seed, service_env, service_settings
from server import SERVER_CORES, serve, server_pid, subject_app, wait_until_idle

BENCH_DIR = Path(__file__).resolve().parent
LOGIN_USERS = 64
FACTORIES = {
    "argon2": subject_app(),
    "pbkdf2": ["--app-dir", str(BENCH_DIR), "--factory", "standins:pbkdf2_app"],
    "sleep": ["--app-dir", str(BENCH_DIR), "--factory", "standins:sleep_app"],
}


@dataclass(frozen=True)
class ThreadTimes:
    """CPU seconds (user, system) of the event loop's thread and of all other threads."""

    loop_user: float
    loop_system: float
    others: float

    @classmethod
    def of(cls, pid: int) -> "ThreadTimes":
        ticks = os.sysconf("SC_CLK_TCK")
        loop_user = loop_system = others = 0.0
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                stat = (task / "stat").read_text()
            except OSError:  # the thread ended meanwhile
                continue
            # utime and stime are fields 14 and 15 of proc(5); fields[0] here is field 3.
            fields = stat.rsplit(")", 1)[1].split()
            user, system = int(fields[11]) / ticks, int(fields[12]) / ticks
            if int(task.name) == pid:  # the main thread runs the event loop
                loop_user, loop_system = user, system
            else:
                others += user + system
        return cls(loop_user, loop_system, others)


def flood(base_url: str, seconds: float, rounds: int, verify: Callable[[], float]) -> list[str]:
    request = logins_of(base_url + LOGIN_PATH, LOGIN_USERS)
    # Long enough for every user to log in once: the stand-ins verify each pair once for real.
    run_wrk(request, seconds=4, connections=LOGIN_CONNECTIONS)
    pid = server_pid(base_url + "/")
    assert pid is not None, "the server is not running"
    lines = []
    for _ in range(rounds):
        wait_until_idle(base_url + "/")
        alone = verify()
        before = ThreadTimes.of(pid)
        result = run_wrk(request, seconds=seconds, connections=LOGIN_CONNECTIONS)
        wait_until_idle(base_url + "/")
        after = ThreadTimes.of(pid)
        logins = max(result.requests - result.non_2xx - result.socket_errors, 1)
        loop_user = (after.loop_user - before.loop_user) / logins * 1e3
        loop_system = (after.loop_system - before.loop_system) / logins * 1e3
        hashing = (after.others - before.others) / logins * 1e3
        lines.append(
            f"{result.ok_rate:6.1f} logins/s  loop {loop_user + loop_system:5.2f} ms"
            f" (system {loop_system:4.2f})  hashing threads {hashing:5.2f} ms"
            f"  verify alone {alone * 1e3:5.2f} ms"
            f"  ratio {result.ok_rate * alone / SERVER_CORES:6.1%}"
            + (f"  {result.error_share:.1%} failed" if result.error_share else "")
        )
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--hash", choices=(*FACTORIES, "all"), default="all")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    require_wrk()
    kinds = list(FACTORIES) if args.hash == "all" else [args.hash]
    with tempfile.TemporaryDirectory(prefix="eservice-login-threads-") as folder:
        workdir = Path(folder)
        with fresh_database(args.db, workdir) as database_url:
            env = service_env(database_url, workdir / "keys")
            migrate(env)
            seed(service_settings(env), LOGIN_USERS)
            with verify_timer(env) as verify:
                for kind in kinds:
                    log = workdir / f"{kind}.log"
                    with serve(FACTORIES[kind], env=env, log=log, ready_path="/healthz") as url:
                        for line in flood(url, args.seconds, args.rounds, verify):
                            print(f"[{args.db}] {kind:7s} {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
