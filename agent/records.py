"""Typed records passed between the stages: discover -> audit -> sanitize -> verify ->
certify -> deliver.

Each stage owns its records (the comment above each class says which) and may add fields;
no stage passes a loose dict to another. ``to_dict`` gives the JSON form used by ``--json``
output, the journal and the certificate payload.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any


def to_dict(record: Any) -> Any:
    """JSON-ready form of a record (dataclasses, enums, lists, dicts, scalars)."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: to_dict(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, enum.Enum):
        return record.value
    if isinstance(record, (list, tuple)):
        return [to_dict(v) for v in record]
    if isinstance(record, dict):
        return {str(k): to_dict(v) for k, v in record.items()}
    return record


# --------------------------------------------------------------------------- discover


class Transport(enum.StrEnum):
    NVME = "nvme"
    SATA = "sata"
    SAS = "sas"
    SCSI = "scsi"
    USB = "usb"
    MMC = "mmc"
    VIRTIO = "virtio"
    LOOP = "loop"
    RAM = "ram"
    FILE = "file"  # a regular file named with --allow-file (demos and tests)
    UNKNOWN = "unknown"


class Media(enum.StrEnum):
    HDD = "hdd"
    SSD = "ssd"
    NVME = "nvme"
    FLASH = "flash"  # USB sticks, SD cards, eMMC
    OPTICAL = "optical"
    VIRTUAL = "virtual"  # loop, ram, zram, regular files
    UNKNOWN = "unknown"


@dataclass
class UsbBridge:
    """A USB-to-SATA/NVMe bridge; owned by discover."""

    vendor_id: str | None = None
    product_id: str | None = None
    name: str | None = None
    # Whether ATA/NVMe pass-through reaches the drive behind the bridge; None = not probed.
    passthrough: bool | None = None


@dataclass
class Disk:
    """One whole block device and the decision whether it may be written. Owned by discover."""

    path: str
    name: str
    transport: Transport = Transport.UNKNOWN
    media: Media = Media.UNKNOWN
    model: str | None = None
    vendor: str | None = None
    serial: str | None = None
    wwn: str | None = None
    firmware: str | None = None
    size_bytes: int = 0
    logical_sector_size: int = 512
    physical_sector_size: int = 512
    rotational: bool | None = None
    removable: bool = False
    read_only: bool = False
    # An eMMC boot partition (mmcblkNboot0/1) the kernel holds read-only through its
    # force_ro switch: read_only is true, yet the agent may clear the switch and write it.
    force_ro: bool = False
    usb_bridge: UsbBridge | None = None
    # "megaraid_sas at 0000:00:04.0": the block device is a volume a hardware RAID controller
    # presents, not a drive; what is wiped is what the volume addresses. None: a drive.
    raid_volume: str | None = None
    sysfs_path: str | None = None
    devnum: str | None = None  # "major:minor"
    mountpoints: list[str] = field(default_factory=list)
    target: bool = False
    # Why the disk is (or is not) a target: every rule that fired, in plain words.
    reasons: list[str] = field(default_factory=list)

    @property
    def identity(self) -> str:
        """A name that survives re-enumeration (sdb today, sdc after a reboot)."""
        return self.wwn or self.serial or self.path


# --------------------------------------------------------------------------- audit
# Owned by the audit stage (agent/audit/). A source that could not be read is None in its
# field and has a one-line reason under the same name in ``MachineInfo.missing``.


class DiskVerdict(enum.StrEnum):
    GOOD = "good"
    WORN = "worn"  # usable, but visibly aged: say so to the next owner
    FAILING = "failing"  # do not reuse: the drive reports failure or growing defects
    UNKNOWN = "unknown"  # SMART could not be read or understood


class MachineVerdict(enum.StrEnum):
    REUSE = "reuse"
    REPAIR = "repair"  # reusable after a part is replaced (battery, disk, RAM)
    RECYCLE = "recycle"


