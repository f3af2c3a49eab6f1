"""Security headers on every response (issue 10): every route of the app, its 404s and errors, the API docs'
own policy, Secure cookies over HTTPS (directly and behind a TLS-terminating proxy), and the pages in a real
Chromium with no Content-Security-Policy violation in its console."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browsing import NAVIGATING
from fastapi.testclient import TestClient
from provenance_fixtures import PACKED, DemoLedger, build_demo_ledger
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from conftest import LiveServer
from traceability.main import create_app
from traceability.services.demo import GTIN_VEG
from traceability.services.runtime import Runtime
from traceability.web.security_headers import csp_hash, template_style_hashes

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
}
PATH_VALUES = {
    "lot_code": PACKED,
    "lot": PACKED,
    "gtin": GTIN_VEG,
    "name": "queue.js",
    "sha256": "0" * 64,
    "code": "PORT-LCB",
}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory, w3) -> DemoLedger:
    return build_demo_ledger(tmp_path_factory.mktemp("security-headers"), w3)


def client_for(ledger: DemoLedger, anvil, tmp_path: Path, base_url: str = "http://testserver") -> TestClient:
    runtime = Runtime(ledger.copy(tmp_path).settings(tmp_path, anvil.rpc_url))
    return TestClient(create_app(runtime=runtime), base_url=base_url, follow_redirects=False)


@pytest.fixture
def client(ledger, anvil, tmp_path) -> Iterator[TestClient]:
    with client_for(ledger, anvil, tmp_path) as c:
        yield c
        c.app.state.runtime.close()


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_secured(response: Any) -> dict[str, list[str]]:
    """The headers every response carries, each once; the parsed CSP."""
    where = f"{response.request.method} {response.request.url} -> {response.status_code}"
    for name, value in EXPECTED.items():
        assert response.headers.get_list(name) == [value], where
    permissions = response.headers.get_list("permissions-policy")
    assert len(permissions) == 1 and "camera=()" in permissions[0] and "geolocation=()" in permissions[0], (
        where
    )
    [policy] = response.headers.get_list("content-security-policy")
    csp = directives(policy)
    assert csp["frame-ancestors"] == ["'none'"], where
    assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'self'"], where
    assert csp["form-action"] == ["'self'"] and csp["default-src"] == ["'self'"], where
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"], where
    return csp


def assert_inline_allowed(response: Any, csp: dict[str, list[str]]) -> None:
    """Every inline ``<style>`` of an HTML page is allowed by its hash; there is no inline script or
    ``style=`` attribute (which no hash can allow without ``'unsafe-hashes'``)."""
    if not response.headers.get("content-type", "").startswith("text/html"):
        return
    html = response.text
    assert "'unsafe-inline'" not in csp["style-src"]
    for block in re.findall(r"<style>(.*?)</style>", html, flags=re.S):
        assert csp_hash(block) in csp["style-src"], f"{response.request.url}: a <style> block is not hashed"
    assert re.search(r"<script(?![^>]*\ssrc=)", html) is None, response.request.url
    assert re.search(r"\sstyle=", html) is None, response.request.url
    assert re.search(r"\son[a-z]+=", html) is None, response.request.url


def routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route, the included routers' too. FastAPI 0.165 keeps an included router
    whole in ``app.routes`` (``original_router`` with its include prefix): walk into it."""

    def walk(items: Any, prefix: str) -> Iterator[tuple[str, str]]:
        for route in items:
            if hasattr(route, "original_router"):
                yield from walk(route.original_router.routes, prefix + route.include_context.prefix)
            else:
                for method in sorted(getattr(route, "methods", None) or {"GET"}):
                    if method != "HEAD":
                        yield method, prefix + route.path

    return list(walk(app.routes, ""))


def filled(path: str) -> str:
    def value(match: re.Match[str]) -> str:
        return PATH_VALUES.get(match.group(1), "x")

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


def sign_in_officer(client: TestClient, ledger: DemoLedger) -> None:
    officer = ledger.result.officers[0]
    page = client.get("/officer/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    done = client.post(
        "/officer/login",
        data={"csrf": csrf.group(1), "username": officer["username"], "password": officer["password"]},
    )
    assert done.status_code == 303 and "trace_session" in client.cookies


