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