@dataclass
class DmiInfo:
    system_vendor: str | None = None
    system_product: str | None = None
    system_version: str | None = None
    system_serial: str | None = None
    system_uuid: str | None = None
    system_sku: str | None = None
    system_family: str | None = None
    chassis_type: str | None = None  # SMBIOS 7.4.1 name ("Notebook", "Desktop"...)
    chassis_vendor: str | None = None
    chassis_serial: str | None = None
    bios_vendor: str | None = None
    bios_version: str | None = None
    bios_date: str | None = None
    board_vendor: str | None = None
    board_name: str | None = None
    board_version: str | None = None
    board_serial: str | None = None
    source: str = "sysfs"  # sysfs | dmidecode


@dataclass
class CpuInfo:
    brand: str | None = None
    vendor: str | None = None
    arch: str | None = None
    cores: int | None = None  # physical cores
    threads: int | None = None  # logical CPUs
    advertised_hz: int | None = None
    aes: bool | None = None  # AES-NI: decides whether crypto erase / random passes are fast
    flags: list[str] = field(default_factory=list)


@dataclass
class MemoryModule:
    slot: str | None = None
    bank: str | None = None
    size_bytes: int | None = None  # None: empty slot
    type: str | None = None  # DDR4, LPDDR5...
    speed_mts: int | None = None
    configured_speed_mts: int | None = None
    form_factor: str | None = None
    manufacturer: str | None = None
    part_number: str | None = None
    serial: str | None = None


@dataclass
class MemoryInfo:
    total_bytes: int | None = None  # what the OS sees (/proc/meminfo MemTotal)
    installed_bytes: int | None = None  # sum of populated modules (dmidecode)
    slots_total: int | None = None
    slots_used: int | None = None
    modules: list[MemoryModule] | None = None  # None: dmidecode could not say (see missing)


@dataclass
class BatteryInfo:
    name: str
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    technology: str | None = None
    status: str | None = None
    unit: str | None = None  # "mWh" (energy_*) or "mAh" (charge_*)
    design_capacity: float | None = None
    full_capacity: float | None = None
    health_percent: float | None = None  # full / design * 100
    cycle_count: int | None = None


@dataclass
class GpuInfo:
    slot: str
    vendor: str | None = None
    device: str | None = None
    vendor_id: str | None = None
    device_id: str | None = None
    driver: str | None = None


@dataclass
class NetInterface:
    name: str
    mac: str | None = None
    kind: str | None = None  # wired | wireless
    driver: str | None = None
    vendor_id: str | None = None
    device_id: str | None = None


@dataclass
class DisplayInfo:
    connector: str
    manufacturer: str | None = None  # EDID PNP id, e.g. "LGD"
    product_code: int | None = None
    serial: str | None = None
    name: str | None = None  # monitor name descriptor
    width_cm: int | None = None
    height_cm: int | None = None
    diagonal_inches: float | None = None
    preferred_width: int | None = None
    preferred_height: int | None = None
    refresh_hz: float | None = None
    year: int | None = None


@dataclass
class MachineInfo:
    hostname: str | None = None
    dmi: DmiInfo | None = None
    cpu: CpuInfo | None = None
    memory: MemoryInfo | None = None
    batteries: list[BatteryInfo] | None = None  # [] means "looked, none present"
    gpus: list[GpuInfo] | None = None
    nics: list[NetInterface] | None = None
    displays: list[DisplayInfo] | None = None
    missing: dict[str, str] = field(default_factory=dict)  # source -> why it is null


@dataclass
class StorageController:
    """One PCI storage controller (base class 01h, and SD hosts 0805h), the driver bound to
    it and the whole disks the kernel shows beneath it. Owned by discover (controllers.py)."""

    slot: str  # PCI address with its domain: "0000:00:17.0", "10000:e1:00.0" (behind VMD)
    class_code: str  # six hex digits, class/subclass/prog-if: "010601" (AHCI), "010400" (RAID)
    kind: str  # ahci, sata, raid, vmd, nvme, scsi, ide, ata, sas, sd_host, other
    vendor_id: str | None = None
    device_id: str | None = None
    name: str | None = None  # lspci's name, when lspci answered
    driver: str | None = None  # None: no driver bound, its disks cannot be seen
    disks: list[str] = field(default_factory=list)  # block device names beneath it in sysfs
    problem: str | None = None  # why storage behind it is not reachable; None when it is


