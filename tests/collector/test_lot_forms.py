"""The lot page's forms, over HTTP: importing the donor's inventory and closing the lot,
each only for a manager of the lot's workshop, CSRF-protected, in the reader's language;
a bad file lists every bad row by its line number and stores nothing."""

from __future__ import annotations

import base64
import html
import json
import zipfile
import io

import pytest
from sqlalchemy import text
from harness import start_collector, stop_collector
from hub import PASSWORD, cli, form_token, login, ok
from lot_samples import INVENTORY_CSV, sample_lot

LOT = "LOT-A"
PEOPLE = {"coord@example.org": ("Coordination", "admin"), "nord-manager@example.org": ("Atelier Nord", "manager"),
          "nord-tech@example.org": ("Atelier Nord", "technician"), "sud-manager@example.org": ("Atelier Sud", "manager"),
          "donor@example.org": ("Région A", "donor-viewer")}


def lot_with_machines(tmp, *, extra_args=()):
    """A collector with LOT-A of Atelier Nord: the sample lot's audit reports and
    certificates uploaded by its stations, no inventory yet, one destruction to record."""
    c = start_collector(f"sqlite:///{tmp}/c.db", tmp, extra_args=extra_args)
    db = c.db_url
    for name, kind in (("Coordination", "coordinator"), ("Atelier Nord", "workshop"), ("Atelier Sud", "workshop"),
                       ("Région A", "donor")):
        ok(cli("org", "create", name, "--kind", kind, db_url=db))
    ok(cli("lot", "create", LOT, "--workshop", "Atelier Nord", "--donor", "Région A", db_url=db))
    for email, (org, role) in PEOPLE.items():
        ok(cli("user", "create", email, "--org", org, "--role", role, db_url=db, stdin=PASSWORD + "\n"))
    sample = sample_lot()
    for key in sample.stations:
        r = c.admin("POST", "/api/v1/admin/tokens", json={"lot": LOT, "workshop": "Atelier Nord"})
        r = c.api("POST", "/api/v1/stations", json=c.enrollment(key, r.json()["token"]))
        assert r.status_code == 201, r.text
        bearer = {"Authorization": f"Bearer {r.json()['bearer']}", "Content-Type": "application/json"}
        for path, signed in (("/api/v1/audits", sample.audits), ("/api/v1/certificates", sample.certificates)):
            for p, e in signed:
                if p["station"]["key_id"] == key.key_id:
                    assert c.api("POST", path, data=e, headers=bearer).status_code == 201
    return c


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("forms")
    c = lot_with_machines(tmp, extra_args=("--co2-factor", "27", "--co2-source", "ADEME 2022 (test)"))
    try:
        with c.engine.connect() as conn:
            lot_id = conn.execute(text("SELECT id FROM lots WHERE name = :n"), {"n": LOT}).scalar_one()
        yield c, lot_id
    finally:
        stop_collector(c)


def _t(r) -> str:
    """A page's text as read (the templates escape apostrophes)."""
    return html.unescape(r.text)


def _lot_page(c, session, lang="fr"):
    return session.get(c.url + f"/lots/{LOT}", headers={"Accept-Language": lang}, timeout=30)


def _post(c, session, path, *, lang="fr", files=None, data=None, token=None, **kw):
    token = token if token is not None else form_token(_lot_page(c, session, lang).text)
    return session.post(c.url + path, data={"csrf": token, **(data or {})}, files=files,
                        headers={"Accept-Language": lang, **kw.pop("headers", {})}, allow_redirects=False,
                        timeout=60, **kw)


def test_only_a_manager_of_the_lots_workshop_may_import_or_close(hub):
    c, lot_id = hub
    files = {"inventory": ("inventaire.csv", INVENTORY_CSV, "text/csv")}
    tech, donor, sud = (login(c, e) for e in ("nord-tech@example.org", "donor@example.org", "sud-manager@example.org"))
    for who in (tech, donor):  # they see the lot, without the forms, and may not post them
        page = _lot_page(c, who)
        assert page.status_code == 200 and "lot-import-form" not in page.text and "lot-close-form" not in page.text
        for action in ("import", "close"):
            r = _post(c, who, f"/lot-forms/{lot_id}/{action}", files=files if action == "import" else None,
                      data={"reason": "closing for the test of roles"})
            assert r.status_code == 403, (action, r.status_code)
    # Another workshop does not learn the lot exists; nobody is sent to log in.
    assert _post(c, sud, f"/lot-forms/{lot_id}/import", files=files,
                 token=form_token(sud.get(c.url + "/lots", timeout=30).text)).status_code == 404
    r = c.api("POST", f"/lot-forms/{lot_id}/import", files=files, allow_redirects=False)
    assert r.status_code in (303, 401) and "/login" in r.headers.get("location", "/login")
    manager = login(c, "nord-manager@example.org")
    # Without this session's token, or from another site: refused, nothing stored.
    assert _post(c, manager, f"/lot-forms/{lot_id}/import", files=files, token="forged").status_code == 403
    assert _post(c, manager, f"/lot-forms/{lot_id}/import", files=files,
                 headers={"Origin": "https://evil.example"}).status_code == 403
    assert "lot-reconciliation" not in _lot_page(c, manager).text


