"""Every recorded smartctl output gets a stated verdict and the reason that decides it.

A new fixture in tests/fixtures/smartctl/ fails ``test_every_fixture_has_an_expectation``
until someone writes down what it should say.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.audit.smart import summarize
from agent.records import DiskVerdict

SMARTCTL = Path(__file__).parent.parent / "fixtures" / "smartctl"

GOOD, WORN, FAILING, UNKNOWN = DiskVerdict.GOOD, DiskVerdict.WORN, DiskVerdict.FAILING, DiskVerdict.UNKNOWN

# fixture -> (verdict, a reason that must be among the reasons, why we expect it)
EXPECTED = {
    "qemu-ahci-sata.json": (GOOD, "smartctl exit bit 2", "QEMU's fixed attribute table trips bit 2; health passed, no defects"),
    "qemu-nvme.json": (GOOD, "self-assessment passed", "emulated NVMe, nothing used, no errors"),
    "smart-ata-date.json": (GOOD, "self-assessment passed", "1730 h, no reallocated/pending sectors"),
    "smart-ata-date2.json": (FAILING, "10 pending sectors", "raw values 10 (Scrutiny edited them; the raw strings still say 0 and the counter wins): pending sectors mean unreadable data"),
    "smart-ata-failed-scrutiny.json": (GOOD, "self-assessment passed", "Scrutiny flagged its CRC errors (199): a cable fault, not the drive"),
    "smart-ata-full.json": (GOOD, "self-assessment passed", "14551 h SSD, self-tests passed"),
    "smart-ata.json": (GOOD, "self-assessment passed", "healthy SATA drive"),
    "smart-ata2.json": (GOOD, "self-assessment passed", "846 h, no defects"),
    "smart-fail.json": (UNKNOWN, "SMART query failed (bit 1", "exit status 2: the device could not be opened"),
    "smart-fail2.json": (FAILING, "SMART overall-health self-assessment: FAILED", "Hitachi: reallocated sectors FAILING_NOW, health failed"),
    "smart-megaraid0.json": (WORN, "37787 power-on hours", "over four years powered on, otherwise clean"),
    "smart-megaraid1.json": (FAILING, "387 reallocated sectors", "hundreds of reallocated sectors: a drive in decline"),
    "smart-nvme-failed.json": (WORN, "7 NVMe media errors", "Samsung NVMe with 7 unrecovered media errors"),
    "smart-nvme.json": (GOOD, "self-assessment passed", "healthy NVMe"),
    "smart-nvme2.json": (GOOD, "self-assessment passed", "1% used, no errors"),
    "smart-pass.json": (GOOD, "self-assessment passed", "health only, and it passed"),
    "smart-raid.json": (UNKNOWN, "no health data", "a RAID volume: no drive behind it answers SMART"),
    "smart-sat.json": (GOOD, "no defect counters above threshold", "attributes only, all clean (POH raw string 2725, not the packed value)"),
    "smart-scsi.json": (WORN, "56 grown defects", "SAS drive with a grown defect list"),
    "smart-scsi2.json": (GOOD, "self-assessment passed", "SAS drive without grown defects"),
    "smartctl_info_nvme.json": (UNKNOWN, "no health data", "identify-only output (-i), no health log"),
}


def test_every_fixture_has_an_expectation():
    on_disk = {p.name for p in SMARTCTL.glob("*.json")}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_recorded_drive_gets_its_expected_verdict(fixture):
    verdict, reason, why = EXPECTED[fixture]
    data = json.loads((SMARTCTL / fixture).read_text())
    health = summarize(data, device="/dev/x").health
    assert health.verdict == verdict, f"{fixture} ({why}): {health.reasons}"
    assert any(reason in r for r in health.reasons), f"{fixture}: {reason!r} not in {health.reasons}"


def test_failing_hitachi_is_failing_for_every_reason_it_shows():
    data = json.loads((SMARTCTL / "smart-fail2.json").read_text())
    s = summarize(data, device="/dev/sdb")
    assert s.exit_status == 216
    assert [b.split(":")[0] for b in s.exit_bits] == ["bit 3", "bit 4", "bit 6", "bit 7"]
    assert s.reallocated_sectors == 1975 and s.pending_sectors == 8
    assert s.failing_attributes == ["5 Reallocated_Sector_Ct (failing now)"]
    assert s.health.verdict == FAILING
    assert "attribute at or below threshold now: 5 Reallocated_Sector_Ct" in s.health.reasons


def test_nvme_summary_reads_the_health_log():
    data = json.loads((SMARTCTL / "smart-nvme-failed.json").read_text())
    s = summarize(data, device="/dev/nvme0")
    assert (s.nvme_media_errors, s.nvme_percentage_used, s.nvme_available_spare, s.nvme_available_spare_threshold) == (
        7,
        3,
        99,
        10,
    )
    assert s.power_on_hours == 12798 and s.temperature_c == 35
    assert s.health.verdict in (WORN, FAILING)


def test_self_test_log_is_summarised_newest_first():
    data = json.loads((SMARTCTL / "smart-fail2.json").read_text())
    tests = summarize(data, device="/dev/sdb").self_tests
    assert tests[0].passed is True and tests[0].lifetime_hours == 42
    assert any(t.passed is False and t.status == "Completed: read failure" for t in tests)


def test_thresholds_change_the_verdict():
    data = json.loads((SMARTCTL / "smart-megaraid0.json").read_text())
    assert summarize(data, device="/dev/x").health.verdict == WORN
    assert summarize(data, device="/dev/x", thresholds={"worn_power_on_hours": 50_000}).health.verdict == GOOD


def test_nvme_spare_below_threshold_is_failing():
    data = json.loads((SMARTCTL / "smart-nvme.json").read_text())
    data["nvme_smart_health_information_log"]["available_spare"] = 4
    data["nvme_smart_health_information_log"]["critical_warning"] = 1
    health = summarize(data, device="/dev/nvme0").health
    assert health.verdict == FAILING
    assert "NVMe available spare 4% below its threshold 10%" in health.reasons
    assert "NVMe critical warning: available spare below threshold" in health.reasons


@pytest.mark.parametrize("data", [None, [], "text", 42, {"smartctl": "nonsense"}, {"smartctl": {"exit_status": "x"}}])
def test_malformed_documents_give_unknown_without_crashing(data):
    assert summarize(data, device="/dev/x").health.verdict == UNKNOWN


def test_sata_ssd_wear_comes_from_the_device_statistics():
    data = json.loads((SMARTCTL / "smart-ata-full.json").read_text())
    assert summarize(data, device="/dev/sda").endurance_used_percent == 19
    assert summarize(data, device="/dev/sda", thresholds={"worn_percentage_used": 15}).health.verdict == WORN
