"""The sample in docs/ stays a valid certificate, and the openssl recipe of docs/certificate.md works."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.certify import envelope
from agent.certify.check import check_file
from agent.certify.keys import load_public_keys

DOCS = Path(__file__).parents[2] / "docs"
CERT, PUB = DOCS / "sample-certificate.json", DOCS / "sample-station.pub.pem"


def test_the_sample_certificate_verifies_with_the_sample_station_key():
    report = check_file(CERT, load_public_keys(PUB))
    assert report.valid, report.reasons
    assert report.payload["sanitization"]["outcome"] == "success"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_alone_verifies_the_signature_and_the_key_id(tmp_path):
    env = json.loads(CERT.read_text())
    body = base64.b64decode(env["payload"])
    (tmp_path / "pae.bin").write_bytes(envelope.pae(env["payloadType"], body))
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(env["signatures"][0]["sig"]))
    ok = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(PUB), "-rawin",
                         "-in", str(tmp_path / "pae.bin"), "-sigfile", str(tmp_path / "sig.bin")], capture_output=True, text=True)
    assert ok.returncode == 0 and "Signature Verified Successfully" in ok.stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(PUB), "-outform", "DER"], capture_output=True, check=True).stdout
    assert hashlib.sha256(der[-32:]).hexdigest() == env["signatures"][0]["keyid"]

    (tmp_path / "pae.bin").write_bytes(envelope.pae(env["payloadType"], body.replace(b'"success"', b'"failed"')))
    forged = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(PUB), "-rawin",
                             "-in", str(tmp_path / "pae.bin"), "-sigfile", str(tmp_path / "sig.bin")], capture_output=True, text=True)
    assert forged.returncode != 0


def test_the_sample_issued_before_the_destination_codes_reads_through_the_outcome_table():
    from agent import outcome

    payload = check_file(CERT, load_public_keys(PUB)).payload
    assert "code" not in payload["destination"]
    d = outcome.decision_of(payload)
    assert (d.destination, d.reason) == ("reuse_after_check", "no_health_data")
def test_the_sample_pdf_carries_the_sample_certificate_and_checks_with_the_sample_key():
    from agent.certify.pdf_check import check_pdf, read_pdf
    from agent.certify.pdf_embed import ENVELOPE_NAME, KEY_NAME

    pdf = (DOCS / "sample-certificate.pdf").read_bytes()
    attached = read_pdf(pdf).attachments
    assert attached[ENVELOPE_NAME] == CERT.read_bytes() and attached[KEY_NAME] == PUB.read_bytes()
    checked = check_pdf(pdf, load_public_keys(PUB))
    assert checked.report.valid, checked.report.reasons
