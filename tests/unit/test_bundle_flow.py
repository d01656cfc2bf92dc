"""The issue's acceptance flow in one test per inventory flavour: import the inventory
(each encoding and separator, and XLSX), reconcile, close the lot, stream the bundle;
``ardoise verify --bundle`` passes, and the same bundle with one certificate removed, then
re-added altered, then with a stranger added, is refused each time with its reason."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from lot_samples import INVENTORY_CSV, sample_lot

from agent.certify.envelope import envelope_digest
from agent.certify.keys import StationKey
from agent.cli import main
from server_stub.lots.bundle import BundledAudit, BundledCertificate, write_bundle
from server_stub.lots.inventory import read_inventory
from server_stub.lots.reconcile import reconcile
from server_stub.lots.report import LotInfo, build_report, may_close, sign_report
from server_stub.lots.report_pdf import render_report_pdf


def _rows() -> list[list[str]]:
    return list(csv.reader(io.StringIO(INVENTORY_CSV.decode("cp1252"), newline=""), delimiter=";"))


def _flavour(name: str) -> bytes:
    rows = _rows()
    if name == "xlsx":
        openpyxl = pytest.importorskip("openpyxl")
        wb = openpyxl.Workbook()
        for r in rows:
            wb.active.append(r)
        buf = io.BytesIO()
        wb.save(buf)
        return buf.getvalue()
    sep, encoding = name.split("-", 1)
    buf = io.StringIO(newline="")
    csv.writer(buf, delimiter={"comma": ",", "semicolon": ";"}[sep], lineterminator="\r\n").writerows(rows)
    bom = encoding == "utf8bom"
    return (b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode("cp1252" if encoding == "cp1252" else "utf-8")


FLAVOURS = ["comma-utf8", "comma-utf8bom", "comma-cp1252", "semicolon-utf8", "semicolon-utf8bom", "semicolon-cp1252",
            "xlsx"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_import_reconcile_close_bundle_verify_then_tamper(flavour, tmp_path, capsys):
    lot = sample_lot()
    inv = read_inventory(_flavour(flavour))
    assert inv.problems == [] and len(inv.devices) == 7
    recon = reconcile(inv.devices, lot.certificate_facts(), lot.audit_facts(), lot.destructions)
    assert recon.counts() == {"sanitized": 3, "no_disk": 1, "destroyed": 2, "not_sanitized": 0, "missing": 1}
    collector = StationKey.generate()
    payload = build_report(LotInfo("REG-2026-12", "Région", "Atelier", "fr", "2026-11-20"), recon,
                           lot.certificate_facts(), lot.audit_facts(), collector_key_id=collector.key_id,
                           closed_at="2026-12-05T15:00:00Z", closed_by="Claire Martin",
                           closure=may_close(recon, is_manager=True, reason="M6LOST volé pendant le transport."))
    envelope = sign_report(payload, collector)
    good = tmp_path / "lot.zip"
    with open(good, "wb") as f:
        write_bundle(f, lot="REG-2026-12", donor="Région", language="fr", report_envelope=json.dumps(envelope).encode(),
                     report_pdf=render_report_pdf(payload, envelope_digest(envelope)), collector_key=collector,
                     station_keys={k.key_id: k.public_pem for k in lot.stations},
                     certificates=[BundledCertificate(envelope_digest(e), e, b"%PDF-1.4 stored") for _, e in lot.certificates],
                     audits=[BundledAudit(envelope_digest(e), e) for _, e in lot.audits])
    pem = tmp_path / "collector.pem"
    pem.write_text(collector.public_pem)

    def verify(path) -> tuple[int, str]:
        rc = main(["verify", "--bundle", str(path), "--collector-key", str(pem)])
        return rc, capsys.readouterr().err

    rc, err = verify(good)
    assert rc == 0 and "valid: lot REG-2026-12, 7 devices declared, 7 certificates" in err

    with zipfile.ZipFile(good) as z:
        members = {i.filename: z.read(i.filename) for i in z.infolist()}
    victim = sorted(n for n in members if n.startswith("certificates/") and n.endswith(".json"))[0]

    def rewrite(name: str, files: dict[str, bytes]):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as z:
            for n, data in files.items():
                z.writestr(n, data)
        return path

    removed = {n: d for n, d in members.items() if n != victim}
    rc, err = verify(rewrite("removed.zip", removed))
    assert rc == 6 and f"{victim} is missing (listed in the manifest)" in err

    altered = json.loads(members[victim])
    payload_bytes = altered["payload"]
    altered["signatures"][0]["sig"] = altered["signatures"][0]["sig"][::-1]
    rc, err = verify(rewrite("altered.zip", {**removed, victim: json.dumps(altered).encode()}))
    assert rc == 6 and f"{victim} was changed" in err
    assert payload_bytes == json.loads(members[victim])["payload"]

    stranger_payload = lot.add_certificate(lot.stations[0], "STRANGER")
    stranger = lot.certificates.pop()[1]
    name = f"certificates/{envelope_digest(stranger)}.json"
    rc, err = verify(rewrite("stranger.zip", {**members, name: stranger}))
    assert rc == 6 and f"{name} is not in the manifest (added)" in err and stranger_payload
