"""A certificate PDF proves itself: its envelope and key are attached, `ardoise verify` checks
them and refuses a PDF whose attachment or page was altered, saying which."""

from __future__ import annotations

import io
import json
import socket

import pytest
from pypdf import PdfReader, PdfWriter

import certify_samples as S
from agent.certify import envelope, issue_certificate
from agent.certify.keys import StationKey
from agent.certify.payload import build_payload
from agent.certify.pdf import render_certificate_pdf
from agent.certify.pdf_check import ATTACHMENT, TEXT, check_pdf, read_pdf
from agent.certify.pdf_embed import ENVELOPE_NAME, KEY_NAME, Proof, grouped
from agent.cli import main


@pytest.fixture(scope="module")
def key():
    return StationKey.generate()


def make_pdf(result, key, **kw):
    p = build_payload(result, S.audit_for(result), S.config(), key_id=key.key_id)
    env = envelope.sign_envelope(p, envelope.ERASURE_TYPE, key)
    digest = envelope.envelope_digest(env)
    return p, env, render_certificate_pdf(p, digest, key.key_id, proof=Proof.of(env, key.public_pem), **kw)


def edit_page_text(pdf: bytes, old: bytes, new: bytes, count: int = -1) -> bytes:
    """What a forger does: rewrite the page's content stream, keep the attachments.
    Only in core-font PDFs is the drawn text plain bytes in the stream."""
    w = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    found = 0
    for page in w.pages:
        c = page.get_contents()
        data = c.get_data()
        found += data.count(old)
        c.set_data(data.replace(old, new, count))
        page.replace_contents(c)
    assert found, old
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def many_pages(pdf: bytes, n: int) -> bytes:
    w = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    while len(w.pages) < n:
        w.add_blank_page()
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def trusted(key):
    return {key.key_id: key.public_key}


@pytest.mark.parametrize("sample", [S.overwrite_success, S.purge_success, S.failed_with_media_errors, S.interrupted])
@pytest.mark.parametrize("fonts", ["dejavu", "core"])
def test_a_genuine_pdf_carries_its_envelope_and_key_and_passes(key, sample, fonts):
    kw = {"font_dirs": []} if fonts == "core" else {}
    p, env, pdf = make_pdf(sample(), key, **kw)
    contents = read_pdf(pdf)
    assert json.loads(contents.attachments[ENVELOPE_NAME]) == env
    assert contents.attachments[KEY_NAME].decode() == key.public_pem
    assert grouped(key.key_id) in contents.text  # the fingerprint a person compares
    checked = check_pdf(pdf, trusted(key))
    assert checked.report.valid, checked.report.reasons
    assert not checked.integrity_only and checked.report.payload == p


def test_altered_attachment_is_refused_naming_the_attachment(key):
    _, env, pdf = make_pdf(S.failed_with_media_errors(), key)
    # The attachment is stored uncompressed: flip one character of the signed payload in place.
    start = pdf.index(env["payload"][:40].encode())
    i = start + 200
    forged = pdf[:i] + (b"A" if pdf[i:i + 1] != b"A" else b"B") + pdf[i + 1:]
    checked = check_pdf(forged, trusted(key))
    assert not checked.report.valid
    assert checked.report.reason.startswith(f"{ATTACHMENT} {ENVELOPE_NAME}: bad-signature")


def test_a_pdf_without_its_envelope_is_refused(key):
    p = build_payload(S.overwrite_success(), None, S.config(), key_id=key.key_id)
    pdf = render_certificate_pdf(p, "d" * 64, key.key_id)
    checked = check_pdf(pdf, trusted(key))
    assert not checked.report.valid and checked.report.codes == [ATTACHMENT]
    assert ENVELOPE_NAME in checked.report.reason


