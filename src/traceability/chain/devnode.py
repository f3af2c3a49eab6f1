"""Start and stop a local Anvil node (npm package ``@foundry-rs/anvil``) for the demo, tests and bench."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from traceability.errors import ConfigurationError


def find_anvil() -> str:
    """The anvil binary of the checkout's (or cwd's) ``node_modules``, else one on PATH.

    The native binary the npm package installs for this platform (``@foundry-rs/anvil-<os>-<arch>``) comes
    first: ``node_modules/.bin/anvil`` is a Node wrapper that forwards signals and exits at once, so a stop
    would return while the real node may still be listening or writing its state file."""
    for modules in (Path(__file__).resolve().parents[3] / "node_modules", Path.cwd() / "node_modules"):
        for native in sorted((modules / "@foundry-rs").glob("anvil-*/bin/anvil")):
            if os.access(native, os.X_OK):
                return str(native)
        wrapper = modules / ".bin" / "anvil"
        if wrapper.exists():
            return str(wrapper)
    found = shutil.which("anvil")
    if found:
        return found
    raise ConfigurationError("anvil not found: run `make install` (npm package @foundry-rs/anvil)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc_ready(url: str, timeout: float = 1.0) -> bool:
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, TimeoutError):
        return False


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class AnvilNode:
    """One Anvil process on 127.0.0.1. ``state`` persists the chain across restarts (``--state FILE``);
    ``chain_id`` overrides Anvil's 31337 (``--chain-id``), e.g. to act as a non-development chain."""

    def __init__(
        self,
        port: int | None = None,
        *,
        state: Path | None = None,
        block_time: float | None = None,
        log_path: Path | None = None,
        chain_id: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.state = state
        self.block_time = block_time
        self.chain_id = chain_id
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> AnvilNode:
        args = [find_anvil(), "--host", "127.0.0.1", "--port", str(self.port), "--silent"]
        if self.state is not None:
            self.state.parent.mkdir(parents=True, exist_ok=True)
            args += ["--state", str(self.state), "--state-interval", "1"]
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time)]
        if self.chain_id is not None:
            args += ["--chain-id", str(self.chain_id)]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ConfigurationError(f"anvil exited with code {self.proc.returncode} on port {self.port}")
            if rpc_ready(self.rpc_url, timeout=0.5):
                return self
            time.sleep(0.05)
        self.stop()
        raise ConfigurationError(f"anvil did not answer on {self.rpc_url} within {timeout}s")

    def stop(self) -> None:
        """SIGTERM (anvil writes its --state file), then wait until its whole process group is gone."""
        if self.proc is None:
            return
        group = self.proc.pid  # start_new_session: the process leads its own group
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(group, 9)
                self.proc.wait(timeout=5)
        deadline = time.monotonic() + 10
        while _group_alive(group):
            if time.monotonic() > deadline:
                os.killpg(group, 9)
                deadline = time.monotonic() + 5
            time.sleep(0.05)
        self.proc = None

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
