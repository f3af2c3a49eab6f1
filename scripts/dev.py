"""`make run`: a local chain (Anvil, state kept under var/), migrate, deploy once, seed the demo when the
database is empty, then the anchoring worker and the web server. Ctrl-C stops every process it started, waits
for each, and exits 0.

The chain's port comes from ``TRACE_RPC_URL``, the state from ``TRACE_VAR_DIR``; the web server's host and
port are options (``make run ARGS="--port 8001"``).

Why this script takes the terminal: Ctrl-C makes the terminal send SIGINT to its whole foreground process
group, and that group holds make as well as this script. GNU make, once it has seen SIGINT, kills itself with
SIGINT as soon as its child exits, so `make run` would end with status 130 however cleanly everything
stopped. So, when started from a terminal, this script moves into a process group of its own and makes it
the terminal's foreground group: Ctrl-C then reaches only this script and the worker and server it starts
(Anvil runs in a session of its own and is stopped with SIGTERM, so it can save its state). Make never sees
the signal and exits with this script's status. The terminal goes back to make's group before exiting.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from traceability.chain.devnode import AnvilNode, rpc_ready  # noqa: E402
from traceability.config import get_settings  # noqa: E402
from traceability.errors import TraceabilityError  # noqa: E402

STOP_TIMEOUT_S = 15.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--host", default="127.0.0.1", help="the web server's address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="the web server's port (default 8000)")
    return p.parse_args(argv)


def _set_foreground(fd: int, pgrp: int) -> None:
    # tcsetpgrp() from a process outside the foreground group raises SIGTTOU, which would stop this process.
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(fd, pgrp)
    finally:
        signal.signal(signal.SIGTTOU, previous)


@contextmanager
def terminal_foreground() -> Iterator[None]:
    """Make this process the leader of the terminal's foreground group for the block (see the docstring)."""
    fd = sys.stdin.fileno() if sys.stdin is not None else -1
    try:
        # Only when we are in the foreground already: never take the terminal from a shell (`make run &`).
        owner = os.getpgrp() if fd >= 0 and os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp() else None
    except OSError:
        owner = None
    if owner is None:
        yield
        return
    try:
        os.setpgid(0, 0)
        _set_foreground(fd, os.getpgrp())
    except OSError:
        # e.g. a session leader cannot change group: carry on in the group we have.
        yield
        return
    try:
        yield
    finally:
        try:
            _set_foreground(fd, owner)
        except OSError:
            pass  # make's group is gone or the terminal closed: nobody to hand it back to


def _stop_requested(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def trace(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "traceability.cli", *args], check=True, cwd=ROOT)


def start(*args: str) -> subprocess.Popen[bytes]:
    # Same process group as this script, so a Ctrl-C reaches it directly too.
    return subprocess.Popen([sys.executable, "-m", "traceability.cli", *args], cwd=ROOT)


def stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM each child still running, then wait for every one; SIGKILL any that outstays its time."""
    for c in children.values():
        if c.poll() is None:
            c.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for name, c in children.items():
        try:
            c.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop within {STOP_TIMEOUT_S:.0f}s: killing it", file=sys.stderr)
            c.kill()
            c.wait()


def stop_chain(node: AnvilNode) -> None:
    """Stop Anvil and wait until it has really gone (it writes its state file on SIGTERM)."""
    # node_modules/.bin/anvil is a Node.js wrapper that passes SIGTERM on to the real anvil and exits at once,
    # so AnvilNode.stop() can return while anvil still listens. The wrapper leads a session (and process
    # group) of its own: wait until nothing is left in that group.
    group = node.proc.pid if node.proc is not None else None
    node.stop()
    if group is None:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            os.killpg(group, 0)
            time.sleep(0.05)
        print(f"anvil did not stop within {STOP_TIMEOUT_S:.0f}s: killing it", file=sys.stderr)
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    var = settings.var_dir if settings.var_dir.is_absolute() else ROOT / settings.var_dir
    var.mkdir(parents=True, exist_ok=True)
    node: AnvilNode | None = None
    children: dict[str, subprocess.Popen[bytes]] = {}
    port = int(settings.rpc_url.rsplit(":", 1)[-1].split("/")[0])
    try:
        if rpc_ready(settings.rpc_url):
            print(f"using the chain already answering at {settings.rpc_url}")
        else:
            node = AnvilNode(port, state=var / "anvil-state.json", block_time=1, log_path=var / "anvil.log")
            node.start()
            print(f"anvil on {node.rpc_url} (state in {var / 'anvil-state.json'})")
        trace("migrate")
        trace("deploy")
        trace("demo")
        children["trace worker"] = start("worker")
        children["trace serve"] = start("serve", "--host", args.host, "--port", str(args.port))
        print(f"serving on http://{args.host}:{args.port} — Ctrl-C stops everything", flush=True)
        while True:
            for name, c in children.items():
                if c.poll() is not None:
                    print(f"{name} exited with {c.returncode}: stopping the rest", file=sys.stderr)
                    return 1
            if node is not None and node.proc is not None and node.proc.poll() is not None:
                print(f"anvil exited with {node.proc.returncode} (log: {var / 'anvil.log'})", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping …", flush=True)
        return 0
    except subprocess.CalledProcessError as exc:
        print(f"set-up step failed: {exc}", file=sys.stderr)
        return 1
    except TraceabilityError as exc:
        print(f"could not start: {exc}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C (or a SIGTERM) must not cut the clean-up short and leave a process behind.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        stop(children)
        if node is not None:
            stop_chain(node)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Closing the terminal or `kill` stops everything the same way Ctrl-C does.
    signal.signal(signal.SIGTERM, _stop_requested)
    signal.signal(signal.SIGHUP, _stop_requested)
    with terminal_foreground():
        try:
            return run(args)
        except KeyboardInterrupt:  # a second Ctrl-C came before the clean-up began (it still ran)
            return 0


if __name__ == "__main__":
    sys.exit(main())
