"""A donor's lot through the collector's CLI and HTTP: inventory imported (CSV and XLSX),
certificates uploaded, destructions recorded, closing refused then forced with a reason,
the bundle downloaded and checked by ``ardoise verify --bundle``, and refused once tampered."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import pytest
from sqlalchemy import create_engine, text
from harness import start_collector, stop_collector
from hub import PASSWORD, cli, login, ok
from lot_samples import INVENTORY_CSV, sample_lot

from agent.certify.envelope import ERASURE_TYPE, dump_envelope, envelope_digest, sign_envelope
from agent.certify.keys import StationKey
from collector.certs import erasure_payload

LOT = "LOT-A"  # the lot the sample certificates and audit reports name


@pytest.fixture(scope="module")
def lot(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wiring")
    c = start_collector(f"sqlite:///{tmp}/c.db", tmp)
    try:
        db = c.db_url
        for name, kind in (("Atelier Nord", "workshop"), ("Atelier Sud", "workshop"), ("Région A", "donor")):
            ok(cli("org", "create", name, "--kind", kind, db_url=db))
        ok(cli("lot", "create", LOT, "--workshop", "Atelier Nord", "--donor", "Région A", "--received",
               "2026-11-20", db_url=db))
        ok(cli("org", "create", "Coordination", "--kind", "coordinator", db_url=db))
        for email, org, role in (("coord@example.org", "Coordination", "admin"),
                                 ("nord@example.org", "Atelier Nord", "manager"),
                                 ("sud@example.org", "Atelier Sud", "manager"),
                                 ("donor@example.org", "Région A", "donor-viewer")):
            ok(cli("user", "create", email, "--org", org, "--role", role, db_url=db, stdin=PASSWORD + "\n"))
        sample = sample_lot()
        for key in sample.stations:
            r = c.admin("POST", "/api/v1/admin/tokens", json={"lot": LOT, "workshop": "Atelier Nord"})
            assert r.status_code == 201, r.text
            r = c.api("POST", "/api/v1/stations", json=c.enrollment(key, r.json()["token"]))
            assert r.status_code == 201, r.text
            bearer = {"Authorization": f"Bearer {r.json()['bearer']}", "Content-Type": "application/json"}
            for path, signed in (("/api/v1/audits", sample.audits), ("/api/v1/certificates", sample.certificates)):
                for p, e in signed:
                    if p["station"]["key_id"] == key.key_id:
                        r = c.api("POST", path, data=e, headers=bearer)
                        assert r.status_code == 201, r.text
        yield c, tmp
    finally:
        stop_collector(c)


def _xlsx(rows: list[list[str]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    for row in rows:
        wb.active.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _verify(path, pem_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent", "verify", "--bundle", str(path), "--collector-key",
                           str(pem_path)], capture_output=True, text=True, timeout=120)


def _rewrite(src, dst, *, drop=(), change=None, add=None) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = zin.read(info.filename)
            if change and info.filename == change[0]:
                data = change[1]
            zout.writestr(info.filename, data)
        for name, data in (add or {}).items():
            zout.writestr(name, data)


def test_a_lot_is_imported_reconciled_closed_and_its_bundle_verifies_and_tampering_is_refused(lot):
    c, tmp = lot
    db = c.db_url
    # A file with bad rows: every bad line named, one line each, nothing stored.
    bad = tmp / "bad.csv"
    bad.write_bytes("serial,asset tag,model\nGOOD-1,,X\n,,no identifier\nGOOD-1,,duplicate\n".encode())
    r = cli("lot", "import", LOT, str(bad), db_url=db)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ": line " in ln]
    assert [ln.split(": line ")[1].split(":")[0] for ln in lines] == ["3", "4"], r.stderr
    assert "nothing imported" in r.stderr
    page = login(c, "nord@example.org").get(c.url + f"/lots/{LOT}", timeout=30)
    assert page.status_code == 200 and "lot-reconciliation" not in page.text  # nothing was stored

    # XLSX first (replaced next), then the donor's CSV as Excel exports it in France.
    xlsx = tmp / "inventory.xlsx"
    xlsx.write_bytes(_xlsx([["Numéro de série", "Modèle"], ["PF1-AAAA", "ThinkPad T480"], ["M6LOST", "X270"]]))
    r = ok(cli("lot", "import", LOT, str(xlsx), db_url=db))
    assert "2 declared device(s)" in r.stderr
    csv = tmp / "inventory.csv"
    csv.write_bytes(INVENTORY_CSV)
    assert "7 declared device(s)" in ok(cli("lot", "import", LOT, str(csv), db_url=db)).stderr
    for serial in ("D4", "M5BROKEN"):
        ok(cli("lot", "destroy", LOT, "--serial", serial, "--method", "shredding", "--date", "2026-11-30",
               "--partner", "Envie 2E Lyon", "--by", "Sam Durand", db_url=db))

    nord = login(c, "nord@example.org")
    page = nord.get(c.url + f"/lots/{LOT}", timeout=30)
    assert page.status_code == 200 and 'id="lot-reconciliation"' in page.text
    assert "M6LOST" in page.text and "missing" in page.text and "Devices received:" in page.text

    # Missing devices: refused without a reason, closed with one.
    r = cli("lot", "close", LOT, db_url=db)
    assert r.returncode != 0 and "missing" in r.stderr and "M6LOST" in r.stderr and "Traceback" not in r.stderr
    assert nord.get(c.url + f"/lots/{LOT}?format=bundle", timeout=30).status_code == 409  # open: no bundle yet
    r = ok(cli("lot", "close", LOT, "--reason", "M6LOST stolen in transport (complaint 1234).",
               "--by", "Claire Martin", db_url=db))
    assert "closed" in r.stderr
    assert cli("lot", "close", LOT, "--reason", "once more, please", db_url=db).returncode != 0

    pem = tmp / "collector.pem"
    pem.write_text(c.api("GET", "/api/v1/receipt-key").json()["public_key"])
    got = nord.get(c.url + f"/lots/{LOT}?format=bundle", timeout=120)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/zip"
    bundle = tmp / "lot.zip"
    bundle.write_bytes(got.content)
    r = _verify(bundle, pem)
    assert r.returncode == 0, r.stdout + r.stderr
    # M3NODISK has an audit report saying no disk found and no certificate: it is found
    # through the lot its audit report was filed under, not missing.
    with zipfile.ZipFile(bundle) as z:
        rep = json.loads(__import__("base64").b64decode(json.loads(z.read("lot-report.json"))["payload"]))
        audits_in_zip = [n for n in z.namelist() if n.startswith("audit-reports/")]
    states = {d["serial"]: d["state"] for d in rep["devices"]}
    assert states["M3NODISK"] == "no_disk" and states["M6LOST"] == "missing"
    assert rep["counts"]["no_disk"] == 1 and rep["counts"]["missing"] == 1
    nodisk = next(d for d in rep["devices"] if d["serial"] == "M3NODISK")
    assert len(nodisk["audit_reports"]) == 1 and f"audit-reports/{nodisk['audit_reports'][0]}.json" in audits_in_zip

    # The donor gets the same bundle; another workshop's manager does not know the lot exists.
    assert login(c, "donor@example.org").get(c.url + f"/lots/{LOT}?format=bundle", timeout=120).status_code == 200
    assert login(c, "sud@example.org").get(c.url + f"/lots/{LOT}?format=bundle", timeout=30).status_code == 404
    assert c.api("GET", f"/lots/{LOT}?format=bundle", allow_redirects=False).status_code in (303, 401, 404)

    # Another workshop's lot of the same name: the coordinator, who sees both, names the workshop.
    ok(cli("lot", "create", LOT, "--workshop", "Atelier Sud", db_url=db))
    coord = login(c, "coord@example.org")
    assert coord.get(c.url + f"/lots/{LOT}?format=bundle", timeout=30).status_code == 400
    nord_id = next(o["id"] for o in json.loads(ok(cli("org", "list", "--json", db_url=db)).stdout)
                   if o["name"] == "Atelier Nord")
    theirs = coord.get(c.url + f"/lots/{LOT}?format=bundle&workshop={nord_id}", timeout=120)
    with zipfile.ZipFile(io.BytesIO(theirs.content)) as a, zipfile.ZipFile(io.BytesIO(got.content)) as b:
        assert a.namelist() == b.namelist() and a.read("lot-report.json") == b.read("lot-report.json")
    assert nord.get(c.url + f"/lots/{LOT}?format=bundle", timeout=120).status_code == 200  # Nord sees one

    # The CLI writes a bundle that verifies too.
    out = tmp / "cli.zip"
    ok(cli("lot", "bundle", LOT, "--workshop", "Atelier Nord", "-o", str(out), db_url=db))
    assert _verify(out, pem).returncode == 0

    with zipfile.ZipFile(bundle) as z:
        certs = sorted(n for n in z.namelist() if n.startswith("certificates/") and n.endswith(".json"))
        one = certs[0]
        original = z.read(one)
    removed, altered, stranger = tmp / "removed.zip", tmp / "altered.zip", tmp / "stranger.zip"
    _rewrite(bundle, removed, drop={one})
    env = json.loads(original)
    env["payload"] = env["payload"][:-4] + ("AAAA" if not env["payload"].endswith("AAAA") else "BBBB")
    _rewrite(bundle, altered, drop={one}, add={one: json.dumps(env).encode()})
    key = StationKey.generate()
    foreign = dump_envelope(sign_envelope(erasure_payload(key, "STRANGER-1", lot=LOT), ERASURE_TYPE, key))
    _rewrite(bundle, stranger, add={f"certificates/{envelope_digest(foreign)}.json": foreign})
    for tampered in (removed, altered, stranger):
        r = _verify(tampered, pem)
        assert r.returncode == 6, (tampered.name, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr


def test_the_bundle_streams_each_stored_certificate_pdf_and_renders_and_stores_only_the_missing_ones(lot):
    """The certificate PDFs of a bundle are the stored ones (server_stub.certpdfs), byte for
    byte; one missing, or stored in another language than the lot's, is rendered in the
    lot's language and stored; the bundle still passes ``ardoise verify --bundle``."""
    from server_stub.certpdfs import Source, render

    c, tmp = lot
    db = c.db_url
    nord = login(c, "nord@example.org")
    if nord.get(c.url + f"/lots/{LOT}?format=bundle", timeout=120).status_code == 409:  # run on its own
        ok(cli("lot", "import", LOT, str(_write(tmp / "inventory.csv", INVENTORY_CSV)), db_url=db))
        ok(cli("lot", "close", LOT, "--reason", "closed for this test", db_url=db))
    engine = create_engine(db)
    with engine.connect() as conn:
        lot_certs = conn.execute(text(
            "SELECT c.id, c.digest, c.key_id, c.envelope, s.public_pem FROM certificates c "
            "JOIN stations s ON s.id = c.station_id WHERE c.lot = :lot ORDER BY c.id"), {"lot": LOT}).all()
    assert len(lot_certs) >= 3
    kept, missing, stale = lot_certs[:3]
    # A stored PDF that no request could render (its QR code names another host): if the
    # bundle serves these bytes, it serves what is stored.
    marked = render(Source(*kept), "fr", "https://stored.example.org")
    english = render(Source(*stale), "en", None)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM certificate_pdfs WHERE certificate_id IN (:a, :b, :c)"),
                     {"a": kept.id, "b": missing.id, "c": stale.id})
        for cid, language, pdf in ((kept.id, "fr", marked), (stale.id, "en", english)):
            conn.execute(text("INSERT INTO certificate_pdfs (certificate_id, language, pdf, rendered_at) "
                              "VALUES (:i, :l, :p, CURRENT_TIMESTAMP)"), {"i": cid, "l": language, "p": pdf})
    got = nord.get(c.url + f"/lots/{LOT}?format=bundle", timeout=120)
    assert got.status_code == 200, got.text
    bundle = tmp / "stored.zip"
    bundle.write_bytes(got.content)
    with zipfile.ZipFile(bundle) as z:
        served = {cid: z.read(f"certificates/{digest}.pdf") for cid, digest, *_ in (kept, missing, stale)}
    with engine.connect() as conn:
        now = {r[0]: (r[1], bytes(r[2])) for r in conn.execute(text(
            "SELECT certificate_id, language, pdf FROM certificate_pdfs WHERE certificate_id IN (:a, :b, :c)"),
            {"a": kept.id, "b": missing.id, "c": stale.id})}
    engine.dispose()
    assert served[kept.id] == marked  # the stored bytes, not a fresh render
    assert now[missing.id] == ("fr", served[missing.id])  # rendered once, in the lot's language, and kept
    assert now[stale.id] == ("fr", served[stale.id]) and served[stale.id] != english
    pem = tmp / "collector.pem"
    pem.write_text(c.api("GET", "/api/v1/receipt-key").json()["public_key"])
    r = _verify(bundle, pem)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_closed_lots_page_shows_its_signed_reports_reconciliation(lot):
    """Read from the report (one JSON document), not recomputed from every envelope: the
    same lines, states and destinations as the reconciliation they were signed from."""
    from server_stub import pages
    from server_stub.db import Database
    from server_stub.lots import service, wiring

    c, tmp = lot
    nord = login(c, "nord@example.org")
    if nord.get(c.url + f"/lots/{LOT}?format=bundle", timeout=120).status_code == 409:  # run on its own
        ok(cli("lot", "import", LOT, str(_write(tmp / "inventory.csv", INVENTORY_CSV)), db_url=c.db_url))
        ok(cli("lot", "close", LOT, "--reason", "closed for this test", db_url=c.db_url))
    db = Database(c.db_url)
    try:
        record = service.find_lot(db, LOT, "Atelier Nord")
        shown = pages._reconciled(db, [record])
        live = wiring.reconciliation(db, record)
    finally:
        db.dispose()
    assert [(x.declared.line, x.identifier, x.state, x.destination) for x in shown["lines"]] == \
        [(x.declared.line, x.identifier, str(x.state), None if x.destination is None else str(x.destination))
         for x in live.lines]
    assert shown["counts"]() == live.counts() and len(shown["extras"]) == len(live.extras)
    assert [x.identifier for x in shown["unresolved"]] == [x.identifier for x in live.unresolved]
    page = nord.get(c.url + f"/lots/{LOT}", timeout=30)
    assert page.status_code == 200 and 'id="lot-reconciliation"' in page.text and "M6LOST" in page.text


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_an_open_lot_has_no_bundle_and_a_bad_file_is_one_line(tmp_path):
    db = f"sqlite:///{tmp_path}/c.db"
    ok(cli("org", "create", "Atelier Nord", "--kind", "workshop", db_url=db))
    r = cli("lot", "create", "L1", "--workshop", "Atelier Nord", "--inventory", str(tmp_path / "none.csv"), db_url=db)
    assert r.returncode != 0 and "cannot read" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    bad = _write(tmp_path / "bad.csv", b"serial;model\nPF1AAAA;ThinkPad T480\n;ThinkPad T470\n")
    r = cli("lot", "create", "L1", "--workshop", "Atelier Nord", "--inventory", str(bad), db_url=db)
    assert r.returncode != 0 and "bad.csv" in r.stderr and "3" in r.stderr.splitlines()[0]  # the bad line, by number
    ok(cli("lot", "create", "L1", "--workshop", "Atelier Nord", db_url=db))  # the failed creates stored nothing
    r = cli("lot", "bundle", "L1", "-o", str(tmp_path / "l1.zip"), db_url=db)
    assert r.returncode != 0 and "is open" in r.stderr and not (tmp_path / "l1.zip").exists()
    r = cli("lot", "close", "L1", db_url=db)
    assert r.returncode != 0 and "no inventory" in r.stderr


