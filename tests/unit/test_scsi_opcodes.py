"""SCSI SANITIZE detection (sg_opcodes) and polling (sg_requests), on recorded outputs."""

import pytest

from agent.commands import CommandLog
from agent.errors import SanitizeError, ToolTimeout
from agent.sanitize import scsi
from fakes import FIXTURES


def opcodes(name):
    return scsi.parse_opcodes((FIXTURES / "sg3" / name).read_text())


@pytest.fixture
def instant(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(scsi, "clock", lambda: now[0])
    monkeypatch.setattr(scsi, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    return now


def test_sas_ssd_offers_every_sanitize_service_action():
    caps = opcodes("sg_opcodes-sas-ssd-sanitize.txt")
    assert caps.reported and caps.crypto and caps.block and caps.overwrite


def test_sas_hdd_offers_only_overwrite():
    caps = opcodes("sg_opcodes-sas-hdd-overwrite-only.txt")
    assert (caps.crypto, caps.block, caps.overwrite) == (False, False, True)


def test_drive_without_sanitize_opcode():
    caps = opcodes("sg_opcodes-no-sanitize.txt")
    assert caps.reported and not (caps.crypto or caps.block or caps.overwrite)


def test_unanswered_report_supported_opcodes_means_unknown(fake_commands):
    fake_commands.add(["sg_opcodes", "/dev/sdb"], returncode=5, stderr="Report supported operation codes: Illegal request, Invalid opcode\n")
    assert scsi.read_caps("/dev/sdb").reported is False


def test_crypto_sanitize_is_polled_until_no_progress(fake_commands, instant):
    fake_commands.add(["sg_sanitize", "--quick", "--early", "--crypto", "/dev/sdb"])
    fake_commands.add(["sg_requests", "--progress", "/dev/sdb"], fixture="sg3/sg_requests-progress-25.txt")
    fake_commands.add(["sg_requests", "--progress", "/dev/sdb"], fixture="sg3/sg_requests-progress-none.txt")
    fake_commands.add(["sg_requests", "/dev/sdb"], stderr="Decode parameter data as sense data:\n Fixed format, current; Sense key: No Sense\n Additional sense: No additional sense information\n")
    seen = []
    scsi.sanitize("/dev/sdb", "crypto", timeout=600, log=CommandLog(), progress=seen.append)
    assert seen == [25.0, 100.0]


def test_sanitize_failure_sense_is_an_error(fake_commands, instant):
    fake_commands.add(["sg_sanitize", "--quick", "--early", "--block", "/dev/sdb"])
    fake_commands.add(["sg_requests", "--progress", "/dev/sdb"], fixture="sg3/sg_requests-progress-none.txt")
    fake_commands.add(["sg_requests", "/dev/sdb"], stderr=" Fixed format, current; Sense key: Medium Error\n Additional sense: Sanitize command failed\n")
    with pytest.raises(SanitizeError, match="failed"):
        scsi.sanitize("/dev/sdb", "block", timeout=600, log=CommandLog())


def test_sanitize_still_running_at_the_deadline_times_out(fake_commands, instant):
    fake_commands.add(["sg_sanitize", "--quick", "--early", "--overwrite", "--zero", "/dev/sdb"])
    fake_commands.add(["sg_requests", "--progress", "/dev/sdb"], fixture="sg3/sg_requests-progress-25.txt")
    with pytest.raises(ToolTimeout):
        scsi.sanitize("/dev/sdb", "overwrite", timeout=120, log=CommandLog())
