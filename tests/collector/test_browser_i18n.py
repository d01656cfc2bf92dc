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


@pytest.fixture(scope="module")
def lot_collector(tmp_path_factory):
    from harness import stop_collector
    from test_lot_forms import lot_with_machines

    c = lot_with_machines(tmp_path_factory.mktemp("lot-forms"))
    yield c
    stop_collector(c)


def test_in_chromium_a_french_manager_imports_the_inventory_and_closes_the_lot_with_a_reason(
        lot_collector, browser, tmp_path):  # noqa: F811
    from hub import PASSWORD
    from lot_samples import INVENTORY_CSV

    c, shots = lot_collector, _shots(tmp_path)
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20000)
    page = context.new_page()
    try:
        page.goto(c.url + "/lots/LOT-A")
        page.fill("#email", "nord-manager@example.org")
        page.fill("#password", PASSWORD)
        page.click("#login")
        page.wait_for_url(c.url + "/lots/LOT-A")
        assert "Importer l'inventaire du donateur" in page.inner_text("#lot-import")
        page.screenshot(path=str(shots / "collector-fr-lot-empty.png"), full_page=True)

        bad = tmp_path / "inventaire-faux.csv"
        bad.write_bytes("N° de série;Modèle\nGOOD-1;X\n;sans identifiant\n".encode("cp1252"))
        page.set_input_files("#lot-inventory", str(bad))
        page.click("#lot-import-button")
        errors = page.inner_text("#lot-form-errors")
        assert "1 ligne(s) incorrecte(s) dans inventaire-faux.csv" in errors and "ligne 3 :" in errors
        page.screenshot(path=str(shots / "collector-fr-lot-bad-rows.png"), full_page=True)

        good = tmp_path / "inventaire.csv"
        good.write_bytes(INVENTORY_CSV)
        page.set_input_files("#lot-inventory", str(good))
        page.click("#lot-import-button")
        page.wait_for_url("**notice=imported")
        assert "le lot déclare 7 équipements" in page.inner_text("#lot-notice")
        assert "aucun disque trouvé" in page.inner_text("#lot-reconciliation")
        # The browser itself refuses an empty reason (required), before any request.
        page.click("#lot-close-button")
        assert page.evaluate("document.querySelector('#lot-reason').validity.valueMissing")
        page.fill("#lot-reason", "M6LOST volé pendant le transport (plainte n° 1234).")
        assert not english_words(visible_text(page.content())), sorted(english_words(visible_text(page.content())))
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=str(shots / "collector-fr-lot-to-close.png"), full_page=True)
        page.click("#lot-close-button")
        page.wait_for_url("**notice=closed")
        assert "Lot clôturé" in page.inner_text("#lot-notice") and page.is_visible("#lot-bundle")
        assert "plainte n° 1234" in page.inner_text("#lot-close-reason")
        assert "par nord-manager@example.org" in page.inner_text("#lot-closed")
        assert not page.is_visible("#lot-close-form") and not page.is_visible("#lot-import-form")
        page.screenshot(path=str(shots / "collector-fr-lot-closed.png"), full_page=True)
    finally:
        context.close()