@pytest.mark.parametrize("damage", [
    lambda pdf: b"%PDF-1.4\ngarbage",
    lambda pdf: pdf[:len(pdf) // 2],
    # pypdf raises NotImplementedError for a filter it does not know (found by fuzzing).
    lambda pdf: pdf.replace(b"/FlateDecode", b"/FlateDecodZ"),
    lambda pdf: many_pages(pdf, 21),
])
def test_a_damaged_pdf_is_refused_in_one_line_without_a_traceback(key, damage):
    _, _, pdf = make_pdf(S.overwrite_success(), key)
    checked = check_pdf(damage(pdf), trusted(key))
    assert not checked.report.valid and checked.report.reason.startswith(("not-pdf: ", "pdf-")), checked.report.reason


@pytest.mark.parametrize("old,new,field", [
    (b"WD-WCC4N1234567", b"WD-WCC4N7654321", "serial"),   # every copy of the serial
    (b"(SUCCESS", b"(FAILED ", "outcome"),                # the banner only
    (b"(success)", b"(failed)", "outcome"),               # the Outcome line only
    (b"(overwrite:zero)", b"(overwrite:dod3)", "method"),
    (b"WDC WD10EZEX-08W", b"WDC WD40EZEX-08W", "model"),
])
def test_altered_page_text_is_refused_naming_the_field(key, old, new, field):
    _, _, pdf = make_pdf(S.overwrite_success(), key, font_dirs=[])
    forged = edit_page_text(pdf, old, new)
    checked = check_pdf(forged, trusted(key))
    assert not checked.report.valid
    assert checked.report.codes[0] == TEXT
    assert checked.report.reason.startswith(f"{TEXT}: the page "), checked.report.reason
    assert f" {field} " in checked.report.reason, checked.report.reason


def test_one_edited_copy_of_the_serial_is_caught_by_its_label(key):
    _, _, pdf = make_pdf(S.overwrite_success(), key, font_dirs=[])
    forged = edit_page_text(pdf, b"WD-WCC4N1234567", b"WD-WCC4N7654321", count=1)
    checked = check_pdf(forged, trusted(key))
    assert not checked.report.valid and "serial 'WD-WCC4N7654321'" in checked.report.reason


def test_without_a_key_the_embedded_key_proves_integrity_only(key):
    _, _, pdf = make_pdf(S.overwrite_success(), key)
    checked = check_pdf(pdf, None)
    assert checked.report.valid and checked.integrity_only


def test_a_forger_who_attaches_their_own_key_gets_unknown_key(key):
    forger = StationKey.generate()
    _, _, pdf = make_pdf(S.overwrite_success(), forger)
    checked = check_pdf(pdf, trusted(key))
    assert not checked.report.valid
    assert "unknown-key" in checked.report.reason and forger.key_id[:16] in checked.report.reason


def test_a_swapped_key_attachment_is_refused(key):
    p = build_payload(S.overwrite_success(), None, S.config(), key_id=key.key_id)
    env = envelope.sign_envelope(p, envelope.ERASURE_TYPE, key)
    other = StationKey.generate()
    pdf = render_certificate_pdf(p, envelope.envelope_digest(env), key.key_id, proof=Proof.of(env, other.public_pem))
    checked = check_pdf(pdf, trusted(key))
    assert not checked.report.valid and checked.report.reason.startswith(f"{ATTACHMENT} {KEY_NAME}: ")


# --------------------------------------------------------------------------- the command line


@pytest.fixture
def issued(tmp_path, monkeypatch):
    state = tmp_path / "state"
    station = StationKey.generate()
    monkeypatch.setenv("ARDOISE_STATE_DIR", str(state))  # empty: no local station key
    files = issue_certificate(S.overwrite_success(), None, S.config(), station, tmp_path / "out")
    (tmp_path / "station.pem").write_text(station.public_pem)
    return files, tmp_path / "station.pem"


def test_cli_verifies_a_pdf_with_key(issued, capsys):
    files, pem = issued
    assert main(["verify", "--key", str(pem), str(files.pdf_path)]) == 0
    err = capsys.readouterr().err
    assert ": valid: success, Clear, of WD-WCC4N1234567" in err and "page matches" in err


def test_cli_without_key_says_integrity_only_and_exits_8(issued, capsys):
    files, _ = issued
    assert main(["verify", str(files.pdf_path)]) == 8
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "intact, integrity only" in line and "not who signed it" in line
    assert f"fingerprint {grouped(files.envelope['signatures'][0]['keyid'])}, as printed" in line


def test_cli_refuses_an_altered_pdf_in_one_line_with_exit_6(issued, tmp_path, capsys):
    files, pem = issued
    data = files.pdf_path.read_bytes()
    i = data.index(files.envelope["payload"][:40].encode()) + 300
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(data[:i] + (b"A" if data[i:i + 1] != b"A" else b"B") + data[i + 1:])
    assert main(["verify", "--key", str(pem), str(bad)]) == 6
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"{bad}: INVALID: {ATTACHMENT} {ENVELOPE_NAME}: bad-signature: "
                     f"signature by key {files.envelope['signatures'][0]['keyid'][:16]} does not match the payload "
                     "(changed or swapped)"]


