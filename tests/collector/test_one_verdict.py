"""One verdict everywhere: every surface shows the destination the outcome table decides.

For each row of the table (docs/outcome.md) a real certificate is issued; the screen (TUI
and plain log), the certificate PDF, and the collector's dashboard, lot page, lot PDF and
CSV must all name the same destination. The expected destinations are written out here,
not computed, so a change of the table is a visible change of this test.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import uuid

import pytest
from rich.console import Console

import certify_samples as S
import certs
from agent import outcome, tui
from agent.certify import issue_certificate
from agent.run.pipeline import screen_decision

DESTINATION_TEXT = {
    "reuse": "ready for reuse",
    "reuse_after_check": "reuse after a check of the drive",
    "wipe_again": "put it back and wipe it again",
    "destroy": "destroy it physically",
    "recycle": "recycle the drive",
}

# (name, result factory, SMART verdict, expected destination, expected reason)
ROWS = [
    ("unknown-smart-success", S.overwrite_success, "unknown", "reuse_after_check", "no_health_data"),
    ("no-audit-success", S.overwrite_success, None, "reuse_after_check", "no_health_data"),
    ("good-smart-purge", S.purge_success, "good", "reuse", "healthy"),
    ("failing-smart-success", S.overwrite_success, "failing", "recycle", "drive_failing"),
    ("worn-smart-success", S.overwrite_success, "worn", "recycle", "drive_worn"),
    ("failed-media-errors", S.failed_with_media_errors, "good", "destroy", "media_errors"),
    ("failed-on-failing-drive", lambda: certs.sanitize_result("SER-F", outcome="failed"), "failing", "destroy",
     "drive_failing"),
    ("failed-wipe", lambda: certs.sanitize_result("SER-W", outcome="failed"), "good", "wipe_again", "wipe_failed"),
    ("interrupted", S.interrupted, "failing", "wipe_again", "interrupted"),
]


@pytest.fixture(scope="module")
def station(sqlite_collector):
    # One stick for many lots: enrolled without a lot (a lot token binds the stick to its lot).
    return sqlite_collector.enroll(lot=None)


def _issue(tmp_path, key, make, verdict, lot):
    result = make()
    result.disk.serial = f"SER-{uuid.uuid4().hex[:10]}"
    audit = S.audit_for(result, verdict) if verdict else None
    cfg = S.config()
    cfg.lot = lot
    files = issue_certificate(result, audit, cfg, key, tmp_path)
    return result, files


def _screen_text(view: tui.RunView) -> str:
    console = Console(width=120, height=40, record=True, file=io.StringIO(), color_system=None)
    console.print(tui.render(view))
    return console.export_text()


def _pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) not installed")
@pytest.mark.parametrize("name, make, verdict, destination, reason", ROWS, ids=[r[0] for r in ROWS])
def test_every_surface_shows_the_tables_destination(sqlite_collector, station, tmp_path, name, make, verdict,
                                                    destination, reason):
    collector, key = sqlite_collector, station.key
    lot = f"LOT-{name}"
    result, files = _issue(tmp_path, key, make, verdict, lot)
    text = DESTINATION_TEXT[destination]

    # The signed JSON carries the codes.
    d = files.payload["destination"]
    assert (d["code"], d["reason"]) == (destination, reason)

    # The screen: the run reads the decision back from the certificate it issued.
    decision = screen_decision(files.json_path, result, verdict)
    assert (decision.destination, decision.reason) == (destination, reason)
    # ... and without a certificate (it could not be written) it decides the same from the result.
    assert screen_decision(None, result, verdict).destination == destination
    view = tui.RunView()
    plain = io.StringIO()
    tui.LogDisplay(view, stream=plain)
    state = {"success": tui.PASSED, "interrupted": tui.INTERRUPTED}.get(str(result.outcome), tui.FAILED)
    view.add_disk(tui.DiskRow(result.disk.path, serial=result.disk.serial))
    view.update(result.disk.path, state=state, certificate_id=files.id, advice=outcome.advice(decision))
    view.finish()
    assert text in _screen_text(view)
    assert f"{state.upper()}: {text}" in plain.getvalue()

    # The certificate PDF.
    assert text in _pdf_text(files.pdf_path)

    # The collector: dashboard, lot page, lot PDF, CSV.
    r = station.upload(files.json_path.read_bytes())
    assert r.status_code == 201, r.text
    dashboard = collector.api("GET", "/").text
    attention = dashboard.split("Drives needing attention", 1)[1].split("Recent certificates", 1)[0]
    assert (result.disk.serial in attention) == (str(result.outcome) != "success")
    assert text in dashboard
    lot_page = collector.api("GET", f"/lots/{lot}").text
    assert f"{text}" in lot_page
    rows = list(csv.DictReader(io.StringIO(collector.api("GET", f"/lots/{lot}?format=csv").text)))
    assert [(row["destination"], row["destination_reason"]) for row in rows] == [(destination, reason)]
    assert rows[0]["advice"].startswith(text)
    lot_pdf = tmp_path / "lot.pdf"
    lot_pdf.write_bytes(collector.api("GET", f"/lots/{lot}?format=pdf").content)
    assert text[:28] in _pdf_text(lot_pdf)


def test_the_table_has_a_row_for_every_result_and_health():
    for result in outcome.Result:
        for health in outcome.Health:
            for errors in (False, True):
                d = outcome.decide(result, "Clear", None if health == "unknown" else str(health), errors)
                if result == outcome.Result.INTERRUPTED:
                    assert d.destination == outcome.Destination.WIPE_AGAIN  # never destroy
                if result != outcome.Result.SUCCESS:
                    assert d.category == outcome.CategoryCode.NONE and d.needs_attention


def test_every_code_has_its_words():
    for code in outcome.Destination:
        assert outcome.describe_destination(code) == DESTINATION_TEXT[code] or \
            outcome.describe_destination(code).startswith(DESTINATION_TEXT[code])
    for code in outcome.Reason:
        assert outcome.describe_reason(code)
    for code in outcome.MachineCode:
        assert outcome.describe_machine(code)


def _lot_cells(page: str) -> dict[str, str]:
    cells = {}
    for name in ("lot-drives", "lot-sanitized", "lot-attention", "lot-capacity"):
        cells[name] = page.split(f'id="{name}">', 1)[1].split("<", 1)[0]
    return cells


def test_a_later_success_of_the_same_drive_supersedes_its_failure(sqlite_collector, station):
    lot = "LOT-SUPERSEDE"
    serial = f"SER-AGAIN-{uuid.uuid4().hex[:6]}"
    failed = certs.erasure_envelope(station.key, serial, lot=lot, outcome="failed", finished_at="2026-11-27T10:00:15Z",
                                    size=10**9)
    assert station.upload(failed).status_code == 201
    board = sqlite_collector.api("GET", "/").text
    assert serial in board.split("Drives needing attention", 1)[1].split("Recent certificates", 1)[0]
    assert _lot_cells(sqlite_collector.api("GET", f"/lots/{lot}").text)["lot-attention"] == "1"

    ok = certs.erasure_envelope(station.key, serial, lot=lot, outcome="success", finished_at="2026-11-27T11:00:00Z",
                                size=10**9)
    assert station.upload(ok).status_code == 201
    board = sqlite_collector.api("GET", "/").text
    assert serial not in board.split("Drives needing attention", 1)[1].split("Recent certificates", 1)[0]
    cells = _lot_cells(sqlite_collector.api("GET", f"/lots/{lot}").text)
    assert cells == {"lot-drives": "1", "lot-sanitized": "1", "lot-attention": "0", "lot-capacity": "1.0\u00a0GB"}


def test_failed_and_interrupted_drives_are_not_counted_as_capacity_sanitized(sqlite_collector, station):
    lot = "LOT-CAPACITY"
    for i, result in enumerate(("success", "failed", "interrupted")):
        body = certs.erasure_envelope(station.key, f"SER-CAP-{i}-{uuid.uuid4().hex[:6]}", lot=lot, outcome=result,
                                      size=10**9)
        assert station.upload(body).status_code == 201
    cells = _lot_cells(sqlite_collector.api("GET", f"/lots/{lot}").text)
    assert cells == {"lot-drives": "3", "lot-sanitized": "1", "lot-attention": "2", "lot-capacity": "1.0\u00a0GB"}
    page = sqlite_collector.api("GET", f"/lots/{lot}").text
    assert "put it back and wipe it again: 2" in page


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) not installed")
def test_the_machine_report_links_its_certificates_by_audit_id_within_its_station(sqlite_collector, station, tmp_path):
    report_id = str(uuid.uuid4())
    shared = f"SER-SHARED-{uuid.uuid4().hex[:6]}"
    audit = station.upload(certs.audit_envelope(station.key, [shared], report_id=report_id), path="/api/v1/audits")
    assert audit.status_code == 201, audit.text
    mine = []
    # Three drives of this run: two without a serial (loop devices, some USB bridges), one
    # failed; none is in the audit's disk list, as loop and USB drives are not.
    for serial, result in ((None, "success"), (None, "success"), (f"SER-RUN-{uuid.uuid4().hex[:6]}", "failed")):
        p = certs.erasure_payload(station.key, serial, outcome=result, audit_id=report_id, verdict="good")
        assert p["audit_id"] == report_id
        body = certs.json.dumps(certs.sign_envelope(p, certs.ERASURE_TYPE, station.key)).encode()
        r = station.upload(body)
        assert r.status_code == 201, r.text
        mine.append(r.json()["id"])
    # Another station wiped a drive with the same serial as one the audit lists.
    other = sqlite_collector.enroll(lot=None)
    stranger = other.upload(certs.erasure_envelope(other.key, shared))
    assert stranger.status_code == 201

    page = sqlite_collector.api("GET", f"/audits/{report_id}").text
    for cid in mine:
        assert f"/certificates/{cid}" in page
    assert stranger.json()["id"] not in page
    assert "None received yet" not in page
    assert "attention: a drive is not sanitized" in page  # the failed drive turns the verdict

    pdf = tmp_path / "machine.pdf"
    pdf.write_bytes(sqlite_collector.api("GET", f"/audits/{report_id}.pdf").content)
    text = _pdf_text(pdf)
    # The audit's own drive has no certificate of this station: counted, not sanitized.
    assert "2 of 4 drives sanitized" in text and "No drive certificates" not in text
    assert "Drives without a certificate attached to this report: 1" in text
    assert stranger.json()["id"] not in text
    assert "attention: a drive is not sanitized" in text

    cert_page = sqlite_collector.api("GET", f"/certificates/{mine[0]}").text
    assert f"/audits/{report_id}" in cert_page
    assert f"/audits/{report_id}" not in sqlite_collector.api("GET", f"/certificates/{stranger.json()['id']}").text


def test_the_search_api_gives_each_certificate_its_destination_codes(sqlite_collector, station):
    serial = f"SER-API-{uuid.uuid4().hex[:6]}"
    assert station.upload(certs.erasure_envelope(station.key, serial, outcome="interrupted")).status_code == 201
    (item,) = sqlite_collector.api("GET", "/api/v1/certificates", params={"serial": serial}).json()["items"]
    assert (item["destination"], item["destination_reason"]) == ("wipe_again", "interrupted")


def test_a_drive_known_by_its_wwn_alone_is_superseded_too(sqlite_collector, station):
    wwn = f"0x5000c500{uuid.uuid4().hex[:8]}"
    failed = certs.erasure_envelope(station.key, None, outcome="interrupted", wwn=wwn, lot="LOT-WWN")
    r = station.upload(failed)
    assert r.status_code == 201, r.text
    board = sqlite_collector.api("GET", "/").text
    assert r.json()["id"] in board.split("Drives needing attention", 1)[1].split("Recent certificates", 1)[0]
    ok = certs.erasure_envelope(station.key, None, wwn=wwn, finished_at="2026-11-27T12:00:00Z", lot="LOT-WWN")
    assert station.upload(ok).status_code == 201
    board = sqlite_collector.api("GET", "/").text
    assert r.json()["id"] not in board.split("Drives needing attention", 1)[1].split("Recent certificates", 1)[0]
    assert _lot_cells(sqlite_collector.api("GET", "/lots/LOT-WWN").text)["lot-attention"] == "0"
