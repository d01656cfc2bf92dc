"""A French reader's Chromium (locale fr-FR, so it sends Accept-Language: fr) sees the
collector in French, laid out without overflow; the screenshots are kept for a person to
look at (ARDOISE_SCREENSHOTS=DIR keeps them there, else in the test's tmp directory)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import certs
from test_browser import browser  # noqa: F401 - the shared Chromium fixture
from test_i18n_pages import english_words, visible_text

pytestmark = pytest.mark.browser


@pytest.fixture
def french_page(browser):  # noqa: F811
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20000)
    yield context.new_page()
    context.close()


def _shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("ARDOISE_SCREENSHOTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


def test_french_dashboard_and_certificate_in_chromium(sqlite_collector, french_page, tmp_path):
    st = sqlite_collector.enroll(lot="LOT-NAVIGATEUR")
    ok = st.upload(certs.erasure_envelope(st.key, "SER-NAV-OK", lot="LOT-NAVIGATEUR")).json()["id"]
    st.upload(certs.erasure_envelope(st.key, "SER-NAV-KO", lot="LOT-NAVIGATEUR", outcome="failed"))
    sqlite_collector.api("POST", "/api/v1/progress", headers=st.headers,
                         json={"device": "/dev/sdv", "serial": "SER-NAV-LIVE", "phase": "verify", "pass_index": 1,
                               "pass_count": 1, "bytes_done": 750_000_000, "bytes_total": 1_000_000_000,
                               "throughput_bps": 98_700_000, "eta_s": 180})
    shots = _shots(tmp_path)
    page = french_page
    for name, path in (("dashboard", "/"), ("certificate", f"/certificates/{ok}"), ("lot", "/lots/LOT-NAVIGATEUR")):
        page.goto(sqlite_collector.url + path)
        assert page.evaluate("document.documentElement.lang") == "fr"
        text = page.inner_text("main")
        assert not english_words(visible_text(page.content())), (name, sorted(english_words(visible_text(page.content()))))
        # Longer French words must not push the page sideways.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
        shot = shots / f"collector-fr-{name}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if name == "dashboard":
            assert "Effacements en cours" in text and "vérification" in text and "75,0\u00a0%" in text
            assert "Disques à traiter" in text
        if name == "certificate":
            assert "Certificat d'effacement" in text and "Signature et contenu valides" in text
            assert "« Effacement (Clear) »" in text or "« Purge »" in text
    # The live list refreshes itself in the reader's language too (its fetch sends Accept-Language).
    page.goto(sqlite_collector.url + "/")
    page.wait_for_timeout(6000)
    assert "Effacements en cours" in page.inner_text("#live")
