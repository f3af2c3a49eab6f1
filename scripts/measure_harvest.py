"""What recording a harvest costs a farmer on a phone: bytes on the wire, fields filled and taps.

Starts its own Anvil and a fresh SQLite database under a temporary directory, seeds the demo (``trace demo``
data), anchors the first batch, serves the app on a loopback port and, in headless Chromium at 360 x 740 in
Thai, signs in as the first demo farmer and records two harvests through the pages, as a farmer would (My lots
→ "record a step" → "harvest" → weight → save): one without a photo and one with a 12-megapixel camera photo.

Bytes received are Chromium's own count (DevTools ``Network`` events: ``encodedDataLength``, headers
included, redirects included); bytes sent are the request bodies as the server read them. Opening the form
is measured with an empty cache (the page and queue.js) and again with queue.js cached (a year, by its
content hash). Saves ``docs/screenshots/harvest-form-th-360.png`` (the filled form) and
``docs/screenshots/my-lots-th-360.png`` (My lots with the new harvest). Needs what the browser tests need
(``make browser``). Run: ``.venv/bin/python scripts/measure_harvest.py [--json]``.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import uvicorn  # noqa: E402
from eth_account import Account  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from starlette.types import ASGIApp, Message, Receive, Scope, Send  # noqa: E402

from traceability.chain.devnode import AnvilNode, free_port  # noqa: E402
from traceability.chain.registry import TraceRegistry  # noqa: E402
from traceability.config import ANVIL_DEV_KEY, Settings  # noqa: E402
from traceability.main import create_app  # noqa: E402
from traceability.services.anchoring import Anchorer  # noqa: E402
from traceability.services.demo import seed_demo  # noqa: E402
from traceability.services.runtime import Runtime  # noqa: E402

PHONE = (360, 740)
SHOTS = ROOT / "docs" / "screenshots"
WEIGHT = "25"


class BodyCounter:
    """ASGI wrapper that remembers how many request-body bytes each POST carried (what the phone uploads)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.sent: list[tuple[str, int]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        size = 0

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            return message

        try:
            await self.app(scope, counted, send)
        finally:
            self.sent.append((scope["path"], size))


@dataclass
class Phone:
    """The browser, counting the farmer's taps and the fields they fill."""

    chrome: webdriver.Chrome
    taps: int = 0
    filled: list[str] = field(default_factory=list)

    def tap(self, element: WebElement) -> None:
        self.taps += 1
        element.click()

    def type(self, element: WebElement, text: str) -> None:
        self.tap(element)  # a tap to focus the field, then the phone's keyboard
        element.send_keys(text)
        self.filled.append(element.get_attribute("name") or "")

    def attach(self, element: WebElement, path: Path) -> None:
        self.taps += 2  # the photo field opens the camera; one tap on the shutter
        element.send_keys(str(path))
        self.filled.append(element.get_attribute("name") or "")

    def received(self) -> list[dict[str, Any]]:
        """The requests since the last call: url, method, status and bytes received (headers included)."""
        requests: dict[str, dict[str, Any]] = {}
        for entry in self.chrome.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            method, params = message["method"], message.get("params", {})
            rid = params.get("requestId")
            if method == "Network.requestWillBeSent":
                item = requests.setdefault(rid, {"bytes": 0})
                if "redirectResponse" in params:
                    item["bytes"] += int(params["redirectResponse"].get("encodedDataLength", 0))
                item.setdefault("method", params["request"]["method"])
                item.setdefault("url", params["request"]["url"])
            elif method == "Network.responseReceived" and rid in requests:
                requests[rid]["status"] = params["response"]["status"]
                requests[rid]["cached"] = bool(params["response"].get("fromDiskCache"))
            elif method == "Network.loadingFinished" and rid in requests:
                requests[rid]["bytes"] += int(params["encodedDataLength"])
        return [r for r in requests.values() if r.get("url", "").startswith("http")]


def camera_photo(path: Path) -> Path:
    """A 12-megapixel JPEG with a camera's noise, a few megabytes, as a cheap phone takes it."""
    rng = random.Random(7)
    image = Image.new("RGB", (4000, 3000), (120, 170, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 1500, 4000, 3000), fill=(60, 140, 50))
    for _ in range(60_000):
        x, y = rng.randrange(4000), rng.randrange(3000)
        shade = rng.randrange(256)
        draw.rectangle((x, y, x + 6, y + 6), fill=(shade, 255 - shade, (shade * 7) % 256))
    image.save(path, "JPEG", quality=92)
    return path


def browser(profile: Path) -> webdriver.Chrome:
    # Debian's chromium and chromedriver, named explicitly: selenium-manager would otherwise go online.
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise SystemExit("chromium and chromedriver are required: run `make browser`")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.execute_cdp_cmd("Network.enable", {})
    phone_screen(chrome, PHONE[1])
    return chrome


def phone_screen(chrome: webdriver.Chrome, height: int) -> None:
    chrome.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PHONE[0], "height": height, "deviceScaleFactor": 1, "mobile": True},
    )


