"""The collector's pages in a real headless Chromium (Debian's), driven by Playwright.
Playwright never downloads a browser here: it is pointed at /usr/bin/chromium."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

import certs

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (scripts/install-deps.sh installs Debian's chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(20000)
    yield context.new_page()
    context.close()


def test_verify_page_says_valid_or_invalid_and_why(sqlite_collector, page, tmp_path):
    st = sqlite_collector.enroll()
    good = tmp_path / "good.json"
    good.write_bytes(certs.erasure_envelope(st.key, "SER-WEB-VERIFY"))
    env = json.loads(good.read_bytes())
    payload = json.loads(base64.b64decode(env["payload"]))
    payload["sanitization"]["outcome"] = "success"
    payload["media"]["serial"] = "SER-FORGED"
    env["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(env))
    before = sqlite_collector.counts()

    page.goto(sqlite_collector.url + "/verify")
    page.set_input_files("#certificate", str(good))
    page.click("#check")
    assert page.inner_text("#verdict").startswith("VALID")
    assert "SER-WEB-VERIFY" in page.content()

    page.set_input_files("#certificate", str(forged))
    page.click("#check")
    assert page.inner_text("#verdict") == "INVALID"
    assert "bad-signature" in page.inner_text("#reasons")
    assert sqlite_collector.counts() == before


def test_find_a_certificate_by_serial_open_it_and_download_its_pdf(sqlite_collector, page, tmp_path):
    st = sqlite_collector.enroll()
    for serial in ("SER-WEB-1", "SER-WEB-2"):
        assert st.upload(certs.erasure_envelope(st.key, serial)).status_code == 201

    page.goto(sqlite_collector.url + "/certificates")
    page.fill("#serial", "SER-WEB-2")
    page.click("button[type=submit]")
    results = page.locator("#results tbody tr")
    assert results.count() == 1
    results.locator("a").first.click()
    assert page.inner_text("#cert-serial") == "SER-WEB-2"
    assert "Signature and content valid" in page.inner_text("#verification")

    with page.expect_download() as info:
        page.click("#pdf-link")
    path = tmp_path / "cert.pdf"
    info.value.save_as(path)
    assert path.read_bytes().startswith(b"%PDF")
    assert info.value.suggested_filename.endswith(".pdf")


def test_dashboard_refreshes_live_wipes_by_itself(sqlite_collector, page):
    st = sqlite_collector.enroll()
    page.goto(sqlite_collector.url + "/")
    assert "SER-WEB-LIVE" not in page.inner_text("#live")
    r = sqlite_collector.api("POST", "/api/v1/progress", headers=st.headers,
                             json={"device": "/dev/sdw", "serial": "SER-WEB-LIVE", "bytes_done": 1, "bytes_total": 4})
    assert r.status_code == 202
    # No reload: the dashboard's script fetches the live list every 5 s.
    page.locator("#live", has_text="SER-WEB-LIVE").wait_for(timeout=15000)


ATTACK_PAGE = """<!DOCTYPE html><html><body>
<form id="revoke" method="post" action="{c}/api/v1/admin/stations/{sid}/revoke" target="f1">
  <input name="confirm" value="1"></form>
<form id="token" method="post" enctype="text/plain" action="{c}/api/v1/admin/tokens" target="f2">
  <input name='{{"lot": "EVIL", "ttl_hours": 87600, "pad": "' value='"}}'></form>
<form id="page-token" method="post" action="{c}/admin/tokens" target="f3"><input name="lot" value="EVIL"></form>
<iframe name="f1"></iframe><iframe name="f2"></iframe><iframe name="f3"></iframe>
<script>
  document.getElementById("revoke").submit();
  document.getElementById("token").submit();
  document.getElementById("page-token").submit();
  fetch("{c}/api/v1/admin/tokens", {{method: "POST", mode: "no-cors", credentials: "include",
                                     body: '{{"lot": "EVIL"}}'}});
</script></body></html>"""


@pytest.fixture
def attacker_site():
    """A page on another loopback origin (another port), as an attacker's site would be."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            body = pages.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", pages
    server.shutdown()
    server.server_close()