def test_every_route_answers_with_the_security_headers_signed_out_and_signed_in(client, ledger):
    walked = routes(client.app)
    assert len(walked) > 50 and ("GET", "/p/{lot_code}") in walked and ("GET", "/docs") in walked
    statuses: set[int] = set()
    for signed_in in (False, True):
        if signed_in:
            sign_in_officer(client, ledger)
        for method, path in walked:
            response = client.request(method, filled(path))
            statuses.add(response.status_code)
            csp = assert_secured(response)
            if path not in ("/docs", "/docs/oauth2-redirect", "/redoc"):
                assert csp["script-src"] == ["'self'"], path
                assert_inline_allowed(response, csp)
    # the walk saw pages, redirects, refusals and errors, not one kind of answer
    assert {200, 303}.issubset(statuses) and statuses & {401, 403} and statuses & {404, 422}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/no/such/page", 404),
        ("GET", "/p/NO-SUCH-LOT", 404),  # the friendly "not found" page (HTML)
        ("GET", "/api/v1/lots/NO-SUCH-LOT", 401),
        ("DELETE", "/healthz", 405),
        ("GET", "/static/no-such.css", 404),
        ("GET", "/api/v1/fsma204.csv?from=yesterday", 401),
        ("GET", f"/labels/{PACKED}?lang=en", 200),
    ],
)
def test_errors_and_not_found_pages_carry_them_too(client, method, path, status):
    response = client.request(method, path)
    assert response.status_code == status
    csp = assert_secured(response)
    assert_inline_allowed(response, csp)


def test_a_request_too_large_for_the_body_limit_is_refused_with_the_headers(client):
    response = client.post(
        "/api/v1/events", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert_secured(response)


def test_a_header_its_route_set_is_kept_not_doubled(client):
    static = client.get("/static/queue.js")
    assert static.status_code == 200
    assert static.headers.get_list("x-content-type-options") == ["nosniff"]  # set by the route itself
    assert_secured(static)


def test_json_api_answers_are_not_sniffed_nor_framed(client):
    response = client.get("/api/v1/registry")
    assert response.headers["content-type"].startswith("application/json")
    csp = assert_secured(response)
    assert csp["frame-ancestors"] == ["'none'"]


def test_the_pages_styles_are_hashed_and_the_label_sheet_stays_self_contained(client):
    hashes = template_style_hashes()
    assert len(hashes) >= 10
    labels = client.get(f"/labels/{PACKED}")
    csp = assert_secured(labels)
    assert csp["style-src"][0] == "'self'" and set(csp["style-src"][1:]) == set(hashes)
    assert '<link rel="stylesheet"' not in labels.text  # the sheet prints with nothing fetched


def test_the_api_docs_get_their_own_policy_with_only_their_own_inline_script(client):
    for path in ("/docs", "/docs/oauth2-redirect"):
        page = client.get(path)
        csp = assert_secured(page)
        scripts = re.findall(r"<script>(.*?)</script>", page.text, flags=re.S)
        assert scripts, path
        assert all(csp_hash(s) in csp["script-src"] for s in scripts)
        assert "'unsafe-inline'" not in csp["script-src"]
        assert len([s for s in csp["script-src"] if s.startswith("'sha256-")]) == len(set(scripts))
    docs = directives(client.get("/docs").headers["content-security-policy"])
    assert "https://cdn.jsdelivr.net" in docs["script-src"]
    # the pages' policy does not carry the docs' allowances
    page = directives(client.get(f"/p/{PACKED}").headers["content-security-policy"])
    assert "https://cdn.jsdelivr.net" not in page["script-src"] + page["style-src"]


def test_the_farmers_photo_field_needs_no_permission(client):
    ledger_farmer = client.get("/farmer/login")
    assert_secured(ledger_farmer)
    template = (
        Path(__file__).resolve().parents[2] / "src/traceability/web/templates/_farmer_form.html"
    ).read_text()
    # a file input with ``capture`` opens the camera app: no getUserMedia, so camera=() costs nothing
    assert 'type="file" accept="image/*" capture="environment"' in template


# --- cookies ---


def cookie_lines(response: Any) -> list[str]:
    return response.headers.get_list("set-cookie")


def sign_in_farmer(client: TestClient, ledger: DemoLedger) -> tuple[Any, Any]:
    farmer = ledger.result.farmers[0]
    page = client.get("/farmer/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    done = client.post(
        "/farmer/login", data={"csrf": csrf.group(1), "phone": farmer["phone"], "pin": farmer["pin"]}
    )
    assert done.status_code == 303
    return page, done


def test_every_cookie_is_secure_over_https_and_not_over_http(ledger, anvil, tmp_path):
    for scheme in ("https", "http"):
        (tmp_path / scheme).mkdir()
        with client_for(ledger, anvil, tmp_path / scheme, base_url=f"{scheme}://testserver") as c:
            try:
                farmer_page, farmer_done = sign_in_farmer(c, ledger)
                c.cookies.clear()
                officer_page = c.get("/officer/login")
                lines = cookie_lines(farmer_page) + cookie_lines(farmer_done) + cookie_lines(officer_page)
            finally:
                c.app.state.runtime.close()
        set_lines = [line for line in lines if "max-age=0" not in line.lower() and '=""' not in line]
        names = {line.split("=", 1)[0] for line in set_lines}
        assert names == {"trace_login_csrf", "trace_session"}
        for line in set_lines:
            attributes = [a.strip().lower() for a in line.split(";")]
            assert "httponly" in attributes and "samesite=lax" in attributes
            assert ("secure" in attributes) == (scheme == "https"), line


def test_behind_a_tls_terminating_proxy_the_cookies_are_secure_when_the_proxy_is_trusted(
    ledger, anvil, tmp_path
):
    """``trace serve`` runs uvicorn, whose proxy-headers middleware (on by default, trusting
    ``FORWARDED_ALLOW_IPS``, 127.0.0.1 unless set) turns a trusted ``X-Forwarded-Proto: https`` into the
    request's scheme: the same middleware here, in front of the app."""
    for trusted, secure in (("testclient", True), ("10.9.8.7", False)):
        var = tmp_path / trusted
        var.mkdir()
        runtime = Runtime(ledger.copy(var).settings(var, anvil.rpc_url))
        app = ProxyHeadersMiddleware(create_app(runtime=runtime), trusted_hosts=trusted)
        with TestClient(app, follow_redirects=False) as c:
            try:
                page = c.get("/farmer/login", headers={"x-forwarded-proto": "https"})
            finally:
                runtime.close()
        [line] = cookie_lines(page)
        assert ("secure" in [a.strip().lower() for a in line.split(";")]) == secure, (trusted, line)
        assert_secured(page)


# --- in a real browser ---


@pytest.fixture
def server(ledger, anvil, tmp_path) -> Iterator[LiveServer]:
    live = LiveServer(ledger.copy(tmp_path).settings(tmp_path, anvil.rpc_url)).start()
    try:
        yield live
    finally:
        live.stop()


def violations(browser: webdriver.Chrome) -> list[str]:
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Content-Security-Policy" in entry["message"]
    ]