def _closed_v2_lot(tmp_path, *extra, env=None):
    """LOT-N of the schema 2 fixture (a sanitized machine to reuse, one with no disk),
    inventoried and closed with ``extra`` options; the report payload and the CLI result."""
    import base64
    import shutil
    from pathlib import Path

    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "v2.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "collector-schema-v2.db", path)
    db = f"sqlite:///{path}"
    inv = tmp_path / "inv.csv"
    inv.write_text("serial;model\nPF1AAAA;ThinkPad T480\nM3NODISK;Chromebook 14\n", encoding="utf-8")
    ok(cli("lot", "import", "LOT-N", str(inv), db_url=db))
    key = str(tmp_path / "collector.pem")
    r = cli("lot", "close", "LOT-N", "--receipt-key", key, *extra, db_url=db, env=env)
    if r.returncode != 0:
        return None, r
    out = tmp_path / "lot.zip"
    ok(cli("lot", "bundle", "LOT-N", "--receipt-key", key, "-o", str(out), db_url=db))
    with zipfile.ZipFile(out) as z:
        payload = json.loads(base64.b64decode(json.loads(z.read("lot-report.json"))["payload"]))
        pdf = z.read("lot-report.pdf")
    return (payload, pdf), r


def _pdf_text(pdf: bytes) -> str:
    out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True).stdout
    return " ".join(out.decode().split())