def test_cli_with_an_unreachable_collector_says_so_in_one_line(issued, capsys):
    files, _ = issued
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["verify", "--collector", f"http://127.0.0.1:{port}", str(files.pdf_path)]) == 7
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"cannot fetch station keys from http://127.0.0.1:{port}: connection refused"), err
    assert "\n" not in err


# --------------------------------------------------------------------------- the QR code


@pytest.fixture
def qr_seen(monkeypatch):
    import segno

    seen: list[str] = []
    real = segno.make_qr
    monkeypatch.setattr(segno, "make_qr", lambda data, **kw: seen.append(data) or real(data, **kw))
    return seen


def test_qr_code_opens_the_records_page_at_the_configured_collector(tmp_path, key, qr_seen):
    from agent.config import CollectorConfig

    files = issue_certificate(S.overwrite_success(), None, S.config(collector=CollectorConfig(url="https://col.example/")),
                              key, tmp_path)
    assert qr_seen == [f"https://col.example/certificates/{files.id}"]


def test_qr_code_without_a_collector_holds_the_id_and_digest(tmp_path, key, qr_seen):
    files = issue_certificate(S.overwrite_success(), None, S.config(), key, tmp_path)
    assert qr_seen == [f"ardoise-certificate:{files.id};sha256={files.digest}"]


def test_a_long_value_broken_over_two_lines_is_not_taken_for_another():
    from agent.certify.pdf_check import text_problems

    p = {"certificate_id": "c", "media": {}, "sanitization": {"method": "overwrite:hmg-is5-enhanced",
                                                               "outcome": "success", "category": "Clear"}}
    assert text_problems("c d\nMethod overwrite:hmg-is5-\nenhanced", p, "d", None) == []
    assert "method 'overwrite:hmg-is5'" in text_problems("c d\nMethod overwrite:hmg-is5 done", p, "d", None)[0]


def test_a_tools_upper_case_words_in_the_record_are_not_a_second_verdict(key):
    r = S.overwrite_success()
    r.steps[0].notes = ["hdparm: SECURITY_ERASE FAILED: Input/output error, then overwritten"]
    p = build_payload(r, None, S.config(), key_id=key.key_id)
    env = envelope.sign_envelope(p, envelope.ERASURE_TYPE, key)
    from agent.certify.pdf_check import text_problems

    text = "SUCCESS - CLEAR\nStep 1: hdparm: SECURITY_ERASE FAILED: Input/output error, then overwritten\n"
    assert text_problems(text + p["certificate_id"] + " " + envelope.envelope_digest(env) + " WD-WCC4N1234567 "
                         + p["media"]["model"], p, envelope.envelope_digest(env), key.key_id) == []


def test_an_envelope_attached_twice_is_refused(key):
    _, _, pdf = make_pdf(S.overwrite_success(), key)
    w = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    w.add_attachment(ENVELOPE_NAME, b"{}")  # a viewer may show this one, a checker read the other
    out = io.BytesIO()
    w.write(out)
    checked = check_pdf(out.getvalue(), trusted(key))
    assert checked.report.codes == [ATTACHMENT] and "attached twice" in checked.report.reason


def test_an_oversized_envelope_attachment_is_refused_before_it_is_parsed(key):
    from agent.certify.pdf import _Doc
    from agent.certify.pdf_check import MAX_ATTACHMENT

    doc = _Doc()
    doc.add_page()
    # Compressed, a few kilobytes in the file: what a compression bomb looks like.
    doc.embed_file(bytes=b" " * (MAX_ATTACHMENT + 1), basename=ENVELOPE_NAME, compress=True)
    pdf = bytes(doc.output())
    assert len(pdf) < 20_000
    checked = check_pdf(pdf, trusted(key))
    assert checked.report.codes == [ATTACHMENT] and "not a certificate" in checked.report.reason