def visit(browser: webdriver.Chrome, url: str) -> None:
    browser.get(url)
    WebDriverWait(browser, 20, ignored_exceptions=NAVIGATING).until(
        ec.presence_of_element_located((By.TAG_NAME, "h1"))
    )
    assert browser.execute_script("return document.readyState") == "complete"


def test_the_pages_load_in_chromium_with_no_csp_violation_in_thai_and_english(browser, server, ledger):
    base = server.url
    browser.delete_all_cookies()
    browser.get_log("browser")  # forget what earlier tests left in the log

    # The log does show a violation: one made on purpose, an inline style attribute added to a page.
    visit(browser, f"{base}/p/{PACKED}")
    browser.execute_script("document.body.insertAdjacentHTML('beforeend', '<p style=\"color:red\">x</p>')")
    WebDriverWait(browser, 10).until(lambda b: (seen := violations(b)) and seen)
    browser.get_log("browser")

    public = [
        f"/p/{PACKED}",
        f"/01/{GTIN_VEG}/10/{PACKED}",
        "/p/NO-SUCH-LOT",
        "/",
        "/farmer/login",
        "/officer/login",
    ]
    farmer = ["/farmer/lots", "/farmer/record", "/farmer/record/harvest", "/farmer/record/packing"]
    officer = ["/officer", "/officer/risk", f"/officer/lots/{PACKED}", "/officer/farmers"]
    officer += ["/officer/farmers/new", "/officer/plots/new"]
    seen: dict[str, list[str]] = {}
    for lang in ("th", "en"):
        suffix = "?lang=en" if lang == "en" else ""
        for path in public:
            visit(browser, base + path + suffix)
            assert browser.execute_script("return document.documentElement.lang") == lang
            seen[path + suffix] = violations(browser)

        farmer_account = ledger.result.farmers[0]
        visit(browser, f"{base}/farmer/login{suffix}")
        browser.find_element(By.ID, "phone").send_keys(farmer_account["phone"])
        browser.find_element(By.ID, "pin").send_keys(farmer_account["pin"])
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 20, ignored_exceptions=NAVIGATING).until(ec.url_contains("/farmer/lots"))
        for path in farmer:
            visit(browser, base + path + suffix)
            seen[path + suffix] = violations(browser)
        browser.delete_all_cookies()

        officer_account = ledger.result.officers[0]
        visit(browser, f"{base}/officer/login{suffix}")
        browser.find_element(By.ID, "username").send_keys(officer_account["username"])
        browser.find_element(By.ID, "password").send_keys(officer_account["password"])
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 20, ignored_exceptions=NAVIGATING).until(
            lambda b: "/officer/login" not in b.current_url
        )
        for path in officer:
            visit(browser, base + path + suffix)
            assert "/officer/login" not in browser.current_url, path
            seen[path + suffix] = violations(browser)
        browser.delete_all_cookies()

    assert len(seen) == 2 * (len(public) + len(farmer) + len(officer))
    assert {path: found for path, found in seen.items() if found} == {}
