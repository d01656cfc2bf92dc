"""Labels: what a machine's label says (from its signed audit report and certificates),
that every line fits the label at every size and language, that ZPL cannot be injected
through firmware strings, and the routes with the audit page's access rule."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from datetime import datetime, timezone

import pytest

import certs
from harness import start_collector, stop_collector
from agent.certify.audit_report import build_audit_payload
from agent.certify.envelope import AUDIT_TYPE, sign_envelope
from agent.outcome import CategoryCode
from agent.records import (AuditReport as AuditRecord, BatteryInfo, CpuInfo, DmiInfo, MachineInfo, MemoryInfo)
from server_stub.errors import Malformed
from server_stub.labels import zpl as zpl_mod
from server_stub.labels.data import Drive, Erasure, LabelData, label_data
from server_stub.labels.pdf import PT, LEADING, label_lines, label_pdf, new_pdf
from server_stub.labels.sizes import SIZES
from server_stub.labels.zpl import label_zpl
from server_stub.models import AuditReport, Certificate
from server_stub.queries import StoredAudit

HOSTILE = "X^XZ^XA^FO0,0^FDpwned^FS~JR~JA\\&_5E\x1b[2J\nEnd"
LONG_MODEL = ("Hewlett-Packard HP EliteBook 840 G5 Healthcare Edition Notebook PC with Sure View "
              "Integrated Privacy Screen and Extended Battery")


def machine(**kw) -> MachineInfo:
    return MachineInfo(
        hostname="pc-042",
        dmi=DmiInfo(system_vendor=kw.get("vendor", "LENOVO"), system_product=kw.get("product", "20L5CTO1WW"),
                    system_version=kw.get("version", "ThinkPad T480"), system_serial=kw.get("serial", "PF1ABCDE")),
        cpu=CpuInfo(brand=kw.get("cpu", "Intel(R) Core(TM) i5-8350U CPU @ 1.70GHz")),
        memory=MemoryInfo(total_bytes=8_120_000_000, installed_bytes=8 << 30),
        batteries=kw.get("batteries", [BatteryInfo(name="BAT0", health_percent=81.5, design_capacity=57000.0)]))


def audit_payload(key_id: str = "k", *, report_id: str | None = None, lot: str = "LOT-A", **kw) -> dict:
    payload = build_audit_payload(AuditRecord(machine=machine(**kw), disks=[]), key_id=key_id, lot=lot,
                                  hostname="station-test")
    if report_id:
        payload["report_id"] = report_id
    return payload


def stored(payload: dict) -> StoredAudit:
    row = AuditReport(id=payload["report_id"], received_at=datetime(2026, 11, 27, 12, tzinfo=timezone.utc))
    return StoredAudit(row, None, payload, {}, None, [])


def cert_row(key, serial: str, *, outcome: str = "success", finished_at: str = "2026-11-27T10:00:15Z",
             size: int = 256_060_514_304, media_type: str = "ssd") -> Certificate:
    envelope = certs.erasure_envelope(key, serial, outcome=outcome, finished_at=finished_at, size=size)
    payload = certs.erasure_payload(key, serial, outcome=outcome, finished_at=finished_at, size=size)
    return Certificate(id=str(uuid.uuid4()), digest=uuid.uuid4().hex, serial=serial, size_bytes=size,
                       media_type=media_type, outcome=outcome, category=payload["sanitization"].get("category"),
                       completed_at=finished_at, envelope=envelope.decode())


@pytest.fixture(scope="module")
def key():
    from agent.certify.keys import StationKey
    return StationKey.generate()


def sample(**kw) -> LabelData:
    base = dict(audit_id="a1", url="https://collector.example/audits/a1", model="Lenovo ThinkPad T480",
                serial="PF1ABCDE", cpu="Intel Core i5-8350U", ram_bytes=8 << 30,
                drives=(Drive(256_060_514_304, "nvme"),), battery_percents=(81,), erasure=Erasure.ERASED,
                category=CategoryCode.PURGE, date="2026-11-27")
    return LabelData(**{**base, **kw})


# ----------------------------------------------------------------------------- what a label says

def test_label_reads_the_machine_from_its_signed_audit_report(key):
    d = label_data(stored(audit_payload()), [cert_row(key, "S1")], "https://collector.example/")
    assert d.model == "Lenovo ThinkPad T480"  # Lenovo's marketing name is its product_version
    assert d.cpu == "Intel Core i5-8350U"
    assert d.ram_bytes == 8 << 30  # the modules installed, not MemTotal
    assert d.battery_percents == (81,)  # 81.5 is signed as the string "81.5"
    assert d.drives == (Drive(256_060_514_304, "ssd"),)
    assert (d.erasure, d.category, d.date) == (Erasure.ERASED, CategoryCode.CLEAR, "2026-11-27")
    assert d.url == f"https://collector.example/audits/{d.audit_id}"


def test_hp_vendor_is_not_printed_twice_and_placeholders_are_unknown():
    p = audit_payload(vendor="Hewlett-Packard", product="HP EliteBook 840 G5", version="", serial="Default string")
    d = label_data(stored(p), [], "http://c")
    assert d.model == "HP EliteBook 840 G5"
    assert d.serial is None


def test_erasure_result_is_the_latest_certificate_of_each_drive(key):
    a = stored(audit_payload())
    failed = cert_row(key, "S1", outcome="failed", finished_at="2026-11-27T09:00:00Z")
    later_ok = cert_row(key, "S1", finished_at="2026-11-27T11:00:00Z")
    other_failed = cert_row(key, "S2", outcome="interrupted")
    assert label_data(a, [failed], "http://c").erasure == Erasure.NOT_ERASED
    assert label_data(a, [failed, later_ok], "http://c").erasure == Erasure.ERASED
    assert label_data(a, [later_ok, other_failed], "http://c").erasure == Erasure.NOT_ERASED
    assert label_data(a, [], "http://c").erasure == Erasure.NO_CERTIFICATE


def test_machine_without_battery_says_none_and_unmeasured_says_so():
    assert label_data(stored(audit_payload(batteries=[])), [], "http://c").battery_percents == ()
    assert label_data(stored(audit_payload(batteries=None)), [], "http://c").battery_percents is None


# ----------------------------------------------------------------------------- text fits

CASES = {
    "usual": sample(),
    "long": sample(model=LONG_MODEL, cpu="AMD Ryzen 7 PRO 2700U w/ Radeon Vega Mobile Gfx " * 2,
                   serial="S" * 80, drives=tuple(Drive(1_000_204_886_016, "hdd") for _ in range(6)),
                   battery_percents=(54, 90), erasure=Erasure.NOT_ERASED, category=None),
    "unbroken": sample(model="W" * 200, cpu=HOSTILE * 3),
    "empty": sample(model=None, cpu=None, ram_bytes=None, drives=(), battery_percents=None,
                    erasure=Erasure.NO_CERTIFICATE, category=None, date=None, serial=None),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("case", CASES)
def test_every_line_fits_inside_the_label(size, language, case):
    stock = SIZES[size]
    pdf, family = new_pdf(stock)
    lines = label_lines(pdf, family, CASES[case], stock, language)
    assert lines
    for ln in lines:
        pdf.set_font(family, "B" if ln.bold else "", ln.size)
        assert pdf.get_string_width(ln.text) <= ln.width + 1e-6, ln
        assert ln.x >= 0 and ln.x + ln.width <= stock.width_mm + 1e-6, ln
        assert ln.y >= 0 and ln.y + ln.size * PT * LEADING <= stock.height_mm + 1e-6, ln
        assert ln.size >= 5, ln  # still legible from a 203 dpi head


@pytest.mark.parametrize("size", SIZES)
def test_a_long_model_name_shrinks_or_is_cut_but_its_start_is_printed(size):
    stock = SIZES[size]
    pdf, family = new_pdf(stock)
    lines = label_lines(pdf, family, CASES["long"], stock, "en")
    title = " ".join(ln.text for ln in lines if ln.bold)
    assert title.startswith("Hewlett-Packard HP EliteBook 840")
    assert "…" in title  # too long for any label: cut visibly, not run over the edge


@pytest.mark.parametrize("size", SIZES)
def test_the_result_and_the_date_are_never_cut(size):
    stock = SIZES[size]
    pdf, family = new_pdf(stock)
    for language in ("fr", "en"):
        text = " ".join(ln.text for ln in label_lines(pdf, family, CASES["long"], stock, language))
        assert "2026-11-27" in text
        assert ("NON EFFACÉ" if language == "fr" else "NOT ERASED") in text


# ----------------------------------------------------------------------------- PDF

def pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page(?!s)", pdf))


@pytest.mark.parametrize("size", SIZES)
def test_pdf_has_one_page_per_label_at_the_label_size(size):
    stock = SIZES[size]
    data = label_pdf([CASES["usual"], CASES["long"], CASES["empty"]], stock, "fr")
    assert pages(data) == 3
    boxes = re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", data)
    assert boxes
    for w, h in boxes:
        assert abs(float(w) - stock.width_mm * 72 / 25.4) < 0.1 and abs(float(h) - stock.height_mm * 72 / 25.4) < 0.1


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="pdftotext (poppler-utils) not installed")
def test_pdf_reads_in_the_chosen_language(tmp_path):
    for language, expected in (("fr", ["Données effacées", "Mémoire : 8 Go", "256 Go NVMe", "Santé batterie : 81 %"]),
                               ("en", ["Data erased", "RAM: 8 GB", "256 GB NVMe", "Battery health: 81%"])):
        f = tmp_path / f"{language}.pdf"
        f.write_bytes(label_pdf([CASES["usual"]], SIZES["62mm"], language))
        text = " ".join(subprocess.run(["pdftotext", str(f), "-"], capture_output=True, text=True).stdout.split())
        for e in expected:
            assert " ".join(e.split()) in text.replace("\u00a0", " "), (language, e, text)


def test_unknown_language_is_refused():
    with pytest.raises(Malformed):
        label_pdf([CASES["usual"]], SIZES["62mm"], "de")


# ----------------------------------------------------------------------------- ZPL

def fields_of(zpl: str) -> list[str]:
    return re.findall(r"\^FD(.*?)\^FS", zpl, flags=re.S)


def unhex(field: str) -> str:
    return re.sub(rb"_([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), field.encode()).decode()


@pytest.mark.parametrize("size,width,length", [("4x6", 812, 1218), ("50x30", 400, 240)])
def test_zpl_is_one_format_per_label_sized_for_203_dpi(size, width, length):
    out = label_zpl([CASES["usual"], CASES["long"]], SIZES[size], "fr")
    assert out.count("^XA") == out.count("^XZ") == 2
    assert f"^PW{width}" in out and f"^LL{length}" in out and "^CI28" in out
    qr = re.findall(r"\^BQN,2,(\d+)\^FH_\^FDMA,(.*?)\^FS", out)
    assert [unhex(u) for _, u in qr] == ["https://collector.example/audits/a1"] * 2
    assert all(1 <= int(m) <= 10 for m, _ in qr)
    assert any("Données effacées" in unhex(f) for f in fields_of(out))


@pytest.mark.parametrize("size", ["4x6", "50x30"])
def test_firmware_strings_cannot_inject_zpl_commands(size):
    hostile = sample(model=HOSTILE, cpu="~JA" + HOSTILE, serial="^XZ~JR", url="https://c/audits/%5E~x^XZ")
    out = label_zpl([hostile], SIZES[size], "en")
    assert out.count("^XA") == 1 and out.count("^XZ") == 1
    assert "~" not in out  # no tilde command at all, wherever it stands
    for field in fields_of(out):
        assert "^" not in field and "\\" not in field and "\x1b" not in field and "\n" not in field
    shown = [unhex(f) for f in fields_of(out)]
    assert any(s.startswith("X^XZ^XA^FO0,0") for s in shown)  # printed as text, not obeyed
    assert "MA,https://c/audits/%5E~x^XZ" in shown


@pytest.mark.parametrize("size", ["4x6", "50x30"])
@pytest.mark.parametrize("language", ["fr", "en"])
def test_zpl_fields_stay_on_the_label_and_never_cut_the_result_or_the_date(size, language):
    width, length = {"4x6": (812, 1218), "50x30": (400, 240)}[size]
    for case, label in CASES.items():
        out = label_zpl([label], SIZES[size], language)
        shown = " ".join(unhex(f) for f in fields_of(out))
        if label.date:
            assert label.date in shown, (case, shown)
        expected = {Erasure.ERASED: ("Données effacées · NIST Purge", "Data erased · NIST Purge"),
                    Erasure.NOT_ERASED: ("NON EFFACÉ", "NOT ERASED"),
                    Erasure.NO_CERTIFICATE: ("Aucun certificat d'effacement", "No erasure certificate")}[label.erasure]
        assert expected[0 if language == "fr" else 1] in shown, (case, shown)
        for x, y, h, box, lines in re.findall(r"\^FO(\d+),(\d+)\^(?:FR\^)?A0N,(\d+),\d+\^FB(\d+),(\d+)", out):
            assert int(x) + int(box) <= width and int(y) + int(h) * int(lines) <= length, (case, x, y, h, box, lines)


def test_zpl_is_not_offered_for_brother_tape():
    with pytest.raises(Malformed, match="62mm"):
        label_zpl([CASES["usual"]], SIZES["62mm"], "fr")


def test_zpl_escape_hexes_every_special_byte():
    assert zpl_mod.escape("a^b~c_d\\e\nf é") == "a_5Eb_7Ec_5Fd_5Ce_0Af é"


# ----------------------------------------------------------------------------- routes

def signed_audit(key, report_id: str, lot: str = "LOT-A", **kw) -> bytes:
    return json.dumps(sign_envelope(audit_payload(key.key_id, report_id=report_id, lot=lot, **kw),
                                    AUDIT_TYPE, key)).encode()


def test_label_routes_answer_pdf_and_zpl_for_a_machine_and_a_lot(collector):
    sqlite_collector = collector  # on SQLite and on PostgreSQL
    station = sqlite_collector.enroll(lot="LOT-LABELS")
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for i, report_id in enumerate(ids):
        assert station.upload(signed_audit(station.key, report_id, lot="LOT-LABELS"),
                              path="/api/v1/audits").status_code == 201
        body = certs.erasure_envelope(station.key, f"LBL-{i}", lot="LOT-LABELS", audit_id=report_id, verdict="good")
        assert station.upload(body).status_code == 201
    r = sqlite_collector.api("GET", f"/audits/{ids[0]}/label?size=50x30&language=en")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf", r.text
    assert r.content.startswith(b"%PDF") and pages(r.content) == 1
    r = sqlite_collector.api("GET", f"/audits/{ids[0]}/label?size=4x6&format=zpl")
    assert r.status_code == 200 and r.text.count("^XA") == 1
    assert f"{sqlite_collector.url}/audits/{ids[0]}" in unhex(r.text)
    page = sqlite_collector.api("GET", f"/audits/{ids[0]}").text
    assert f'href="/audits/{ids[0]}/label?size=50x30"' in page and "format=zpl" in page
    assert 'href="/labels?lot=LOT-LABELS&amp;size=62mm"' in sqlite_collector.api("GET", "/lots/LOT-LABELS").text
    r = sqlite_collector.api("GET", "/labels?lot=LOT-LABELS&size=62mm")
    assert r.status_code == 200 and pages(r.content) == 3
    r = sqlite_collector.api("GET", "/labels?lot=LOT-LABELS&size=50x30&format=zpl")
    assert r.text.count("^XA") == 3


@pytest.mark.parametrize("query,status", [("size=A4", 400), ("format=png", 400), ("language=de", 400),
                                          ("size=62mm&format=zpl", 400)])
def test_bad_label_parameters_are_a_400(sqlite_collector, query, status):
    station = sqlite_collector.enroll()
    report_id = str(uuid.uuid4())
    station.upload(signed_audit(station.key, report_id), path="/api/v1/audits")
    assert sqlite_collector.api("GET", f"/audits/{report_id}/label?{query}").status_code == status


def test_unknown_machine_or_lot_is_a_404(sqlite_collector):
    assert sqlite_collector.api("GET", "/audits/nope/label").status_code == 404
    assert sqlite_collector.api("GET", "/labels?lot=NO-SUCH-LOT").status_code == 404
    assert sqlite_collector.api("GET", "/labels").status_code == 400


def test_labels_keep_the_audit_page_access_rule(tmp_path):
    c = start_collector(f"sqlite:///{tmp_path / 'c.db'}", tmp_path, extra_args=["--require-login"])
    try:
        station = c.enroll()
        report_id = str(uuid.uuid4())
        assert station.upload(signed_audit(station.key, report_id), path="/api/v1/audits").status_code == 201
        station.upload(certs.erasure_envelope(station.key, "ACL-1", audit_id=report_id, verdict="good"))
        for path in (f"/audits/{report_id}", f"/audits/{report_id}/label", "/labels?lot=LOT-A"):
            assert c.api("GET", path).status_code == 401, path
            assert c.admin("GET", path).status_code == 200, path
    finally:
        stop_collector(c)