def whole_page(chrome: webdriver.Chrome, out: Path) -> None:
    """The whole page at the phone's width, then the phone's own height again."""
    width = chrome.execute_script("return document.documentElement.scrollWidth")
    if width > PHONE[0]:
        raise SystemExit(f"{chrome.current_url} scrolls sideways: {width} px wide")
    phone_screen(chrome, max(PHONE[1], chrome.execute_script("return document.documentElement.scrollHeight")))
    out.parent.mkdir(parents=True, exist_ok=True)
    chrome.save_screenshot(str(out))
    phone_screen(chrome, PHONE[1])


def settled(chrome: webdriver.Chrome) -> None:
    WebDriverWait(chrome, 15).until(lambda c: c.execute_script("return document.readyState") == "complete")
    time.sleep(0.3)  # the deferred queue.js has drawn, and DevTools has logged the last response


def record_harvest(
    phone: Phone, counter: BodyCounter, photo: Path | None, shot: Path | None
) -> dict[str, Any]:
    """From My lots to My lots again, through the pages; what it cost."""
    chrome = phone.chrome
    phone.taps, phone.filled = 0, []
    phone.received()
    phone.tap(chrome.find_element(By.CSS_SELECTOR, "a[href='/farmer/record']"))
    settled(chrome)
    menu = phone.received()
    phone.tap(chrome.find_element(By.CSS_SELECTOR, "a[href='/farmer/record/harvest']"))
    WebDriverWait(chrome, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, "form[data-queue]")))
    settled(chrome)
    form_open = phone.received()
    event_id = chrome.find_element(By.NAME, "event_id").get_attribute("value")
    phone.type(chrome.find_element(By.ID, "quantity"), WEIGHT)
    if photo is not None:
        phone.attach(chrome.find_element(By.ID, "photo"), photo)
    if shot is not None:
        whole_page(chrome, shot)
    shown = chrome.find_elements(By.CSS_SELECTOR, "form[data-queue] [name]:not([type=hidden]):not(button)")
    counter.sent.clear()
    phone.tap(chrome.find_element(By.CSS_SELECTOR, "form[data-queue] button[type=submit]"))
    WebDriverWait(chrome, 60).until(ec.url_contains(f"/farmer/lots?recorded={event_id}"))
    settled(chrome)
    submitted = phone.received()
    return {
        "menu_bytes": sum(r["bytes"] for r in menu),
        "form_bytes": sum(r["bytes"] for r in form_open),
        "form_requests": [f"{r['method']} {r['url'].split('/', 3)[-1]} {r['bytes']}" for r in form_open],
        "submit_uploaded": sum(size for _path, size in counter.sent),
        "submit_received": sum(r["bytes"] for r in submitted),
        "submit_requests": [f"{r['method']} {r['url'].split('/', 3)[-1]} {r['bytes']}" for r in submitted],
        "fields_filled": list(phone.filled),
        "fields_shown": len(shown),
        "taps_from_my_lots": phone.taps,
    }


