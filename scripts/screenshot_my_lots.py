"""Screenshot "My lots" as a farmer sees it on a 360-px phone, in Thai: docs/screenshots/my-lots-th-360.png.

Starts its own Anvil and a fresh SQLite database under a temporary directory, seeds the demo (``trace
demo`` data), anchors the first batch only (so the page can show "confirmed" and "waiting" steps), serves the
app on a loopback port, signs in as the first demo farmer in headless Chromium and saves the whole page at
the phone's width. Needs what the
browser tests need (``make browser``). Run: ``.venv/bin/python scripts/screenshot_my_lots.py [OUT.png]``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import uvicorn  # noqa: E402
from eth_account import Account  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
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

PHONE = (360, 740)


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        anvil = AnvilNode().start()
        runtime = Runtime(Settings(var_dir=Path(tmp), rpc_url=anvil.rpc_url))
        server: uvicorn.Server | None = None
        try:
            runtime.migrate()
            registry = TraceRegistry.deploy(runtime.w3, Account.from_key(ANVIL_DEV_KEY))
            demo = seed_demo(runtime.sessions, registry, id_base=None)
            Anchorer(runtime.sessions, registry, batch_max=12, confirmations=0).step()
            port = free_port()
            server = uvicorn.Server(
                uvicorn.Config(create_app(runtime=runtime), host="127.0.0.1", port=port, log_level="warning")
            )
            threading.Thread(target=server.run, daemon=True).start()
            while not server.started:
                time.sleep(0.05)
            shoot(f"http://127.0.0.1:{port}", demo.farmers[0], Path(tmp) / "chromium", out)
        finally:
            if server is not None:
                server.should_exit = True
            runtime.close()
            anvil.stop()


def shoot(url: str, farmer: dict[str, str], profile: Path, out: Path) -> None:
    # Debian's chromium and chromedriver, named explicitly: selenium-manager would otherwise go online.
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise SystemExit("chromium and chromedriver are required: run `make browser`")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        chrome.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 1, "mobile": True},
        )
        chrome.get(url + "/farmer/login")
        chrome.find_element(By.ID, "phone").send_keys(farmer["phone"])
        chrome.find_element(By.ID, "pin").send_keys(farmer["pin"])
        chrome.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(chrome, 10).until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "ล็อตของฉัน"))
        width = chrome.execute_script("return document.documentElement.scrollWidth")
        if width > PHONE[0]:
            raise SystemExit(f"the page scrolls sideways: {width} px wide")
        # The whole page at the phone's width, so that the lots below the fold are in the picture too.
        height = chrome.execute_script("return document.documentElement.scrollHeight")
        chrome.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": PHONE[0], "height": max(PHONE[1], height), "deviceScaleFactor": 1, "mobile": True},
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        chrome.save_screenshot(str(out))
        print(f"{out} ({farmer['code']})")
    finally:
        chrome.quit()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots" / "my-lots-th-360.png")
