"""Running the `eservice` entry point in-process, as an operator's shell would call it."""

import contextlib
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from app.cli import main
from app.core.config import get_settings


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def eservice_settings(monkeypatch: pytest.MonkeyPatch, **values: str) -> Iterator[None]:
    """ESERVICE_* variables for the command (read fresh, without a .env), restored after."""
    monkeypatch.chdir(values.pop("cwd"))
    for name, value in values.items():
        monkeypatch.setenv(f"ESERVICE_{name.upper()}", value)
    get_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()


def invoke_eservice(monkeypatch: pytest.MonkeyPatch, *args: str) -> CommandResult:
    """`eservice *args` through its real entry point: exit status, stdout, stderr.

    Blocking (commands run their own event loop): async tests call it with asyncio.to_thread.
    """
    monkeypatch.setattr(sys, "argv", ["eservice", *args])
    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return CommandResult(code, stdout.getvalue(), stderr.getvalue())
