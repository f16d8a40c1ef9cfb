"""Starting the service and the ceiling app: one uvicorn worker each, pinned to one core."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SERVER_CORE = 0
SERVER_CORES = 1  # cores the service may use: the one it is pinned to
# The same flags for the service and the ceiling, as `eservice serve` runs uvicorn.
UVICORN_FLAGS = [
    "--host",
    "127.0.0.1",
    "--workers",
    "1",
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--no-server-header",
    "--log-level",
    "warning",
]


# The running servers by base URL, so a load run can read its server's CPU time.
_RUNNING: dict[str, int] = {}


class ServerFailed(RuntimeError):
    """A server did not come up; its log is in the message."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serve(
    app: list[str], *, env: dict[str, str], log: Path, ready_path: str = "/"
) -> Iterator[str]:
    """Run `uvicorn <app>` pinned to SERVER_CORE; yields its base URL, stops it afterwards."""
    port = free_port()
    uvicorn = Path(sys.executable).with_name("uvicorn")
    command = [
        "taskset",
        "-c",
        str(SERVER_CORE),
        str(uvicorn),
        *app,
        *UVICORN_FLAGS,
        "--port",
        str(port),
    ]
    base_url = f"http://127.0.0.1:{port}"
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(process, base_url + ready_path, log)
            _RUNNING[base_url] = process.pid
            yield base_url
        finally:
            _RUNNING.pop(base_url, None)
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise ServerFailed(f"server did not answer {url} within 30 s:\n{log.read_text()}")


SUBJECT_FACTORY = "app.main:create_app"


def subject_app(factory: str = SUBJECT_FACTORY) -> list[str]:
    return ["--factory", factory]


def ceiling_app() -> list[str]:
    return ["--app-dir", str(ROOT / "bench"), "ceiling:app"]


def server_pid(url: str) -> int | None:
    """The process id of the running server that serves `url` (a URL under its base)."""
    return next((pid for base, pid in _RUNNING.items() if url.startswith(base + "/")), None)


def server_cpu_seconds(url: str) -> float | None:
    """CPU time (user + system, all threads) used so far by the server that serves `url`."""
    pid = server_pid(url)
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of proc(5); fields[0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(url: str, *, timeout: float = 10.0) -> None:
    """Wait until the server of `url` has stopped working off requests a load run left queued."""
    deadline = time.monotonic() + timeout
    previous = server_cpu_seconds(url)
    while previous is not None and time.monotonic() < deadline:
        time.sleep(0.25)
        current = server_cpu_seconds(url)
        if current is None or current - previous < 0.01:
            return
        previous = current