def test_a_bad_inventory_lists_each_bad_row_by_line_number_in_french_and_stores_nothing(hub):
    c, lot_id = hub
    manager = login(c, "nord-manager@example.org")
    page = _lot_page(c, manager)
    assert "lot-import-form" in page.text and "Importer l'inventaire du donateur" in page.text
    bad = "N° de série;Modèle\nGOOD-1;X\n;sans identifiant\nGOOD-1;doublon\n".encode("cp1252")
    r = _post(c, manager, f"/lot-forms/{lot_id}/import", files={"inventory": ("inventaire.csv", bad, "text/csv")})
    assert r.status_code == 422
    assert "2 ligne(s) incorrecte(s) dans inventaire.csv" in _t(r) and "rien n'a été importé" in _t(r)
    assert "ligne 3 : ni numéro de série ni numéro d'inventaire" in _t(r)
    assert "ligne 4 : le numéro de série GOOD-1 est déjà déclaré à la ligne 2" in _t(r)
    assert "lot-reconciliation" not in _t(r)  # nothing stored
    # A file that is no inventory at all: one reason, in the reader's language.
    r = _post(c, manager, f"/lot-forms/{lot_id}/import", lang="en",
              files={"inventory": ("photo.csv", "name,colour\nx,y\n".encode(), "text/csv")})
    assert r.status_code == 400 and "no column named serial" in _t(r)
    r = _post(c, manager, f"/lot-forms/{lot_id}/import", files={"inventory": ("", b"", "text/csv")})
    assert r.status_code == 400 and "choisissez" in _t(r).lower()


def test_a_manager_imports_the_inventory_then_closes_the_lot_only_with_a_written_reason(hub):
    c, lot_id = hub
    manager = login(c, "nord-manager@example.org")
    r = _post(c, manager, f"/lot-forms/{lot_id}/import",
              files={"inventory": ("inventaire.csv", INVENTORY_CSV, "text/csv")})
    assert r.status_code == 303 and r.headers["location"].endswith("notice=imported"), r.text
    page = _t(manager.get(c.url + r.headers["location"], headers={"Accept-Language": "fr"}, timeout=30))
    assert "le lot déclare 7 équipements" in page and 'id="lot-reconciliation"' in page
    assert "aucun disque trouvé" in page  # M3NODISK, found through its audit report's lot
    assert "Motif de la clôture" in page and "lot-reason" in page  # M6LOST missing, D4/M5 not destroyed yet

    for reason, why in (("", "donnez le motif"), ("volé", "donnez le motif")):
        r = _post(c, manager, f"/lot-forms/{lot_id}/close", data={"reason": reason})
        assert r.status_code == 409 and why in _t(r), r.text
        assert "lot-close-form" in _t(r) and reason in _t(r)  # the form again, with what was typed
    reason = "M6LOST volé pendant le transport (plainte n° 1234)."
    r = _post(c, manager, f"/lot-forms/{lot_id}/close", data={"reason": reason})
    assert r.status_code == 303 and r.headers["location"].endswith("notice=closed")
    page = _t(manager.get(c.url + r.headers["location"], headers={"Accept-Language": "fr"}, timeout=30))
    assert "Lot clôturé" in page and 'id="lot-bundle"' in page and "lot-close-form" not in page
    assert "lot-import-form" not in page
    # Closed: posting again changes nothing.
    r = _post(c, manager, f"/lot-forms/{lot_id}/close", data={"reason": reason}, token=form_token(page))
    assert r.status_code == 409 and "est clôturé" in _t(r)

    bundle = manager.get(c.url + f"/lots/{LOT}?format=bundle", timeout=120)
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as z:
        report = json.loads(base64.b64decode(json.loads(z.read("lot-report.json"))["payload"]))
    assert report["forced"] is True and report["closing_reason"] == reason
    assert report["closed_by"] == "nord-manager@example.org"
    assert report["co2"] == {"kg_per_reused_device": 27, "source": "ADEME 2022 (test)",
                             "avoided_kg": 27 * report["reen"]["reused"]}


def test_a_machine_with_no_disk_is_seen_and_labelled_by_its_lots_donor_and_workshop_only(hub):
    c, _ = hub
    with c.engine.connect() as conn:
        nodisk = [i for i, e in conn.execute(text("SELECT id, envelope FROM audit_reports WHERE lot = :l"),
                                            {"l": LOT}) if "M3NODISK" in base64.b64decode(json.loads(e)["payload"])
                  .decode()]
    assert len(nodisk) == 1  # filed under its lot at upload, although no certificate names it
    for email, status in (("donor@example.org", 200), ("nord-tech@example.org", 200), ("sud-manager@example.org", 404)):
        r = login(c, email).get(c.url + f"/audits/{nodisk[0]}", timeout=30, allow_redirects=False)
        assert r.status_code == status, email
    labels = login(c, "donor@example.org").get(c.url + f"/labels?lot={LOT}&size=50x30&format=zpl", timeout=60)
    assert labels.status_code == 200 and f"/audits/{nodisk[0]}" in labels.text and "aucun disque" in labels.text
