"""`make run`: a local chain (Anvil, state kept under var/), migrate, deploy once, seed the demo when the
database is empty, then the anchoring worker and the web server. Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from traceability.chain.devnode import AnvilNode, rpc_ready  # noqa: E402
from traceability.config import get_settings  # noqa: E402


def trace(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "traceability.cli", *args], check=True, cwd=ROOT)


def main() -> int:
    settings = get_settings()
    var = settings.var_dir if settings.var_dir.is_absolute() else ROOT / settings.var_dir
    var.mkdir(parents=True, exist_ok=True)
    node: AnvilNode | None = None
    children: list[subprocess.Popen[bytes]] = []
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
        env = dict(os.environ)
        children.append(
            subprocess.Popen([sys.executable, "-m", "traceability.cli", "worker"], cwd=ROOT, env=env)
        )
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "traceability.cli", "serve", "--port", "8000"], cwd=ROOT, env=env
            )
        )
        print("serving on http://127.0.0.1:8000 — Ctrl-C stops everything")
        while all(c.poll() is None for c in children):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as exc:
        print(f"set-up step failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for c in children:
            if c.poll() is None:
                c.send_signal(signal.SIGTERM)
        for c in children:
            try:
                c.wait(timeout=15)
            except subprocess.TimeoutExpired:
                c.kill()
        if node is not None:
            node.stop()


if __name__ == "__main__":
    sys.exit(main())
