"""A real headless Chromium (Debian's, through its ChromeDriver) at a phone's 360 x 740, and the app served
on a free loopback port over a fresh SQLite database. A machine without them fails these tests: `make test`
installs them (`make browser`)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from factories import ID_BASE, seed_farmer_lots, seed_parties
from traceability.chain.devnode import AnvilNode, free_port
from traceability.chain.registry import TraceRegistry
from traceability.config import Settings
from traceability.main import create_app
from traceability.services.runtime import Runtime

PHONE = (360, 740)


def _require(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        pytest.fail(f"{program} is required for the browser tests: run `make browser`")
    return found


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    chromium, driver = _require("chromium"), _require("chromedriver")
    fonts = subprocess.run(["fc-list"], capture_output=True, text=True, check=False).stdout
    if "tlwg" not in fonts.lower():
        pytest.fail("a Thai font is required (Debian fonts-thai-tlwg): run `make browser`")
    options = Options()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
        f"--window-size={PHONE[0]},{PHONE[1]}",
    ):
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    # Headless windows are never narrower than 500 px: emulate the phone's viewport instead.
    chrome.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        yield chrome
    finally:
        chrome.quit()


class LiveServer:
    def __init__(self, settings: Settings) -> None:
        self.runtime = Runtime(settings)
        self.runtime.migrate()
        self.port = free_port()
        config = uvicorn.Config(
            create_app(runtime=self.runtime), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.seeded: dict[str, object] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the web app did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.runtime.close()


@pytest.fixture
def live_app(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(Settings(var_dir=tmp_path, rpc_url="http://127.0.0.1:9")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def farmer_live_app(tmp_path: Path, anvil: AnvilNode, registry: TraceRegistry) -> Iterator[LiveServer]:
    """The live app over a database with two farmers and their lots (``factories.seed_farmer_lots``)."""
    server = LiveServer(Settings(var_dir=tmp_path, rpc_url=anvil.rpc_url, id_base=ID_BASE))
    seed_parties(server.runtime.sessions, registry)
    server.seeded = seed_farmer_lots(server.runtime.sessions, registry)
    server.start()
    try:
        yield server
    finally:
        server.stop()
