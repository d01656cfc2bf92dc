"""A disk that is a hardware RAID volume: overwrite only, and the certificate says the
volume was wiped, not the physical drive."""

from __future__ import annotations

import certify_samples as S
from agent.certify.check import check_file
from agent.certify import issue_certificate
from agent.certify.keys import StationKey
from agent.records import Disk, Media, Transport
from agent.sanitize.policy import Capabilities, firmware_reachable, plan_from_capabilities


def volume() -> Disk:
    return Disk(path="/dev/sdb", name="sdb", transport=Transport.SAS, media=Media.HDD, model="QEMU HARDDISK",
                serial="RAID1", size_bytes=64 << 20, target=True, raid_volume="megaraid_sas at 0000:00:04.0")


def test_a_raid_volume_gets_no_firmware_command_only_the_overwrite():
    disk = volume()
    assert "RAID controller megaraid_sas at 0000:00:04.0" in firmware_reachable(disk)
    plan = plan_from_capabilities(disk, Capabilities())
    assert [s.method for s in plan.steps] == ["overwrite:zero"]
    assert "not the drives behind it" in plan.steps[0].reason


def test_the_certificate_says_it_was_wiped_through_the_raid_volume(tmp_path):
    key = StationKey.generate()
    result = S.overwrite_success()
    result.disk.raid_volume = "megaraid_sas at 0000:00:04.0"
    files = issue_certificate(result, None, S.config(), key, tmp_path)
    report = check_file(files.json_path, {key.key_id: key.public_key})
    assert report.valid, report.reasons
    media = report.payload["media"]
    assert media["raid_volume"] == {
        "controller": "megaraid_sas at 0000:00:04.0",
        "note": "wiped through the RAID volume the controller presents, not the physical drive",
    }


def test_the_pdf_says_it_too(tmp_path):
    import shutil
    import subprocess

    import pytest

    from agent.certify import envelope
    from agent.certify.payload import build_payload
    from agent.certify.pdf import render_certificate_pdf

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed")
    key = StationKey.generate()
    result = S.overwrite_success()
    result.disk.raid_volume = "megaraid_sas at 0000:00:04.0"
    p = build_payload(result, None, S.config(), key_id=key.key_id)
    digest = envelope.envelope_digest(envelope.sign_envelope(p, envelope.ERASURE_TYPE, key))
    f = tmp_path / "c.pdf"
    f.write_bytes(render_certificate_pdf(p, digest, key.key_id))
    text = " ".join(subprocess.run(["pdftotext", str(f), "-"], check=True, capture_output=True, text=True).stdout.split())
    assert "wiped through the RAID volume the controller presents, not the physical drive" in text
    assert "megaraid_sas at 0000:00:04.0" in text
