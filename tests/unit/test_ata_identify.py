"""hdparm -I parsed into a typed record, and the ATA commands, on recorded outputs."""

import pytest

from agent.commands import CommandLog
from agent.errors import SanitizeError, ToolOutputError, ToolTimeout
from agent.sanitize import ata
from fakes import FIXTURES


def identify(name, device="/dev/sda"):
    return ata.parse_identify((FIXTURES / "hdparm" / name).read_text(), device)


@pytest.fixture
def instant(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(ata, "clock", lambda: now[0])
    monkeypatch.setattr(ata, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    return now


def test_identity_and_media_are_read():
    info = identify("security-frozen.txt")
    assert info.model == "7 PIN  SATA FDM"
    assert info.serial == "20131210000000000023"
    assert info.rotational is False and info.is_flash
    assert info.lba48_sectors == 60579792
    assert info.hpa_feature and info.dco_feature


@pytest.mark.parametrize(
    "name, enabled, locked, frozen, enhanced",
    [
        ("security-frozen.txt", False, False, True, True),
        ("security-supported-not-frozen.txt", False, False, False, True),
        ("security-enabled-locked.txt", True, True, False, True),
        ("security-no-enhanced.txt", False, False, False, False),
        ("security-enabled-not-locked.txt", True, False, False, True),
    ],
)
def test_security_state_of_each_recorded_drive(name, enabled, locked, frozen, enhanced):
    sec = identify(name).security
    assert sec.supported
    assert (sec.enabled, sec.locked, sec.frozen, sec.enhanced_supported) == (enabled, locked, frozen, enhanced)
    assert sec.erase_minutes == 24 and sec.enhanced_erase_minutes == 24
    assert not sec.count_expired


def test_security_level_is_read_when_a_password_is_set():
    assert identify("security-enabled-not-locked.txt").security.level == "high"


def test_ata_sanitize_feature_set_is_detected():
    san = identify("sanitize-crypto-block-not-frozen.txt").sanitize
    assert (san.supported, san.crypto, san.block, san.overwrite) == (True, True, True, False)
    assert not identify("security-frozen.txt").sanitize.supported


def test_hard_drive_is_rotational():
    info = identify("hdd-sanitize-overwrite.txt")
    assert info.rotational is True
    assert info.sanitize.overwrite and not info.sanitize.block


def test_not_ata_output_is_a_tool_output_error():
    with pytest.raises(ToolOutputError):
        ata.parse_identify("/dev/sda:\n HDIO_DRIVE_CMD(identify) failed: Invalid argument\n", "/dev/sda")


def test_erase_timeout_follows_the_drive_estimate():
    info = identify("security-frozen.txt")
    assert ata.erase_timeout(info, enhanced=True) == 24 * 60 * 2 + 600


def test_passwords_are_unique_per_run():
    a, b = ata.new_password(), ata.new_password()
    assert a != b and len(a) == 16


@pytest.mark.parametrize(
    "name, state, in_progress, ok",
    [
        ("sanitize-status-in-progress.txt", "SD2", True, False),
        ("sanitize-status-completed.txt", "SD0", False, True),
        ("sanitize-status-frozen.txt", "SD1", False, False),
        ("sanitize-status-idle-no-success.txt", "SD0", False, False),
    ],
)
def test_sanitize_status_parsing(name, state, in_progress, ok):
    st = ata.parse_sanitize_status((FIXTURES / "hdparm" / name).read_text())
    assert (st.state, st.in_progress, st.completed_without_error) == (state, in_progress, ok)


def test_ata_sanitize_block_is_polled_with_sanitize_status(fake_commands, instant):
    fake_commands.add(["hdparm", "--yes-i-know-what-i-am-doing", "--sanitize-block-erase", "/dev/sda"])
    fake_commands.add(["hdparm", "--sanitize-status", "/dev/sda"], fixture="hdparm/sanitize-status-in-progress.txt")
    fake_commands.add(["hdparm", "--sanitize-status", "/dev/sda"], fixture="hdparm/sanitize-status-completed.txt")
    seen = []
    ata.sanitize("/dev/sda", "block", timeout=600, log=CommandLog(), progress=seen.append)
    assert seen == [25.0, 100.0]


def test_ata_sanitize_frozen_is_refused(fake_commands, instant):
    fake_commands.add(["hdparm", "--yes-i-know-what-i-am-doing", "--sanitize-crypto-scramble", "/dev/sda"])
    fake_commands.add(["hdparm", "--sanitize-status", "/dev/sda"], fixture="hdparm/sanitize-status-frozen.txt")
    with pytest.raises(SanitizeError, match="frozen"):
        ata.sanitize("/dev/sda", "crypto", timeout=600, log=CommandLog())


def test_ata_sanitize_without_success_flag_is_not_success(fake_commands, instant):
    fake_commands.add(["hdparm", "--yes-i-know-what-i-am-doing", "--sanitize-crypto-scramble", "/dev/sda"])
    fake_commands.add(["hdparm", "--sanitize-status", "/dev/sda"], fixture="hdparm/sanitize-status-idle-no-success.txt")
    with pytest.raises(SanitizeError, match="without a success"):
        ata.sanitize("/dev/sda", "crypto", timeout=600, log=CommandLog())


def test_ata_sanitize_that_never_ends_times_out(fake_commands, instant):
    fake_commands.add(["hdparm", "--yes-i-know-what-i-am-doing", "--sanitize-overwrite-passes", "1", "--sanitize-overwrite", "hex:00000000", "/dev/sda"])
    fake_commands.add(["hdparm", "--sanitize-status", "/dev/sda"], fixture="hdparm/sanitize-status-in-progress.txt")
    with pytest.raises(ToolTimeout):
        ata.sanitize("/dev/sda", "overwrite", timeout=30, log=CommandLog())


def test_refused_security_command_names_the_drive_message(fake_commands):
    fake_commands.add(
        ["hdparm", "--user-master", "u", "--security-set-pass", "pw", "/dev/sda"],
        returncode=5,
        stderr="SG_IO: bad/missing sense data, sb[]:  70 00 05 00 00 00 00 0a\n",
    )
    with pytest.raises(SanitizeError, match="SET PASSWORD refused: SG_IO"):
        ata.set_password("/dev/sda", "pw", CommandLog())


def test_password_journal_survives_and_is_cleared(tmp_path):
    j = ata.PasswordJournal(tmp_path)
    j.record("WWN-1", "/dev/sda", "abc123")
    assert ata.PasswordJournal(tmp_path).load("WWN-1") == "abc123"
    assert j.load("WWN-2") is None
    assert oct((tmp_path / "journal").iterdir().__next__().stat().st_mode & 0o777) == "0o600"
    j.clear("WWN-1")
    assert j.load("WWN-1") is None
