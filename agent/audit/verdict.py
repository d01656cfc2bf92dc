"""Health verdicts: per disk (good / worn / failing / unknown) and per machine (reuse /
repair / recycle), each with the reasons that decided it.

The thresholds are configurable (``thresholds:`` in ardoise.yaml, passed as a dict) and
documented in docs/audit.md. Defaults follow what drive makers and field studies agree on:
any pending or offline-uncorrectable sector means data is already being lost; a handful of
reallocated sectors is wear, hundreds is a drive in decline (Backblaze's drive statistics
show failure rates rising sharply with SMART 5, 187, 197, 198 above zero).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from agent.errors import ConfigError
from agent.records import DiskHealth, DiskVerdict, MachineVerdict, Transport
from agent.i18n import N_, T_

if TYPE_CHECKING:
    from agent.records import Disk, DiskAudit, MachineInfo, SmartSummary

GiB = 1 << 30


@dataclass(frozen=True)
class Thresholds:
    # disk: ATA
    worn_reallocated_sectors: int = 1
    failing_reallocated_sectors: int = 100
    failing_pending_sectors: int = 1
    failing_offline_uncorrectable: int = 1
    worn_reported_uncorrect: int = 1
    # disk: any protocol
    worn_power_on_hours: int = 35_000  # four years powered on
    # disk: flash wear (NVMe percentage used, ATA endurance indicator)
    worn_percentage_used: int = 80
    failing_percentage_used: int = 100
    worn_media_errors: int = 1
    failing_media_errors: int = 100
    # disk: SCSI/SAS
    worn_grown_defects: int = 1
    failing_grown_defects: int = 100
    # machine
    battery_repair_health_percent: float = 60.0
    repair_memory_gib: float = 4.0
    recycle_memory_gib: float = 2.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "Thresholds":
        """Defaults overridden by ``values``; an unknown key or a non-number is a
        ``ConfigError`` naming it."""
        if not values:
            return cls()
        names = {f.name: f for f in dataclasses.fields(cls)}
        problems, kwargs = [], {}
        for key, value in values.items():
            if key not in names:
                problems.append(f"unknown threshold {key!r}")
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                problems.append(f"threshold {key} must be a number (got {value!r})")
            else:
                kwargs[key] = value
        if problems:
            raise ConfigError("thresholds: " + "; ".join(problems), problems=problems)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def as_thresholds(value: "Thresholds | Mapping | None") -> Thresholds:
    return value if isinstance(value, Thresholds) else Thresholds.from_mapping(value)


_CRITICAL_WARNING_BITS = (
    (0x01, "available spare below threshold", True),
    (0x02, "temperature outside the allowed range", False),
    (0x04, "reliability degraded by media or internal errors", True),
    (0x08, "media placed in read-only mode", True),
    (0x10, "volatile memory backup failed", True),
    (0x20, "persistent memory region read-only", True),
)


def disk_health(s: "SmartSummary", thresholds: "Thresholds | Mapping | None" = None) -> DiskHealth:
    """good / worn / failing / unknown for one SMART summary, with every reason that fired."""
    t = as_thresholds(thresholds)
    if s.query_failed:
        why = s.exit_bits[0] if s.exit_bits else (s.messages[0] if s.messages else "smartctl query failed")
        detail = f"; {s.messages[0]}" if s.messages and s.exit_bits else ""
        return DiskHealth(DiskVerdict.UNKNOWN, [T_("SMART query failed ({why}){detail}", why=why, detail=detail)])

    failing: list[str] = []
    worn: list[str] = []
    status = s.exit_status or 0

    if s.smart_passed is False or status & (1 << 3):
        failing.append(T_("SMART overall-health self-assessment: FAILED"))
    now = [a for a in s.failing_attributes if a.endswith("(failing now)")]
    past = [a for a in s.failing_attributes if a.endswith("(failed in the past)")]
    if now:
        failing.append("attribute at or below threshold now: " + ", ".join(a.rsplit(" (", 1)[0] for a in now))
    elif status & (1 << 4):
        failing.append(T_("prefail attributes at or below threshold (smartctl exit bit 4)"))
    if past:
        worn.append("attribute below threshold in the past: " + ", ".join(a.rsplit(" (", 1)[0] for a in past))
    elif status & (1 << 5):
        worn.append(T_("attributes below threshold in the past (smartctl exit bit 5)"))

    def count(value: int | None, what: str, worn_at: int | None, failing_at: int | None, unit: str = "") -> None:
        if value is None:
            return
        if failing_at is not None and value >= failing_at:
            failing.append(T_("{value} {what} (failing at {limit})", value=f"{value}{unit}", what=T_(what), limit=failing_at))
        elif worn_at is not None and value >= worn_at:
            worn.append(T_("{value} {what} (worn at {limit})", value=f"{value}{unit}", what=T_(what), limit=worn_at))

    count(s.reallocated_sectors, N_("reallocated sectors"), t.worn_reallocated_sectors, t.failing_reallocated_sectors)
    count(s.pending_sectors, N_("pending sectors"), None, t.failing_pending_sectors)
    count(s.offline_uncorrectable, N_("offline uncorrectable sectors"), None, t.failing_offline_uncorrectable)
    count(s.reported_uncorrect, N_("reported uncorrectable errors"), t.worn_reported_uncorrect, None)
    count(s.endurance_used_percent, N_("of rated endurance used"), t.worn_percentage_used, t.failing_percentage_used, " %")
    count(s.nvme_media_errors, N_("NVMe media errors"), t.worn_media_errors, t.failing_media_errors)
    count(s.scsi_grown_defects, N_("grown defects"), t.worn_grown_defects, t.failing_grown_defects)
    count(s.scsi_uncorrected_errors, N_("uncorrected read/write errors"), 1, None)
    count(s.power_on_hours, N_("power-on hours"), t.worn_power_on_hours, None)

    if s.nvme_critical_warning:
        for bit, text, is_failing in _CRITICAL_WARNING_BITS:
            if s.nvme_critical_warning & bit:
                (failing if is_failing else worn).append(f"NVMe critical warning: {text}")
    spare, spare_min = s.nvme_available_spare, s.nvme_available_spare_threshold
    if spare is not None and spare_min and spare < spare_min:
        failing.append(f"NVMe available spare {spare}% below its threshold {spare_min}%")

    if s.self_tests and s.self_tests[0].passed is False:
        failing.append(T_("most recent self-test failed: {status}", status=s.self_tests[0].status))
    elif status & (1 << 7) or any(t_.passed is False for t_ in s.self_tests):
        worn.append(T_("an earlier self-test failed"))

    if failing:
        return DiskHealth(DiskVerdict.FAILING, failing + worn)
    if worn:
        return DiskHealth(DiskVerdict.WORN, worn)
    has_data = s.smart_passed is not None or any(
        v is not None
        for v in (s.reallocated_sectors, s.endurance_used_percent, s.nvme_media_errors, s.scsi_grown_defects)
    )
    if not has_data:
        return DiskHealth(DiskVerdict.UNKNOWN,
                          [T_("smartctl returned no health data (RAID volume, bridge or identify-only output?)")])
    reasons = [T_("SMART overall-health self-assessment passed") if s.smart_passed
               else T_("no defect counters above threshold")]
    if status & (1 << 2):
        reasons.append(T_("some SMART commands failed (smartctl exit bit 2): the data may be partial"))
    return DiskHealth(DiskVerdict.GOOD, reasons)


def belongs_to_machine(disk: "Disk") -> bool:
    """Internal disks only: not the boot stick, not loop/RAM/files, not USB drives plugged
    in for the session (their health says nothing about the computer being audited)."""
    if disk.transport in (Transport.LOOP, Transport.RAM, Transport.FILE, Transport.USB):
        return False
    return not any(r.startswith("boot medium") for r in disk.reasons)


def machine_verdict(
    machine: "MachineInfo", disks: "list[DiskAudit]", thresholds: "Thresholds | Mapping | None" = None
) -> tuple[MachineVerdict, list[str]]:
    """reuse / repair / recycle, with reasons. Only disks that belong to the machine count
    (not the boot stick, loop devices or USB drives plugged in for the session)."""
    t = as_thresholds(thresholds)
    repair: list[str] = []
    recycle: list[str] = []
    for d in disks:
        if not belongs_to_machine(d.disk):
            continue
        if d.health.verdict == DiskVerdict.FAILING:
            repair.append(T_("disk {device} ({model}) is failing: replace it", device=d.disk.path,
                             model=d.disk.model or d.disk.serial or T_("unknown model")))
    for b in machine.batteries or []:
        if b.health_percent is not None and b.health_percent < t.battery_repair_health_percent:
            repair.append(T_("battery {name} holds {percent} of its design capacity (under {limit}): replace it",
                             name=b.name, percent=f"{b.health_percent:.0f}%", limit=f"{t.battery_repair_health_percent:g}%"))
    total = machine.memory.total_bytes if machine.memory else None
    if total is not None:
        gib = total / GiB
        if gib < t.recycle_memory_gib:
            recycle.append(T_("{size} GiB of RAM (under {limit} GiB)", size=f"{gib:.1f}", limit=f"{t.recycle_memory_gib:g}"))
        elif gib < t.repair_memory_gib:
            repair.append(T_("{size} GiB of RAM (under {limit} GiB): add memory", size=f"{gib:.1f}",
                             limit=f"{t.repair_memory_gib:g}"))
    cpu = machine.cpu
    if cpu is not None and cpu.arch in ("X86_32", "X86_64") and cpu.flags and "lm" not in cpu.flags:
        recycle.append(T_("32-bit-only CPU: cannot run a current 64-bit system"))
    if recycle:
        return MachineVerdict.RECYCLE, recycle + repair
    if repair:
        return MachineVerdict.REPAIR, repair
    return MachineVerdict.REUSE, [T_("no failing disk, battery or memory below the thresholds")]
