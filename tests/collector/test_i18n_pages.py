"""The collector in French: with ``Accept-Language: fr`` every page is ``<html lang="fr">``
and its visible text has no English prose left; lot CSV and PDF follow.

The check reads the text a person sees (not scripts, not the raw field dump, not code or
key ids, which are data) and looks for common English words, whole words, case-insensitive.
The same check run on the English pages must find plenty, so it cannot pass by accident."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

import certs
from english_words import english_words
from harness import ADMIN_PASSWORD

SKIP_TAGS = {"script", "style", "code", "pre"}
SKIP_CLASSES = {"fields", "mono"}
VOID = {"meta", "link", "input", "br", "img", "hr", "source", "col", "area", "base", "wbr"}


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []  # per open element: is it hidden from this check?
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            return
        classes = set((dict(attrs).get("class") or "").split())
        self.stack.append(tag in SKIP_TAGS or bool(classes & SKIP_CLASSES) or any(self.stack[-1:]))

    def handle_endtag(self, tag):
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not any(self.stack[-1:]):
            self.text.append(data)


def visible_text(html: str) -> str:
    p = _Visible()
    p.feed(html)
    return re.sub(r"[ \t\r\n]+", " ", " ".join(p.text)).strip()  # no-break spaces stay what they are


@pytest.fixture(scope="module")
def french_site(sqlite_collector):
    c = sqlite_collector
    st = c.enroll(lot="LOT-FR")
    ok = st.upload(certs.erasure_envelope(st.key, "SER-FR-OK", lot="LOT-FR"))
    bad = st.upload(certs.erasure_envelope(st.key, "SER-FR-KO", lot="LOT-FR", outcome="failed"))
    audit = st.upload(certs.audit_envelope(st.key, ["SER-FR-OK"], lot="LOT-FR"), path="/api/v1/audits")
    assert ok.status_code == bad.status_code == audit.status_code == 201, (ok.text, bad.text, audit.text)
    live = c.api("POST", "/api/v1/progress", headers=st.headers,
                 json={"device": "/dev/sdq", "serial": "SER-FR-LIVE", "phase": "write", "pass_index": 0,
                       "pass_count": 1, "bytes_done": 400_000_000, "bytes_total": 1_000_000_000,
                       "throughput_bps": 123_400_000, "eta_s": 300})
    assert live.status_code in (200, 202, 204), live.text
    return {"collector": c, "station": st, "ok": ok.json()["id"], "audit": audit.json()["id"]}


def _pages(site) -> list[tuple[str, str]]:
    return [("GET", "/"), ("GET", "/certificates"), ("GET", "/certificates?outcome=failed"),
            ("GET", f"/certificates/{site['ok']}"), ("GET", f"/audits/{site['audit']}"), ("GET", "/lots"),
            ("GET", "/lots/LOT-FR"), ("GET", "/verify"), ("GET", "/admin")]


def _get(site, path: str, lang: str | None):
    headers = {"Accept-Language": lang} if lang else {}
    return site["collector"].api("GET", path, headers=headers, auth=("admin", ADMIN_PASSWORD))


def test_french_pages_have_no_english_prose(french_site):
    for _method, path in _pages(french_site):
        r = _get(french_site, path, "fr-FR,fr;q=0.9,en;q=0.5")
        assert r.status_code == 200, (path, r.text[:300])
        assert '<html lang="fr">' in r.text, path
        assert r.headers["content-language"] == "fr"
        text = visible_text(r.text)
        assert not english_words(text), f"{path}: English left: {sorted(english_words(text))} in {text[:600]!r}"
    dashboard = visible_text(_get(french_site, "/", "fr").text)
    assert "Effacements en cours" in dashboard and "écriture" in dashboard and "40,0\u00a0%" in dashboard
    assert "123,4\u00a0Mo/s" in dashboard and "5\u00a0min" in dashboard
    cert = visible_text(_get(french_site, f"/certificates/{french_site['ok']}", "fr").text)
    assert "Certificat d'effacement" in cert and "réussi" in cert
    assert re.search(r"Reçu le \d{1,2} \w+ 20\d\d à \d\d:\d\d \(heure de Paris\)", cert), cert


def test_the_check_finds_english_on_english_pages(french_site):
    # Without a preference, and with one we have no catalog for, the pages stay English.
    for lang in (None, "de-DE"):
        for _method, path in _pages(french_site):
            r = _get(french_site, path, lang)
            assert '<html lang="en">' in r.text, path
            assert len(english_words(visible_text(r.text))) >= 3, path


def test_french_verify_page_explains_a_refusal(french_site, tmp_path):
    c = french_site["collector"]
    r = c.api("POST", "/verify", headers={"Accept-Language": "fr"},
              files={"certificate": ("faux.json", b"{ pas du json", "application/json")})
    assert r.status_code == 200
    text = visible_text(r.text)
    assert "INVALIDE" in text and "ce n'est pas un certificat Ardoise" in text, text
    assert not english_words(text), sorted(english_words(text))


def test_french_lot_csv_and_pdf(french_site, tmp_path):
    csv_text = _get(french_site, "/lots/LOT-FR?format=csv", "fr").text
    header = csv_text.splitlines()[0]
    assert header.startswith("identifiant du certificat,numéro de série,fabricant,modèle")
    assert _get(french_site, "/lots/LOT-FR?format=csv", None).text.startswith("certificate_id,serial,")
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    pdf = tmp_path / "lot.pdf"
    pdf.write_bytes(_get(french_site, "/lots/LOT-FR?format=pdf", "fr").content)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Bilan d'effacement — lot LOT-FR" in text and "Non effacés (à traiter)" in text
    assert "heure de Paris" in text
    assert not english_words(text.replace("ardoise verify", "")), sorted(english_words(text))


def test_french_error_pages_and_english_api_reasons(french_site):
    c = french_site["collector"]
    page = _get(french_site, "/lots/LOT-INCONNU", "fr")
    assert page.status_code == 404 and '<html lang="fr">' in page.text
    text = visible_text(page.text)
    assert "Introuvable" in text and "aucun certificat dans le lot LOT-INCONNU" in text
    assert not english_words(text), sorted(english_words(text))
    bad_date = _get(french_site, "/certificates?since=demain", "fr")
    assert bad_date.status_code == 400 and "since doit être une date" in visible_text(bad_date.text)
    # The API stays English and language-neutral, whatever the reader's language.
    api = c.api("GET", "/api/v1/certificates?since=demain", headers={"Accept-Language": "fr"},
                auth=("admin", ADMIN_PASSWORD))
    assert api.status_code == 400 and api.json()["reason"] == "since must be a date (2026-11-27) or an RFC 3339 time"


def test_pages_show_dates_in_the_collectors_time_zone(tmp_path):
    from harness import start_collector, stop_collector

    c = start_collector(f"sqlite:///{tmp_path / 'tz.db'}", tmp_path,
                        env_extra={"ARDOISE_COLLECTOR_TIMEZONE": "America/Guadeloupe"})
    try:
        st = c.enroll(lot="LOT-TZ")
        cert = st.upload(certs.erasure_envelope(st.key, "SER-TZ", lot="LOT-TZ")).json()["id"]
        text = visible_text(c.api("GET", f"/certificates/{cert}", headers={"Accept-Language": "fr"}).text)
        assert "(heure de Guadeloupe)" in text and "heure de Paris" not in text
        assert c.api("GET", f"/api/v1/certificates/{cert}").json()["received_at"].endswith("Z")  # the API keeps UTC
    finally:
        stop_collector(c)


def test_an_unknown_collector_time_zone_is_a_one_line_error(monkeypatch):
    from agent.errors import ConfigError
    from server_stub import settings

    monkeypatch.setenv("ARDOISE_COLLECTOR_TIMEZONE", "Europe/Atlantide")
    with pytest.raises(ConfigError, match="unknown time zone 'Europe/Atlantide'"):
        settings.from_env()


def test_french_accounts_and_inventory_pages_have_no_english_prose(tmp_path):
    """The pages that came with accounts and lots: the login page, the audit log, the admin
    page after creating a lot, a lot with the donor's inventory (open, then closed with its
    reconciliation and the donor's bundle link), and a wrong login."""
    from harness import start_collector, stop_collector
    import requests
    from hub import PASSWORD, cli, form_token, login, ok
    from lot_samples import INVENTORY_CSV

    c = start_collector(f"sqlite:///{tmp_path / 'inv.db'}", tmp_path)
    try:
        db = c.db_url
        for name, kind in (("Atelier Nord", "workshop"), ("Région A", "donor")):
            ok(cli("org", "create", name, "--kind", kind, db_url=db))
        inventory = tmp_path / "inventaire.csv"
        inventory.write_bytes(INVENTORY_CSV)
        ok(cli("lot", "create", "LOT-INV", "--workshop", "Atelier Nord", "--donor", "Région A", "--received",
               "2026-11-20", "--inventory", str(inventory), db_url=db))
        ok(cli("lot", "destroy", "LOT-INV", "--serial", "M5BROKEN", "--method", "broyage", "--date", "2026-11-25",
               "--partner", "Filière DEEE", "--by", "Camille", db_url=db))
        ok(cli("user", "create", "chef@example.org", "--role", "admin", db_url=db, stdin=PASSWORD + "\n"))
        fr = {"Accept-Language": "fr-FR,fr;q=0.9"}
        admin = ("admin", ADMIN_PASSWORD)

        def french(r, path):
            assert '<html lang="fr">' in r.text, path
            text = visible_text(r.text)
            assert not english_words(text), f"{path}: English left: {sorted(english_words(text))} in {text[:600]!r}"
            return text

        assert "Se connecter" in french(c.api("GET", "/login", headers=fr), "/login")
        page = c.api("GET", "/admin/events", headers=fr, auth=admin)
        assert page.status_code == 200 and "Journal des actions" in french(page, "/admin/events")
        lot = c.api("GET", "/lots/LOT-INV", headers=fr, auth=admin)
        text = french(lot, "/lots/LOT-INV (open)")
        assert "Inventaire déclaré" in text and "manquant" in text and "ouvert" in text and "Atelier" in text, text
        anon = requests.Session()
        token = form_token(anon.get(c.url + "/login", headers=fr, timeout=30).text)
        wrong = anon.post(c.url + "/login", headers=fr, timeout=30, allow_redirects=False,
                          data={"email": "chef@example.org", "password": "pas le bon", "csrf": token, "next": "/"})
        assert wrong.status_code == 401
        assert "adresse e-mail ou mot de passe incorrect" in french(wrong, "POST /login")
        chef = login(c, "chef@example.org", **fr)
        page = chef.get(c.url + "/admin", headers=fr, timeout=30)
        created = chef.post(c.url + "/admin/lots", headers=fr, timeout=30,
                            data={"csrf": form_token(page.text), "name": "LOT-NEUF", "workshop": "Atelier Nord",
                                  "donor": "", "language": "fr"})
        assert created.status_code == 200, created.text
        text = french(created, "POST /admin/lots")
        assert "Lot LOT-NEUF créé." in text and "Se déconnecter" in text, text
        assert "Journal des actions" in french(chef.get(c.url + "/admin/events", headers=fr, timeout=30),
                                               "/admin/events as a person")
        ok(cli("lot", "close", "LOT-INV", "--reason", "appareils perdus lors du transport", db_url=db))
        closed = french(c.api("GET", "/lots/LOT-INV", headers=fr, auth=admin), "/lots/LOT-INV (closed)")
        assert "clôturé" in closed and "détruit" in closed, closed
        assert "Télécharger le dossier du donateur" in closed, closed
    finally:
        stop_collector(c)


def test_french_certificate_and_lot_pages_name_media_and_method_in_words(french_site):
    cert = visible_text(_get(french_site, f"/certificates/{french_site['ok']}", "fr").text)
    summary = cert.split("Tous les champs du certificat")[0]
    assert "(disque dur," in summary and "Méthode réécriture, une passe de zéros" in summary, summary
    assert "overwrite:zero" not in summary and "(hdd," not in summary
    lot = visible_text(_get(french_site, "/lots/LOT-FR", "fr").text)
    assert re.search(r"Méthodes réécriture, une passe de zéros\s:\s2", lot) and "overwrite:zero" not in lot, lot
    # The English page keeps the identifiers the config and the CLI use.
    assert "overwrite:zero" in visible_text(_get(french_site, f"/certificates/{french_site['ok']}", "en").text)