SOURCE = "ADEME 2022, Évaluation de l'impact environnemental d'un ensemble de produits reconditionnés"


def test_the_co2_estimate_is_signed_and_printed_with_its_source_only_when_configured(tmp_path):
    for n, (bad, needle) in enumerate(((("--co2-factor", "27"), "needs its published source"),
                        (("--co2-source", SOURCE), "needs its factor"),
                        (("--co2-factor", "27.5", "--co2-source", SOURCE), "whole number"),
                        (("--co2-factor", "-3", "--co2-source", SOURCE), "between 1 and"))):
        got, r = _closed_v2_lot(tmp_path / f"bad{n}", *bad)
        assert got is None and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr

    (payload, pdf), _ = _closed_v2_lot(tmp_path / "none")
    assert payload["co2"] is None and "CO2" not in _pdf_text(pdf)

    # From the environment (as `serve` gets it), one reused laptop.
    (payload, pdf), r = _closed_v2_lot(tmp_path / "env", env={"ARDOISE_COLLECTOR_CO2_FACTOR": "27",
                                                            "ARDOISE_COLLECTOR_CO2_SOURCE": SOURCE})
    assert payload["reen"]["reused"] == 1
    assert payload["co2"] == {"kg_per_reused_device": 27, "source": SOURCE, "avoided_kg": 27}
    text = _pdf_text(pdf)
    assert "27 kg CO2e" in text and "estimation" in text and "ADEME 2022" in text
    assert "1 without a disk" in r.stderr
