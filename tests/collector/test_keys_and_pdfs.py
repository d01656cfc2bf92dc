"""The collector publishes its station keys; `ardoise verify --collector` trusts them
(revocations by date); the verify page and API take certificate PDFs; the PDFs the
collector serves carry their envelope too."""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest
from pypdf import PdfReader

import certs
from agent.certify.envelope import ERASURE_TYPE, envelope_digest, sign_envelope
from agent.certify.keys import StationKey
from agent.certify.pdf import render_certificate_pdf
from agent.certify.pdf_check import check_pdf
from agent.certify.pdf_embed import ENVELOPE_NAME, Proof
from agent.cli import main


def certificate_pdf(key: StationKey, serial: str, issued_at: str = "2026-11-27T10:00:20Z") -> bytes:
    payload = certs.erasure_payload(key, serial)
    payload["issued_at"] = issued_at
    env = sign_envelope(payload, ERASURE_TYPE, key)
    return render_certificate_pdf(payload, envelope_digest(env), key.key_id, proof=Proof.of(env, key.public_pem))


@pytest.fixture
def no_local_key(tmp_path, monkeypatch):
    monkeypatch.setenv("ARDOISE_STATE_DIR", str(tmp_path / "empty-state"))


def test_keys_are_published_with_their_enrollment_and_revocation(sqlite_collector):
    c = sqlite_collector
    active, retired = c.enroll(), c.enroll()
    assert c.admin("POST", f"/api/v1/admin/stations/{retired.station_id}/revoke").status_code == 200
    r = c.api("GET", "/api/v1/keys")
    assert r.status_code == 200
    by_id = {k["key_id"]: k for k in r.json()["keys"]}
    a, b = by_id[active.key.key_id], by_id[retired.key.key_id]
    assert a["station_id"] == active.station_id and a["enrolled_at"] and a["revoked_at"] is None
    assert b["revoked_at"] and b["revoked_at"] >= b["enrolled_at"]
    pem = c.api("GET", a["pem_url"])
    assert pem.status_code == 200 and pem.text == active.key.public_pem
    assert c.api("GET", f"/keys/{'0' * 64}.pem").status_code == 404
    assert c.api("GET", "/keys/not-a-key.pem").status_code == 404


def test_verify_with_collector_accepts_a_genuine_pdf(sqlite_collector, tmp_path, no_local_key, capsys):
    st = sqlite_collector.enroll()
    f = tmp_path / "cert.pdf"
    f.write_bytes(certificate_pdf(st.key, "SER-COLLECTOR-PDF"))
    assert main(["verify", "--collector", sqlite_collector.url, str(f)]) == 0
    err = capsys.readouterr().err
    assert ": valid: success, Clear, of SER-COLLECTOR-PDF" in err and f"station {st.station_id}" in err and "in service" in err


def test_verify_with_collector_refuses_a_stranger_and_respects_revocation_dates(sqlite_collector, tmp_path,
                                                                                 no_local_key, capsys):
    c = sqlite_collector
    st = c.enroll()
    before = tmp_path / "before.pdf"
    before.write_bytes(certificate_pdf(st.key, "SER-BEFORE", issued_at="2026-01-01T00:00:00Z"))
    stranger = tmp_path / "stranger.pdf"
    stranger.write_bytes(certificate_pdf(StationKey.generate(), "SER-STRANGER"))
    assert c.admin("POST", f"/api/v1/admin/stations/{st.station_id}/revoke").status_code == 200
    after = tmp_path / "after.pdf"
    after.write_bytes(certificate_pdf(st.key, "SER-AFTER", issued_at="2099-01-01T00:00:00Z"))

    assert main(["verify", "--collector", c.url, str(before)]) == 0
    assert "revoked on" in capsys.readouterr().err  # still valid: signed before the revocation, and said so
    assert main(["verify", "--collector", c.url, str(after), str(stranger)]) == 6
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith(f"{after}: INVALID: revoked-key: ") and "2099-01-01T00:00:00Z, after that" in lines[0]
    assert lines[1].startswith(f"{stranger}: INVALID: pdf-attachment {ENVELOPE_NAME}: unknown-key")


def test_verify_page_and_api_take_a_pdf_and_refuse_an_altered_one(sqlite_collector):
    c = sqlite_collector
    st = c.enroll()
    pdf = certificate_pdf(st.key, "SER-PAGE-PDF")
    before = c.counts()
    page = c.api("POST", "/verify", files={"certificate": ("cert.pdf", pdf, "application/pdf")})
    assert page.status_code == 200 and "VALID: signed by station" in page.text and 'id="pdf-match"' in page.text
    i = pdf.index(b'"payload": "') + 400
    forged = pdf[:i] + (b"A" if pdf[i:i + 1] != b"A" else b"B") + pdf[i + 1:]
    bad = c.api("POST", "/verify", files={"certificate": ("cert.pdf", forged, "application/pdf")})
    assert bad.status_code == 200 and "INVALID" in bad.text and f"pdf-attachment {ENVELOPE_NAME}: bad-signature" in bad.text
    api = c.api("POST", "/api/v1/verify", data=pdf).json()
    assert api["valid"] is True and api["pdf"] is True and api["station_id"] == st.station_id
    assert c.counts() == before


def qr_of(pdf: bytes, tmp_path) -> str:
    """What a phone reads: the first page rendered to pixels, its QR code decoded by zbar."""
    (tmp_path / "q.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", "-singlefile", str(tmp_path / "q.pdf"),
                    str(tmp_path / "q")], check=True)
    out = subprocess.run(["zbarimg", "-q", "--raw", str(tmp_path / "q.png")], capture_output=True, text=True)
    return out.stdout.strip()


@pytest.mark.skipif(not (shutil.which("zbarimg") and shutil.which("pdftoppm")), reason="zbar-tools, poppler-utils")
def test_served_certificate_pdf_carries_its_envelope_and_its_qr_opens_its_page(sqlite_collector, tmp_path):
    c = sqlite_collector
    st = c.enroll()
    body = certs.erasure_envelope(st.key, "SER-SERVED-PDF")
    cid = st.upload(body).json()["id"]
    r = c.api("GET", f"/certificates/{cid}.pdf")
    assert r.status_code == 200
    attached = PdfReader(io.BytesIO(r.content)).attachments[ENVELOPE_NAME][0]
    assert attached == body  # as the station uploaded it
    checked = check_pdf(r.content, {st.key.key_id: st.key.public_key})
    assert checked.report.valid, checked.report.reasons
    assert qr_of(r.content, tmp_path) == f"{c.url}/certificates/{cid}"


def test_station_keys_stay_public_with_require_login(tmp_path):
    from harness import start_collector, stop_collector

    c = start_collector(f"sqlite:///{tmp_path}/c.db", tmp_path, extra_args=["--require-login"])
    try:
        st = c.enroll()
        assert c.api("GET", "/api/v1/certificates").status_code == 401
        keys = c.api("GET", "/api/v1/keys")
        assert keys.status_code == 200 and [k["key_id"] for k in keys.json()["keys"]] == [st.key.key_id]
        assert c.api("GET", f"/keys/{st.key.key_id}.pem").text == st.key.public_pem
    finally:
        stop_collector(c)
