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
