"""Driving wrk (pinned to the load generator's core) and reading its `--latency` report."""

import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from server import server_cpu_seconds

LUA_DIR = Path(__file__).resolve().parent / "lua"
LOAD_CORE = 1

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


class WrkMissing(RuntimeError):
    """wrk is not installed."""


class WrkFailed(RuntimeError):
    """wrk exited non-zero or printed a report this module cannot read."""


@dataclass
class WrkResult:
    """One wrk run: throughput, latency percentiles (ms) and the failed requests."""

    requests: int
    seconds: float
    rate: float
    latency_ms: dict[str, float] = field(default_factory=dict)
    non_2xx: int = 0
    socket_errors: int = 0
    # The server's CPU time per request: unlike req/s, it hardly changes when other
    # processes compete for the core.
    server_cpu_ms: float | None = None

    @property
    def ok_rate(self) -> float:
        """Requests per second that were answered 2xx/3xx."""
        if self.requests == 0:
            return 0.0
        return self.rate * (self.requests - self.non_2xx - self.socket_errors) / self.requests

    @property
    def error_share(self) -> float:
        return (self.non_2xx + self.socket_errors) / self.requests if self.requests else 1.0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok_rate": self.ok_rate}


@dataclass(frozen=True)
class Request:
    """What wrk sends: a URL, and the Lua script and its environment for headers or bodies."""

    url: str
    script: str | None = None
    env: tuple[tuple[str, str], ...] = ()


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing("wrk is not installed: run `apt-get install -y wrk` (Debian package wrk)")
    return path


def parse_report(text: str) -> WrkResult:
    """Read wrk's summary (`Requests/sec`, `N requests in T`, the `--latency` distribution)."""
    rate, requests = _RATE.search(text), _REQUESTS.search(text)
    if rate is None or requests is None:
        raise WrkFailed(f"unreadable wrk report: {' '.join(text.split())[:300]}")
    latency = {
        f"p{match[1]}": float(match[2]) * _UNITS[match[3]] for match in _PERCENTILE.finditer(text)
    }
    non_2xx = _NON_2XX.search(text)
    sockets = _SOCKET_ERRORS.search(text)
    return WrkResult(
        requests=int(requests[1]),
        seconds=float(requests[2]) * _UNITS[requests[3]] / 1e3,
        rate=float(rate[1]),
        latency_ms=latency,
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        # connect/read/write errors fail a request; timeouts are counted once more by wrk.
        socket_errors=sum(int(n) for n in sockets.groups()[:3]) if sockets else 0,
    )


def wrk_command(request: Request, *, seconds: float, connections: int) -> list[str]:
    command = [
        "taskset",
        "-c",
        str(LOAD_CORE),
        require_wrk(),
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
    ]
    if request.script:
        command += ["--script", str(LUA_DIR / request.script)]
    return [*command, request.url]


def start_wrk(request: Request, *, seconds: float, connections: int) -> subprocess.Popen[str]:
    """Start wrk in the background (for a flood that something else measures against)."""
    return subprocess.Popen(
        wrk_command(request, seconds=seconds, connections=connections),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **dict(request.env)},
    )


def finish_wrk(process: subprocess.Popen[str], *, timeout: float) -> WrkResult:
    output, _ = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise WrkFailed(f"wrk exited with {process.returncode}: {' '.join(output.split())[:300]}")
    return parse_report(output)


def run_wrk(request: Request, *, seconds: float, connections: int) -> WrkResult:
    """One wrk run to completion, with the server's CPU time per request."""
    cpu_before = server_cpu_seconds(request.url)
    process = start_wrk(request, seconds=seconds, connections=connections)
    result = finish_wrk(process, timeout=seconds + 30)
    cpu_after = server_cpu_seconds(request.url)
    if cpu_before is not None and cpu_after is not None and result.requests:
        result.server_cpu_ms = (cpu_after - cpu_before) * 1e3 / result.requests
    return result