class StorageState(enum.StrEnum):
    """The machine-level state of its storage, decided before any disk is written."""

    OK = "ok"  # every controller reachable, and at least one target disk
    STORAGE_UNREACHABLE = "storage_unreachable"  # the machine is FAILED: a disk may hide
    NO_DISK_FOUND = "no_disk_found"  # nothing to sanitize, and nothing seems hidden


@dataclass
class StorageReport:
    state: StorageState
    reasons: list[str] = field(default_factory=list)  # each unreachable controller, in words
    advice: str | None = None  # what the technician does (set SATA mode to AHCI...)
    controllers: list[StorageController] | None = None  # None: /sys/bus/pci unreadable
    kernel_warnings: list[str] = field(default_factory=list)  # the kernel log lines that decided
    late_disks: list[str] = field(default_factory=list)  # beneath a controller, probed after the listing
    missing: dict[str, str] = field(default_factory=dict)  # source -> why it was not read


@dataclass
class DiskHealth:
    verdict: DiskVerdict
    reasons: list[str] = field(default_factory=list)


@dataclass
class SelfTest:
    type: str | None = None
    status: str | None = None
    passed: bool | None = None
    lifetime_hours: int | None = None


@dataclass
class SmartSummary:
    """What ``smartctl -x --json`` said about one disk, decoded."""

    device: str
    argv: list[str] = field(default_factory=list)
    device_type: str | None = None  # the -d type used (sat, nvme, auto...)
    exit_status: int | None = None
    exit_bits: list[str] = field(default_factory=list)  # decoded bitmask, in smartctl(8) words
    query_failed: bool = False  # bits 0-2: the answer is missing or partial
    protocol: str | None = None  # ATA | NVMe | SCSI
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    smart_passed: bool | None = None
    power_on_hours: int | None = None
    power_cycles: int | None = None
    temperature_c: int | None = None
    reallocated_sectors: int | None = None
    pending_sectors: int | None = None
    offline_uncorrectable: int | None = None
    reported_uncorrect: int | None = None
    failing_attributes: list[str] = field(default_factory=list)  # ATA attributes at/below threshold
    nvme_percentage_used: int | None = None
    # Flash wear, any protocol: NVMe "percentage used", or the ATA device statistics'
    # "Percentage Used Endurance Indicator" (ACS-3 log 04h page 07h). May exceed 100.
    endurance_used_percent: int | None = None
    nvme_media_errors: int | None = None
    nvme_available_spare: int | None = None
    nvme_available_spare_threshold: int | None = None
    nvme_critical_warning: int | None = None
    scsi_grown_defects: int | None = None
    scsi_uncorrected_errors: int | None = None
    self_tests: list[SelfTest] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # smartctl's own messages (errors, warnings)
    health: DiskHealth = field(default_factory=lambda: DiskHealth(DiskVerdict.UNKNOWN, ["not read"]))
    raw: dict | None = None  # the full smartctl JSON, kept for technicians when asked


@dataclass
class DiskAudit:
    disk: Disk
    smart: SmartSummary | None = None
    health: DiskHealth = field(default_factory=lambda: DiskHealth(DiskVerdict.UNKNOWN, ["not read"]))


@dataclass
class AuditReport:
    machine: MachineInfo
    disks: list[DiskAudit] = field(default_factory=list)
    verdict: MachineVerdict = MachineVerdict.REUSE
    reasons: list[str] = field(default_factory=list)
    thresholds: dict[str, Any] = field(default_factory=dict)  # the thresholds the verdicts used
    created_at: str | None = None
    agent_version: str | None = None
    report_id: str | None = None  # the id of its signed form (audit-report.v1), once signed
    storage: StorageReport | None = None  # controllers and the machine's storage state


# --------------------------------------------------------------------------- sanitize


