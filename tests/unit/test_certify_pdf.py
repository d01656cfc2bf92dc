"""The PDF is real text a reader (and pdftotext) can find the facts in."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import certify_samples as S
from agent.certify import envelope
from agent.certify.keys import StationKey
from agent.certify.payload import build_payload
from agent.certify.pdf import qr_text, render_certificate_pdf, render_system_pdf

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) not installed")


def text_of(pdf: bytes, tmp_path) -> str:
    f = tmp_path / "c.pdf"
    f.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(f), "-"], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def key():
    return StationKey.generate()


def render(result, key, **kw):
    p = build_payload(result, S.audit_for(result), S.config(), key_id=key.key_id)
    env = envelope.sign_envelope(p, envelope.ERASURE_TYPE, key)
    digest = envelope.envelope_digest(env)
    return p, digest, render_certificate_pdf(p, digest, key.key_id, **kw)


def test_serial_method_result_digest_and_key_id_are_extractable_text(tmp_path, key):
    p, digest, pdf = render(S.overwrite_success(), key)
    text = text_of(pdf, tmp_path)
    for needle in ("WD-WCC4N1234567", "overwrite:zero", "SUCCESS - CLEAR", digest, key.key_id, p["certificate_id"],
                   "Atelier Réemploi", "LOT-2026-11", "Camille Martin", "signed JSON certificate", "ThinkPad T480"):
        assert needle in text, needle


def test_failed_certificate_says_failed_not_success(tmp_path, key):
    _, digest, pdf = render(S.failed_with_media_errors(), key)
    text = text_of(pdf, tmp_path)
    assert "FAILED" in text and "SUCCESS" not in text
    assert "1000-1016" in text and digest in text


def test_without_dejavu_the_core_font_is_used_and_text_is_reduced_to_latin1(tmp_path, key):
    r = S.overwrite_success()
    cfg = S.config()
    cfg.operator.name = "Łukasz Müller"
    p = build_payload(r, None, cfg, key_id=key.key_id)
    pdf = render_certificate_pdf(p, "d" * 64, key.key_id, font_dirs=[])
    text = text_of(pdf, tmp_path)
    assert "?ukasz Müller" in text
    assert "WD-WCC4N1234567" in text and "d" * 64 in text


def test_qr_code_names_the_certificate_and_its_digest():
    assert qr_text("0b6b2f5e-0000-4000-8000-000000000000", "ab" * 32) == (
        "ardoise-certificate:0b6b2f5e-0000-4000-8000-000000000000;sha256=" + "ab" * 32
    )


def test_system_pdf_lists_every_drive_and_the_hardware_report(tmp_path, key):
    from agent.certify import build_audit_payload

    results = [S.overwrite_success(), S.purge_success(), S.interrupted()]
    payloads = [build_payload(r, S.audit_for(r), S.config(), key_id=key.key_id) for r in results]
    audit = build_audit_payload(S.audit_for(results[0]), key_id=key.key_id, lot="LOT-2026-11")
    text = text_of(render_system_pdf(audit, payloads), tmp_path)
    assert "2 of 3 drives sanitized" in text
    for r in results:
        assert r.disk.serial in text
    assert "ThinkPad T480" in text and "PF1ABCDE" in text
    assert "INTERRUPTED" in text


# --------------------------------------------------------------------------- one page for a reader


def page_text(pdf: bytes, tmp_path, first: int, last: int | None = None) -> str:
    f = tmp_path / "p.pdf"
    f.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", "-f", str(first), "-l", str(last or first), str(f), "-"],
                          check=True, capture_output=True, text=True).stdout


def pages(pdf: bytes, tmp_path) -> int:
    f = tmp_path / "n.pdf"
    f.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(f)], check=True, capture_output=True, text=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def test_a_success_certificate_says_everything_that_matters_on_its_first_page(tmp_path, key):
    p, digest, pdf = render(S.overwrite_success(), key)
    assert pages(pdf, tmp_path) == 2  # the first page, then the annex
    first = page_text(pdf, tmp_path, 1)
    for needle in ("SUCCESS - CLEAR",  # result
                   "WD-WCC4N1234567", "WDC WD10EZEX-08W", "1.00 TB",  # drive
                   "overwrite:zero", "Clear (Overwrite)",  # method and category
                   "Verification", "passed: 100 GB read back",  # verification
                   "Recommended destination", p["destination"]["details"],  # destination
                   p["certificate_id"], digest, key.key_id,  # signature
                   "I attest that", "Camille Martin", "Technician signature"):  # attestation
        assert needle in first, needle
    assert "Annex" in page_text(pdf, tmp_path, 2)


def test_a_missing_value_is_said_once_per_section_with_its_reason_in_the_annex(tmp_path, key):
    p, _, pdf = render(S.overwrite_success(serial=None), key)
    first = page_text(pdf, tmp_path, 1)
    assert "unknown" not in first.replace("unknown (/dev/sdb)", "")  # no "unknown" per line
    assert first.count("Not recorded") <= 2, first
    assert "the drive does not report" not in first  # reasons wait for the annex
    annex = page_text(pdf, tmp_path, 2, 3)
    assert "Values not recorded, and why" in annex
    assert p["media"]["serial_reason"] in annex.replace("\n", " ") or "Serial number" in annex


def test_a_failed_certificate_puts_the_real_reason_up_front(tmp_path, key):
    _, _, pdf = render(S.out_of_space(), key)
    first = page_text(pdf, tmp_path, 1)
    assert "Not sanitized: stopped at 16.8 MB of 67.1 MB: no space left on device" in first
    assert first.index("Not sanitized") < first.index("Drive\n")
    # Not the old "Error LBA ranges none" as if that were the reason: no sector was unreadable.
    assert "Unreadable sectors (LBA ranges) none" in " ".join(page_text(pdf, tmp_path, 2, 3).split())


def test_a_failed_wipe_with_bad_sectors_names_them_in_its_reason(tmp_path, key):
    _, _, pdf = render(S.failed_with_media_errors(), key)
    first = " ".join(page_text(pdf, tmp_path, 1).split())
    assert "Not sanitized: stopped at 999 MB of 1.00 TB: 2 unreadable ranges after retries (unreadable sectors: LBA 1000-1016, 90000-90008)" in first


# --------------------------------------------------------------------------- the machine report


def machine_report(key, certificates):
    from agent.certify import build_audit_payload

    r = S.overwrite_success()
    audit = build_audit_payload(S.machine_audit(r), S.config(), key_id=key.key_id)
    return audit, render_system_pdf(audit, certificates)


def test_machine_report_is_titled_with_the_configured_organization_even_without_certificates(tmp_path, key):
    audit, pdf = machine_report(key, [])
    assert audit["organization"] == "Atelier Réemploi"
    text = page_text(pdf, tmp_path, 1)
    assert "Atelier Réemploi" in text and "Organization not set" not in text
    # The audit's drive is listed; without its certificate the report does not claim it unsanitized.
    assert "WD-WCC4N1234567" in text and "no certificate attached" in text
    assert "Drives without a certificate attached to this report: 1." in " ".join(text.split())


def test_machine_report_opens_with_a_summary_in_units_a_person_reads(tmp_path, key):
    r = S.overwrite_success()
    cert = build_payload(r, S.audit_for(r), S.config(), key_id=key.key_id)
    _, pdf = machine_report(key, [cert])
    text = page_text(pdf, tmp_path, 1)
    summary = text[text.index("Summary"):text.index("Drives")]
    for needle in ("LENOVO ThinkPad T480, serial PF1ABCDE", "2.6 GHz", "4 cores, 8 threads", "23.5 GiB",
                   "82 % of its design capacity", "Machine verdict"):
        assert needle in summary, needle
    drives = text[text.index("Drives"):]
    assert "WD-WCC4N1234567" in drives and "SUCCESS - Clear" in drives and cert["certificate_id"][:18] in drives
    # The hardware details carry units, not raw keys and numbers.
    for raw in ("advertised_hz", "total_bytes", "2596126000", "25275990016", "fpu"):
        assert raw not in text, raw
