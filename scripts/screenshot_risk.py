"""Screenshots of where origin risk (สวมสิทธิ์) shows, on a phone 360 px wide, in Thai, over the demo's data.

Starts its own Anvil and a fresh SQLite database under a temporary directory, seeds the demo (``trace demo``
data, with its one laundering case), anchors every event, serves the app on a loopback port and, in headless
Chromium at 360 x 740, signs in as the demo officer, opens the risk queue (``/officer/risk``) and then the
provenance page of the laundered export lot. Saves ``docs/screenshots/officer-risk-th-360.png`` and
``docs/screenshots/provenance-risk-th-360.png`` (whole pages) and stops if a page scrolls sideways. Needs what
the browser tests need (``make browser``). Run: ``.venv/bin/python scripts/screenshot_risk.py``.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import uvicorn  # noqa: E402
from eth_account import Account  # noqa: E402

# The phone-sized headless Chromium of the harvest measurement (scripts/ is this script's own directory).
from measure_harvest import browser, whole_page  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from traceability.chain.devnode import AnvilNode, free_port  # noqa: E402
from traceability.chain.registry import TraceRegistry  # noqa: E402
from traceability.config import ANVIL_DEV_KEY, Settings  # noqa: E402
from traceability.main import create_app  # noqa: E402
from traceability.services.anchoring import Anchorer  # noqa: E402
from traceability.services.demo import seed_demo  # noqa: E402
from traceability.services.runtime import Runtime  # noqa: E402

SHOTS = ROOT / "docs" / "screenshots"


def shoot(url: str, officer: dict[str, str], lot: str, tmp: Path) -> list[Path]:
    chrome = browser(tmp / "chromium")
    wait = WebDriverWait(chrome, 30)
    try:
        chrome.get(url + "/officer/login")
        chrome.find_element(By.ID, "username").send_keys(officer["username"])
        chrome.find_element(By.ID, "password").send_keys(officer["password"])
        chrome.find_element(By.CSS_SELECTOR, "form[action='/officer/login'] button").click()
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "รายการรอตรวจ"))
        chrome.get(url + "/officer/risk")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "section[data-lot]")))
        queue = SHOTS / "officer-risk-th-360.png"
        whole_page(chrome, queue)
        chrome.get(f"{url}/p/{lot}")
        wait.until(ec.presence_of_element_located((By.ID, "risk")))
        page = SHOTS / "provenance-risk-th-360.png"
        whole_page(chrome, page)
        return [queue, page]
    finally:
        chrome.quit()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        anvil = AnvilNode().start()
        registry_address = ""
        runtime: Runtime | None = None
        server: uvicorn.Server | None = None
        try:
            setup = Runtime(Settings(var_dir=Path(tmp), rpc_url=anvil.rpc_url))
            setup.migrate()
            registry = TraceRegistry.deploy(setup.w3, Account.from_key(ANVIL_DEV_KEY))
            registry_address = registry.address
            demo = seed_demo(setup.sessions, registry, id_base=None)
            Anchorer(setup.sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)
            setup.close()
            # Served with the demo's registry pinned, so the pages verify against the chain.
            settings = Settings(
                var_dir=Path(tmp), rpc_url=anvil.rpc_url, contract_address=registry_address, confirmations=0
            )
            runtime = Runtime(settings)
            port = free_port()
            server = uvicorn.Server(
                uvicorn.Config(create_app(runtime=runtime), host="127.0.0.1", port=port, log_level="warning")
            )
            threading.Thread(target=server.run, daemon=True).start()
            while not server.started:
                time.sleep(0.05)
            shots = shoot(f"http://127.0.0.1:{port}", demo.officers[0], demo.laundering["lot"], Path(tmp))
        finally:
            if server is not None:
                server.should_exit = True
            if runtime is not None:
                runtime.close()
            anvil.stop()
    for shot in shots:
        print(f"screenshot: {shot.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