class Category(enum.StrEnum):
    """NIST SP 800-88 sanitization category actually achieved."""

    CLEAR = "Clear"
    PURGE = "Purge"
    DESTROY = "Destroy"


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class StepStatus(enum.StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    REFUSED = "refused"  # the drive or the tool said no before anything was written
    UNSUPPORTED = "unsupported"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"


@dataclass
class LbaRange:
    """An inclusive-exclusive range of logical blocks [start, end)."""

    start: int
    end: int

    @property
    def count(self) -> int:
        return self.end - self.start


@dataclass
class PlanStep:
    """One way to sanitize a disk, with the reason it was chosen. Owned by the policy."""

    method: str  # e.g. "nvme-sanitize-crypto", "ata-security-erase-enhanced", "overwrite:zero"
    category: Category  # what this step achieves if it completes and verifies
    technique: str  # NIST technique words: "Cryptographic Erase", "Block Erase", "Overwrite"
    reason: str
    tool: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SanitizePlan:
    """Ordered steps for one disk: run the first that works, fall back on refusal or error."""

    disk: Disk
    steps: list[PlanStep]
    verify: str = "sample"  # full | sample | none
    notes: list[str] = field(default_factory=list)  # decisions that are not steps (bridge, HPA...)
    # Issue 4 (policy) additions: steps run before the first sanitize step (unlock an
    # interrupted security erase, unfreeze, HPA/DCO reset), methods considered and not
    # offered (each with why: the certificate shows e.g. "sanitize unsupported"), the
    # hidden areas read at plan time, and why the disk is not a target (then no steps).
    prepare: list[PlanStep] = field(default_factory=list)
    skipped: list[PlanStep] = field(default_factory=list)
    hidden_areas: HiddenAreas | None = None
    not_target: str | None = None
    # Why no step may run on this target (a locked self-encrypting drive): FAILED with it.
    refused: str | None = None


@dataclass
class PassResult:
    """One overwrite pass. Owned by the overwrite engine."""

    pattern: str  # "zero", "ones", "random", "0x55", ...
    bytes_written: int = 0
    duration_s: float = 0.0
    error_ranges: list[LbaRange] = field(default_factory=list)
    resumed_from: int | None = None  # byte offset the pass resumed at, after a power loss


@dataclass
class VerificationResult:
    """Read-back verification. Owned by verify."""

    method: str  # full | sample | none | canary
    status: str  # passed | failed | not-run | error
    bytes_read: int = 0
    duration_s: float = 0.0
    mismatches: list[LbaRange] = field(default_factory=list)
    read_errors: list[LbaRange] = field(default_factory=list)
    seed: str | None = None  # sample verification: reproduces the sampled ranges
    sampled: list[LbaRange] = field(default_factory=list)
    coverage: float | None = None  # fraction of the media read
    notes: list[str] = field(default_factory=list)
    block_size: int = 512  # bytes per LBA in the ranges above
    expected: str | None = None  # what was expected: "zero", "random", "0x55", "no canary"...


@dataclass
class StepResult:
    """What happened when one plan step ran."""

    method: str
    category: Category | None  # achieved by this step, None unless it succeeded
    status: StepStatus
    started_at: str | None = None
    finished_at: str | None = None
    passes: list[PassResult] = field(default_factory=list)
    commands: list[dict] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    # Overwrite steps: read-back of the final pass, totals, and whether a journal resumed it.
    verification: "VerificationResult | None" = None
    bytes_written: int = 0
    duration_s: float = 0.0
    error_ranges: list[LbaRange] = field(default_factory=list)
    resumed: bool = False


@dataclass
class HiddenAreas:
    """HPA/DCO sizes before and after reset, in sectors. Owned by the firmware path."""

    native_max_sectors: int | None = None
    visible_sectors_before: int | None = None
    visible_sectors_after: int | None = None
    dco_restricted: bool | None = None
    removed: bool | None = None
    note: str | None = None


@dataclass
class SanitizeResult:
    """Everything the certificate needs to say about one disk's sanitization."""

    disk: Disk
    outcome: Outcome
    category: Category | None  # the category actually achieved, None if nothing was
    method: str  # the method that produced the outcome
    steps: list[StepResult] = field(default_factory=list)
    verification: VerificationResult | None = None
    hidden_areas: HiddenAreas | None = None
    bytes_written: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float = 0.0
    throughput_bps: int = 0
    error_ranges: list[LbaRange] = field(default_factory=list)
    resumed: bool = False
    notes: list[str] = field(default_factory=list)
