"""Schema 4: each certificate's destination, reason and WWN are stored at upload (and
backfilled by the upgrade from schema 2), so that the lists of a 5,000-drive lot read
columns instead of decoding every envelope."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import create_engine, inspect, text

import certs
from harness import fixture_database, start_collector, stop_collector
from hub import cli, ok

from agent import outcome
from server_stub import queries
from server_stub.db import Database
from server_stub.models import SCHEMA_VERSION

TABLES = ("certificates", "audit_reports", "audit_disks", "stations", "enrollment_tokens", "organisations", "lots",
          "audit_events")


def _payload(envelope: str) -> dict | None:
    try:
        return json.loads(base64.b64decode(json.loads(envelope)["payload"]))
    except (ValueError, KeyError, TypeError):
        return None


def _expected(envelope: str, outcome_: str | None, category: str | None) -> tuple:
    """What the outcome table says of a stored row, computed here from the payload itself."""
    p = _payload(envelope)
    d = outcome.decision_of(p) if p else outcome.decide(outcome_, category)
    wwn = ((p or {}).get("media") or {}).get("wwn")
    return str(d.destination), str(d.reason), wwn or None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def schema_2_db(request, tmp_path):
    """A database of schema 2. collector-schema-v2-verdicts.db was made by the collector of commit
    885a658 (schema 2): two stations, lots LOT-A (French) and LOT-EN (English, with a
    donor), seven uploaded certificates (success, with a WWN, failed, interrupted, a worn
    drive, two in LOT-EN), an audit report, and one legacy row whose envelope cannot be
    read (its payload is not base64). On PostgreSQL, its tables and rows are copied into a
    fresh schema."""
    yield from fixture_database(request, tmp_path, "collector-schema-v2-verdicts.db")


def test_a_schema_2_database_upgrades_with_every_certificates_codes_and_loses_nothing(schema_2_db, tmp_path):
    db = schema_2_db
    engine = create_engine(db)
    with engine.connect() as conn:
        columns = {t: ", ".join(conn.execute(text(f"SELECT * FROM {t} LIMIT 0")).keys()) for t in TABLES}

    def snapshot() -> dict:
        with engine.connect() as conn:
            return {t: sorted(tuple(str(v) for v in r) for r in conn.execute(text(f"SELECT {columns[t]} FROM {t}")))
                    for t in TABLES}

    before = snapshot()
    assert len(before["certificates"]) == 8 and len(before["lots"]) == 2
    r = ok(cli("migrate", db_url=db))
    assert f"schema version {SCHEMA_VERSION}" in r.stderr
    assert snapshot() == before  # every row kept, every column of schema 2 unchanged
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT serial, envelope, outcome, category, destination, destination_reason, wwn "
                                 "FROM certificates")).all()
        versions = [v for (v,) in conn.execute(text("SELECT version FROM schema_version ORDER BY version"))]
        pdfs = conn.execute(text("SELECT count(*) FROM certificate_pdfs")).scalar()
    engine.dispose()
    assert versions == list(range(2, SCHEMA_VERSION + 1))  # made at 2, then each step once
    assert pdfs == 0  # rendered when first needed, not during the upgrade
    stored = {r.serial: (r.destination, r.destination_reason, r.wwn) for r in rows}
    for r in rows:
        assert stored[r.serial] == _expected(r.envelope, r.outcome, r.category), r.serial
    # The fixture's cases, spelled out: the table's codes, and the WWN kept.
    assert stored["V2-WWN"] == ("reuse_after_check", "no_health_data", "naa.5000c500a1b2c3d4")
    assert stored["V2-FAILED"][:2] == ("wipe_again", "wipe_failed")
    assert stored["V2-INTERRUPTED"][:2] == ("wipe_again", "interrupted")
    assert stored["V2-WORN"][:2] == ("recycle", "drive_worn")
    assert stored["V2-LEGACY"] == ("reuse_after_check", "no_health_data", None)  # from its columns
    assert ok(cli("migrate", db_url=db))  # a second run changes nothing


def test_the_lot_list_reads_the_stored_codes_and_decodes_no_envelope(schema_2_db, monkeypatch):
    ok(cli("migrate", db_url=schema_2_db))
    db = Database(schema_2_db)
    try:
        decoded = queries.lot_summary(db, "LOT-A")
        with db.engine.connect() as conn:  # the lists do not load envelopes: read them here
            want = {r.serial: _expected(r.envelope, r.outcome, r.category)[:2] for r in conn.execute(
                text("SELECT serial, envelope, outcome, category FROM certificates WHERE lot = 'LOT-A'"))}

        def no_decoding(c):
            raise AssertionError(f"decoded the envelope of {c.serial}")

        monkeypatch.setattr(queries, "_decoded_facts", no_decoding)
        queries._FACTS.clear()
        s = queries.lot_summary(db, "LOT-A")
        assert {c.serial: (str(queries.decision(c).destination), str(queries.decision(c).reason))
                for c, _ in s.certificates} == want
        assert s.destinations == decoded.destinations and s.succeeded == decoded.succeeded
        # Nor were the envelopes read from the database (6 kB each).
        assert all("envelope" in inspect(c).unloaded for c, _ in s.certificates)
        assert ("wwn", "naa.5000c500a1b2c3d4") in queries.drive_keys(
            next(c for c, _ in s.certificates if c.serial == "V2-WWN"))
    finally:
        db.dispose()


def test_a_row_without_stored_codes_is_still_decided_from_its_envelope(schema_2_db):
    """A row the backfill could not fill (or a future code this collector does not know)
    falls back to the payload, never to a wrong code."""
    ok(cli("migrate", db_url=schema_2_db))
    engine = create_engine(schema_2_db)
    with engine.begin() as conn:
        conn.execute(text("UPDATE certificates SET destination = NULL WHERE serial = 'V2-WORN'"))
        conn.execute(text("UPDATE certificates SET destination = 'teleport' WHERE serial = 'V2-FAILED'"))
    engine.dispose()
    db = Database(schema_2_db)
    try:
        queries._FACTS.clear()
        by_serial = {c.serial: queries.decision(c) for c, _ in queries.lot_summary(db, "LOT-A").certificates}
        assert (by_serial["V2-WORN"].destination, by_serial["V2-WORN"].reason) == ("recycle", "drive_worn")
        assert (by_serial["V2-FAILED"].destination, by_serial["V2-FAILED"].reason) == ("wipe_again", "wipe_failed")
    finally:
        db.dispose()


def test_an_upload_stores_the_codes_its_payload_decides(tmp_path):
    c = start_collector(f"sqlite:///{tmp_path}/c.db", tmp_path)
    try:
        st = c.enroll(lot="LOT-U")
        for serial, kw in (("U-OK", {"wwn": "naa.5000000000000001"}), ("U-FAIL", {"outcome": "failed"}),
                           ("U-WORN", {"verdict": "warning", "audit_id": "0b9f3b0e-3c4e-4d8a-9a51-5f6c1f0e2a11"})):
            assert st.upload(certs.erasure_envelope(st.key, serial, lot="LOT-U", **kw)).status_code == 201
    finally:
        stop_collector(c)
    engine = create_engine(c.db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT serial, envelope, outcome, category, destination, destination_reason, wwn "
                                 "FROM certificates")).all()
    engine.dispose()
    got = {r.serial: (r.destination, r.destination_reason, r.wwn) for r in rows}
    assert got == {r.serial: _expected(r.envelope, r.outcome, r.category) for r in rows}
    assert got["U-WORN"][:2] == ("recycle", "drive_worn") and got["U-OK"][2] == "naa.5000000000000001"


def _pdf_title(pdf: bytes) -> str:
    import io

    from pypdf import PdfReader

    return PdfReader(io.BytesIO(pdf)).metadata.title


def test_an_uploaded_certificates_pdf_is_rendered_in_the_background_in_its_lots_language(tmp_path):
    """Off the upload's path: the upload answers first, the PDF is rendered once the
    collector is idle, in the language of the certificate's lot (not the reader's, not the
    default), and it is the self-verifying PDF ``ardoise verify`` accepts."""
    import subprocess
    import sys
    import time

    db = f"sqlite:///{tmp_path}/c.db"
    ok(cli("migrate", db_url=db))
    ok(cli("lot", "create", "LOT-EN", "--workshop", "Default workshop", "--language", "en", db_url=db))
    c = start_collector(db, tmp_path)
    try:
        st = c.enroll(lot=None)
        ids = [st.upload(certs.erasure_envelope(st.key, serial, lot=lot)).json()["id"]
               for serial, lot in (("P-EN", "LOT-EN"), ("P-FR", "LOT-NO-RECORD"))]
        engine = create_engine(db)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                rows = {r[0]: (r[1], bytes(r[2])) for r in conn.execute(
                    text("SELECT certificate_id, language, pdf FROM certificate_pdfs"))}
            if len(rows) == 2:
                break
            time.sleep(0.5)
        engine.dispose()
    finally:
        stop_collector(c)
    assert set(rows) == set(ids), "the background renderer did not store both PDFs within 60 s"
    (en_lang, en_pdf), (fr_lang, fr_pdf) = rows[ids[0]], rows[ids[1]]
    assert en_lang == "en" and _pdf_title(en_pdf).startswith("Certificate of sanitization")
    assert fr_lang == "fr" and _pdf_title(fr_pdf).startswith("Certificat d'effacement")  # a lot without a record
    key = tmp_path / "station.pem"
    key.write_text(st.key.public_pem)
    pdf = tmp_path / "stored.pdf"
    pdf.write_bytes(en_pdf)
    r = subprocess.run([sys.executable, "-m", "agent", "verify", "--key", str(key), str(pdf)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "valid" in r.stderr, r.stdout + r.stderr
