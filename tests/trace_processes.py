"""`trace` commands as real processes for the fault tests, and a bounded wait for a condition.

Each process runs in a process group of its own (a worker starts its risk learner as a child), with its output
in a file the test shows when a wait times out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest


class TraceProcess:
    """``python -m traceability.cli ARGV…`` in a process group of its own, its output in ``log``."""

    def __init__(self, env: dict[str, str], log: Path, *argv: str) -> None:
        self.log_path = log
        with log.open("wb") as out:  # the child keeps its own handle
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "traceability.cli", *argv],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait(self, timeout: float) -> int:
        """The exit status; the test fails, showing the log's end, if it still runs after ``timeout`` s."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.proc.args[3:]} still running after {timeout:g} s:\n{self.log()[-3000:]}")

    def kill_group(self, *, hard: bool = False) -> None:
        """Stop the process and whatever it started, then reap it: SIGTERM first (a clean stop) and SIGKILL if
        it lingers, or with ``hard`` SIGKILL at once (a power cut: nothing cleaned up)."""
        steps = ((signal.SIGKILL, 30.0),) if hard else ((signal.SIGTERM, 15.0), (signal.SIGKILL, 15.0))
        for sig, grace in steps:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:  # the group is gone already
                break
            try:
                self.proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        self.proc.wait(timeout=15)


def wait_for(
    what: str, condition: Callable[[], bool], timeout: float = 60.0, *, log: TraceProcess | None = None
) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` s, showing the end of ``log``'s output."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = log.log()[-3000:] if log is not None else ""
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{tail}")
        time.sleep(0.1)
