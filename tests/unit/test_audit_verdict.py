"""Machine verdicts (reuse / repair / recycle) and the thresholds that drive them."""

from __future__ import annotations

import json

import pytest

from agent.audit import audit_machine
from agent.audit.verdict import Thresholds, machine_verdict
from agent.errors import ConfigError
from agent.records import (
    BatteryInfo,
    CpuInfo,
    Disk,
    DiskAudit,
    DiskHealth,
    DiskVerdict,
    MachineInfo,
    MachineVerdict,
    MemoryInfo,
    Transport,
    to_dict,
)

GiB = 1 << 30


def healthy_machine(**kw) -> MachineInfo:
    base = dict(
        cpu=CpuInfo(arch="X86_64", flags=["aes", "lm", "sse2"], threads=4),
        memory=MemoryInfo(total_bytes=8 * GiB),
        batteries=[BatteryInfo(name="BAT0", health_percent=85.0)],
    )
    base.update(kw)
    return MachineInfo(**base)


def disk_audit(verdict: DiskVerdict, *, transport=Transport.SATA, reasons=(), path="/dev/sda") -> DiskAudit:
    disk = Disk(path=path, name=path[5:], transport=transport, model="WDC WD10EZEX", reasons=list(reasons))
    return DiskAudit(disk=disk, health=DiskHealth(verdict, ["x"]))


def test_healthy_machine_is_reused():
    verdict, reasons = machine_verdict(healthy_machine(), [disk_audit(DiskVerdict.GOOD)])
    assert verdict == MachineVerdict.REUSE
    assert reasons == ["no failing disk, battery or memory below the thresholds"]


def test_failing_internal_disk_means_repair():
    verdict, reasons = machine_verdict(healthy_machine(), [disk_audit(DiskVerdict.FAILING)])
    assert verdict == MachineVerdict.REPAIR
    assert reasons == ["disk /dev/sda (WDC WD10EZEX) is failing: replace it"]


def test_failing_usb_drive_or_boot_stick_does_not_count_against_the_machine():
    audits = [
        disk_audit(DiskVerdict.FAILING, transport=Transport.USB, path="/dev/sdc"),
        disk_audit(DiskVerdict.FAILING, reasons=["boot medium: holds /run/live/medium"], path="/dev/sdb"),
    ]
    assert machine_verdict(healthy_machine(), audits)[0] == MachineVerdict.REUSE


def test_worn_battery_means_repair():
    m = healthy_machine(batteries=[BatteryInfo(name="BAT0", health_percent=42.0)])
    verdict, reasons = machine_verdict(m, [])
    assert verdict == MachineVerdict.REPAIR
    assert reasons == ["battery BAT0 holds 42% of its design capacity (under 60%): replace it"]


def test_battery_threshold_is_configurable():
    m = healthy_machine(batteries=[BatteryInfo(name="BAT0", health_percent=55.0)])
    assert machine_verdict(m, [], {"battery_repair_health_percent": 50})[0] == MachineVerdict.REUSE


def test_little_ram_means_repair_and_very_little_means_recycle():
    assert machine_verdict(healthy_machine(memory=MemoryInfo(total_bytes=3 * GiB)), [])[0] == MachineVerdict.REPAIR
    verdict, reasons = machine_verdict(healthy_machine(memory=MemoryInfo(total_bytes=1 * GiB)), [])
    assert verdict == MachineVerdict.RECYCLE
    assert reasons == ["1.0 GiB of RAM (under 2 GiB)"]


def test_32_bit_only_cpu_means_recycle():
    m = healthy_machine(cpu=CpuInfo(arch="X86_32", flags=["sse2", "pae"]))
    assert machine_verdict(m, [])[0] == MachineVerdict.RECYCLE


def test_unknown_sources_do_not_condemn_a_machine():
    m = MachineInfo(missing={"dmi": "no SMBIOS", "batteries": "none"})
    assert machine_verdict(m, [disk_audit(DiskVerdict.UNKNOWN)])[0] == MachineVerdict.REUSE


def test_unknown_threshold_key_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="unknown threshold 'battery_min'"):
        Thresholds.from_mapping({"battery_min": 50})
    with pytest.raises(ConfigError, match="threshold worn_power_on_hours must be a number"):
        Thresholds.from_mapping({"worn_power_on_hours": "lots"})


def test_audit_report_with_missing_smartctl_is_valid_json_with_reasons(fake_commands):
    fake_commands.missing_tools.add("smartctl")
    disks = [Disk(path="/dev/sda", name="sda", transport=Transport.SATA)]
    report = audit_machine(disks, machine=healthy_machine(), thresholds={"worn_power_on_hours": 20000})
    data = json.loads(json.dumps(to_dict(report)))
    assert data["disks"][0]["health"] == {"verdict": "unknown", "reasons": ["smartctl is not installed"]}
    assert data["disks"][0]["smart"]["raw"] is None
    assert data["verdict"] == "reuse"
    assert data["thresholds"]["worn_power_on_hours"] == 20000