def test_a_page_of_another_origin_cannot_revoke_a_station_nor_create_a_token(sqlite_collector, browser,
                                                                             attacker_site):
    from harness import ADMIN_PASSWORD

    c = sqlite_collector
    st = c.enroll()
    base, pages = attacker_site
    pages["/"] = ATTACK_PAGE.format(c=c.url, sid=st.station_id).encode()
    # The admin's browser holds the collector's Basic credentials and answers its challenges.
    context = browser.new_context(http_credentials={"username": "admin", "password": ADMIN_PASSWORD,
                                                    "origin": c.url})
    context.set_default_timeout(20000)
    seen: dict[str, int] = {}
    context.on("response", lambda r: seen.__setitem__(f"{r.request.method} {r.url}", r.status)
               if r.url.startswith(c.url) else None)
    before = c.counts()
    try:
        page = context.new_page()
        page.goto(base + "/")
        deadline = 200
        while len(seen) < 3 and deadline:
            page.wait_for_timeout(100)
            deadline -= 1
        # Each attack reached the collector with the admin's credentials, and was refused
        # for where it came from (403), not for a missing login (401).
        assert seen.get(f"POST {c.url}/api/v1/admin/stations/{st.station_id}/revoke") == 403, seen
        assert seen.get(f"POST {c.url}/api/v1/admin/tokens") == 403, seen
        assert seen.get(f"POST {c.url}/admin/tokens") == 403, seen
        assert c.counts() == before  # no token created
        listed = {s["station_id"]: s for s in c.admin("GET", "/api/v1/admin/stations").json()["items"]}
        assert listed[st.station_id]["revoked_at"] is None

        # The admin's own page still works in the same browser.
        page.goto(c.url + "/admin")
        page.locator(f"form[action='/admin/stations/{st.station_id}/revoke'] button").click()
        assert f"Station {st.station_id} revoked" in page.content()
    finally:
        context.close()


def test_api_docs_render_from_local_assets_only(sqlite_collector, page):
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    blocked: dict[str, str] = {}
    page.on("requestfailed", lambda r: blocked.__setitem__(r.url, r.failure))
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(sqlite_collector.url + "/docs")
    page.locator(".swagger-ui .info .title", has_text="Ardoise collector").wait_for()
    page.get_by_text("/api/v1/certificates", exact=True).first.wait_for()
    page.goto(sqlite_collector.url + "/redoc")
    page.locator("h1", has_text="Ardoise collector").wait_for()
    # ReDoc's footer tries its vendor's logo from a CDN: the CSP must stop it in the browser.
    foreign = [u for u in requested if not u.startswith((sqlite_collector.url, "data:", "blob:"))]
    assert requested and all(blocked.get(u) == "csp" for u in foreign), (foreign, blocked)
    # The strict CSP blocks none of their own scripts, styles or workers.
    assert not [e for e in errors if "Content Security Policy" in e and "cdn.redoc.ly" not in e], errors


# ----------------------------------------------------------------------------- organisations (issue 13)

@pytest.fixture(scope="module")
def hub_collector(tmp_path_factory):
    import hub

    tmp = tmp_path_factory.mktemp("hub")
    from harness import start_collector, stop_collector

    c = start_collector(f"sqlite:///{tmp / 'hub.db'}", tmp)
    try:
        yield hub.build(c)
    finally:
        stop_collector(c)


def _browser_login(browser, url: str, email: str):
    from hub import PASSWORD

    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(20000)
    page = context.new_page()
    page.goto(url + "/lots")  # a page asked of nobody: the login page, then back
    assert "/login" in page.url
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(url + "/lots")
    assert page.inner_text("#logged-in-as") == email
    return context, page


def _is_download(path: str) -> bool:
    """Exports and labels are attachments: Chromium downloads them instead of showing a page."""
    return ("format=" in path or path.endswith((".pdf", ".json", "/label")) or path.startswith(("/api/", "/labels"))
            or "/label?" in path)


def test_in_chromium_a_workshop_sees_its_lot_and_nothing_of_another_on_any_page_or_export(hub_collector, browser):
    from hub import report_progress
    from test_accounts import side_lists, side_urls

    h = hub_collector
    url = h.c.url
    context, page = _browser_login(browser, url, "nord-tech@example.org")
    try:
        assert page.locator("#lots", has_text="LOT-N1").count() == 1
        assert "LOT-S1" not in page.inner_text("main")
        for path in side_urls(h.sud):
            # Pages through the browser; exports (attachments) through its request context,
            # which carries the same cookies.
            if _is_download(path):
                r = context.request.get(url + path)
                assert r.status == 404, path
            else:
                r = page.goto(url + path)
                assert r.status == 404 and h.sud.serial not in page.content(), path
        for path in side_urls(h.nord):
            if _is_download(path):
                assert context.request.get(url + path).status == 200, path
            else:
                assert page.goto(url + path).status == 200, path
        report_progress(h.sud)  # fresh, so its absence from the live view means something
        for path in side_lists(h.sud):
            if path.startswith("/api/"):
                continue
            page.goto(url + path)
            text = page.inner_text("body")
            assert h.sud.certificate_id not in text and h.sud.live_serial not in text, path
            if "serial=" not in path and "lot=" not in path:
                assert h.sud.serial not in text and "LOT-S1" not in text, path
        # Logging out ends the session: the lots page sends the browser to the login page again.
        page.goto(url + "/")
        page.click("#logout")
        page.wait_for_url(url + "/login")
        page.goto(url + "/lots")
        assert "/login" in page.url
    finally:
        context.close()


def test_in_chromium_the_coordinator_admin_reads_the_audit_log(hub_collector, browser):
    context, page = _browser_login(browser, hub_collector.c.url, "coord@example.org")
    try:
        page.goto(hub_collector.c.url + "/admin")
        page.click("#events-link")
        assert page.locator("#events", has_text="session:login").count() == 1
        assert "coord@example.org" in page.inner_text("#events")
    finally:
        context.close()
