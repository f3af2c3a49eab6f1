"""`make run` in a real terminal: Ctrl-C stops the chain, the worker and the web server, and make exits 0.

The test owns a pseudo-terminal and starts make as the leader of a new session with that terminal as its
controlling terminal, as a shell would. Writing ``\\x03`` to the terminal's master side is a real Ctrl-C: the
terminal's line discipline sends SIGINT to its foreground process group. (Sending SIGINT by hand would not
show make's own reaction to it, which is the point: see scripts/dev.py.)
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from traceability.chain.devnode import free_port

ROOT = Path(__file__).resolve().parents[1]
# Runs in the new session before make: take the pty (stdin) as controlling terminal, then become make.
AS_TERMINAL_LEADER = (
    "import fcntl, os, sys, termios; "
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execvp(sys.argv[1], sys.argv[1:])"
)
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0


class Terminal:
    """The master side of a pty; a thread keeps reading it so no child ever blocks writing to it."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self._chunks: list[bytes] = []
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._done.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: every process holding the terminal has gone
                return
            if not data:
                return
            self._chunks.append(data)

    @property
    def output(self) -> str:
        return b"".join(self._chunks).decode("utf-8", errors="replace")

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        self._done.set()
        self._reader.join(timeout=5)
        os.close(self.master)


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, pgrp, session, ...), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def running(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"  # a zombie has exited; only its exit status is left


def processes() -> dict[int, list[str]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = fields
    return found


def descendants(pid: int) -> set[int]:
    table = processes()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, f in table.items() if int(f[1]) in frontier} - found
        found |= frontier
    return found


def in_session(sid: int) -> set[int]:
    return {p for p, f in processes().items() if int(f[3]) == sid and f[0] != "Z"}


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def page_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def test_ctrl_c_stops_make_run_cleanly_and_exits_0(tmp_path: Path) -> None:
    rpc_port, web_port = free_port(), free_port()
    assert rpc_port != web_port
    # Nothing of the caller's configuration (a database URL, a contract) and, when the suite itself runs under
    # `make test`, none of that make's variables (a sub-make would look for its jobserver).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TRACE_") and k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"}
    }
    env |= {"TRACE_VAR_DIR": str(tmp_path / "var"), "TRACE_RPC_URL": f"http://127.0.0.1:{rpc_port}"}
    # `make test` has just brought the installs up to date; -o keeps a stamp made stale by an edit to
    # pyproject.toml since then from reinstalling inside this test.
    stamps = ["-o", ".venv/.installed", "-o", "node_modules/.installed"]
    command = ["make", *stamps, "run", f"ARGS=--port {web_port}"]
    terminal = Terminal()
    make = subprocess.Popen(
        [sys.executable, "-c", AS_TERMINAL_LEADER, *command],
        cwd=ROOT,
        env=env,
        stdin=terminal.slave,
        stdout=terminal.slave,
        stderr=terminal.slave,
        start_new_session=True,
    )
    os.close(terminal.slave)
    started: set[int] = set()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not page_answers(f"http://127.0.0.1:{web_port}/"):
            assert make.poll() is None, f"make run exited with {make.returncode}:\n{terminal.output}"
            assert time.monotonic() < deadline, f"no page within {START_TIMEOUT_S}s:\n{terminal.output}"
            time.sleep(0.5)
        assert listening(rpc_port)
        started = descendants(make.pid)
        commands = [cmdline(p) for p in started]
        for part in ("scripts/dev.py", "anvil", "traceability.cli worker", "traceability.cli serve"):
            assert any(part in c for c in commands), f"{part} not running: {commands}"

        terminal.type(b"\x03")
        try:
            code = make.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            message = f"make run still running {STOP_TIMEOUT_S}s after Ctrl-C:\n{terminal.output}"
            raise AssertionError(message) from exc

        assert code == 0, f"make run exited with {code} after Ctrl-C:\n{terminal.output}"
        assert not listening(web_port), "the web server still listens"
        assert not listening(rpc_port), "anvil still listens"
        survivors = {p: cmdline(p) for p in started | in_session(make.pid) if running(p)}
        assert survivors == {}, f"still running after make exited: {survivors}"
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(timeout=10)
        for pid in started:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        terminal.close()