def cold_form(phone: Phone, url: str) -> dict[str, Any]:
    """The harvest form opened with an empty cache: the page and its script."""
    chrome = phone.chrome
    chrome.execute_cdp_cmd("Network.clearBrowserCache", {})
    phone.received()
    chrome.get(url + "/farmer/record/harvest")
    settled(chrome)
    got = phone.received()
    return {
        "bytes": sum(r["bytes"] for r in got),
        "requests": [f"{r['method']} {r['url'].split('/', 3)[-1]} {r['bytes']}" for r in got],
    }


def measure(url: str, farmer: dict[str, str], tmp: Path, counter: BodyCounter) -> dict[str, Any]:
    chrome = browser(tmp / "chromium")
    phone = Phone(chrome)
    try:
        chrome.get(url + "/farmer/login")
        chrome.find_element(By.ID, "phone").send_keys(farmer["phone"])
        chrome.find_element(By.ID, "pin").send_keys(farmer["pin"])
        chrome.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(chrome, 10).until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "ล็อตของฉัน"))
        cold = cold_form(phone, url)
        chrome.get(url + "/farmer/lots")
        settled(chrome)
        plain = record_harvest(phone, counter, None, SHOTS / "harvest-form-th-360.png")
        big = camera_photo(tmp / "camera.jpg")
        with_photo = record_harvest(phone, counter, big, None)
        chrome.execute_script("window.scrollTo(0, 0)")
        whole_page(chrome, SHOTS / "my-lots-th-360.png")
        return {
            "form_cold_cache": cold,
            "harvest_without_photo": plain,
            "harvest_with_photo": with_photo | {"photo_bytes_on_phone": big.stat().st_size},
        }
    finally:
        chrome.quit()


def main(as_json: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        anvil = AnvilNode().start()
        runtime = Runtime(Settings(var_dir=Path(tmp), rpc_url=anvil.rpc_url))
        server: uvicorn.Server | None = None
        try:
            runtime.migrate()
            registry = TraceRegistry.deploy(runtime.w3, Account.from_key(ANVIL_DEV_KEY))
            demo = seed_demo(runtime.sessions, registry, id_base=None)
            Anchorer(runtime.sessions, registry, batch_max=12, confirmations=0).step()
            counter = BodyCounter(create_app(runtime=runtime))
            port = free_port()
            server = uvicorn.Server(uvicorn.Config(counter, host="127.0.0.1", port=port, log_level="warning"))
            threading.Thread(target=server.run, daemon=True).start()
            while not server.started:
                time.sleep(0.05)
            figures = measure(f"http://127.0.0.1:{port}", demo.farmers[0], Path(tmp), counter)
        finally:
            if server is not None:
                server.should_exit = True
            runtime.close()
            anvil.stop()
    if as_json:
        print(json.dumps(figures, indent=2, ensure_ascii=False))
        return
    report(figures)


def report(figures: dict[str, Any]) -> None:
    cold = figures["form_cold_cache"]
    print(f"open the harvest form, empty cache: {cold['bytes']:,} B received")
    for line in cold["requests"]:
        print(f"    {line}")
    for name in ("harvest_without_photo", "harvest_with_photo"):
        f = figures[name]
        print(f"{name.replace('_', ' ')}:")
        print(f"  step menu: {f['menu_bytes']:,} B; harvest form (queue.js cached): {f['form_bytes']:,} B")
        print(f"  submit: {f['submit_uploaded']:,} B sent, {f['submit_received']:,} B received")
        for line in f["submit_requests"]:
            print(f"    {line}")
        if "photo_bytes_on_phone" in f:
            print(f"  photo: {f['photo_bytes_on_phone']:,} B taken by the camera")
        filled = f"{len(f['fields_filled'])} ({', '.join(f['fields_filled'])})"
        print(f"  fields: {f['fields_shown']} shown, {filled} filled, the rest left at their defaults")
        print(f"  taps from My lots back to My lots: {f['taps_from_my_lots']}")
    print(f"screenshots: {SHOTS / 'harvest-form-th-360.png'}, {SHOTS / 'my-lots-th-360.png'}")


if __name__ == "__main__":
    main("--json" in sys.argv[1:])
