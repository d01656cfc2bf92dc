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
    usb_bridge: UsbBridge | None = None
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
