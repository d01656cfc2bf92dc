"""HPA/DCO detection and reset, on recorded hdparm outputs."""

from agent.commands import CommandLog
from agent.sanitize import hpa
from fakes import FIXTURES


def text(name):
    return (FIXTURES / "hdparm" / name).read_text()


def test_hpa_enabled_sizes_are_read():
    m = hpa.parse_max_sectors(text("N-hpa-enabled.txt"))
    assert (m.visible, m.native, m.hpa_enabled) == (976771055, 976773168, True)


def test_hpa_disabled():
    assert not hpa.parse_max_sectors(text("N-hpa-disabled.txt")).hpa_enabled


def test_dco_real_max_is_read():
    assert hpa.parse_dco_real_max(text("dco-identify-overlay.txt")) == 976773168


def test_detect_reports_hpa_before_state(fake_commands):
    fake_commands.add(["hdparm", "-N", "/dev/sda"], fixture="hdparm/N-hpa-enabled.txt")
    fake_commands.add(["hdparm", "--dco-identify", "/dev/sda"], fixture="hdparm/dco-identify-no-overlay.txt")
    areas = hpa.detect("/dev/sda")
    assert areas.visible_sectors_before == 976771055 and areas.native_max_sectors == 976773168
    assert areas.dco_restricted is False and hpa.has_hidden_area(areas)


def test_detect_sees_a_dco_beyond_native_max(fake_commands):
    fake_commands.add(["hdparm", "-N", "/dev/sda"], fixture="hdparm/N-dco-hidden.txt")
    fake_commands.add(["hdparm", "--dco-identify", "/dev/sda"], fixture="hdparm/dco-identify-overlay.txt")
    areas = hpa.detect("/dev/sda")
    assert areas.dco_restricted is True
    assert areas.native_max_sectors == 976773168 and hpa.has_hidden_area(areas)


def test_reset_to_native_max_records_before_and_after(fake_commands):
    fake_commands.add(["hdparm", "-N", "/dev/sda"], fixture="hdparm/N-hpa-enabled.txt")
    fake_commands.add(["hdparm", "--dco-identify", "/dev/sda"], fixture="hdparm/dco-identify-no-overlay.txt")
    areas = hpa.detect("/dev/sda")
    fake_commands.add(["hdparm", "--yes-i-know-what-i-am-doing", "-N", "p976773168", "/dev/sda"], fixture="hdparm/N-set-permanent.txt")
    fake_commands.recordings[("hdparm", "-N", "/dev/sda")] = []
    fake_commands.add(["hdparm", "-N", "/dev/sda"], fixture="hdparm/N-hpa-disabled.txt")
    log = CommandLog()
    areas = hpa.reset("/dev/sda", areas, allowed=True, log=log)
    assert areas.removed is True
    assert (areas.visible_sectors_before, areas.visible_sectors_after) == (976771055, 976773168)
    assert [e["argv"] for e in log.entries] == [
        ["hdparm", "--yes-i-know-what-i-am-doing", "-N", "p976773168", "/dev/sda"],
        ["hdparm", "-N", "/dev/sda"],
    ]


def test_reset_that_the_drive_ignores_says_the_area_was_not_sanitized(fake_commands):
    fake_commands.add(["hdparm", "-N", "/dev/sda"], fixture="hdparm/N-hpa-enabled.txt")
    fake_commands.add(["hdparm", "--dco-identify", "/dev/sda"], fixture="hdparm/dco-identify-no-overlay.txt")
    areas = hpa.detect("/dev/sda")
    fake_commands.add(["hdparm", "--yes-i-know-what-i-am-doing", "-N", "p976773168", "/dev/sda"], returncode=5, stderr="SG_IO: bad/missing sense data\n")
    areas = hpa.reset("/dev/sda", areas, allowed=True, log=CommandLog())
    assert areas.removed is False
    assert "2113 hidden sectors could not be made visible: not sanitized" == areas.note


def test_reset_not_allowed_leaves_the_area_and_says_so(fake_commands):
    fake_commands.add(["hdparm", "-N", "/dev/sda"], fixture="hdparm/N-hpa-enabled.txt")
    fake_commands.add(["hdparm", "--dco-identify", "/dev/sda"], fixture="hdparm/dco-identify-no-overlay.txt")
    areas = hpa.reset("/dev/sda", hpa.detect("/dev/sda"), allowed=False, log=CommandLog())
    assert areas.removed is False and "hpa_reset is off" in areas.note
    assert not fake_commands.ran("hdparm", "--yes-i-know-what-i-am-doing")
