"""Is this disk a target? The protection rules, as pure functions of recorded facts.

Every rule that fires adds a reason; a disk is a target only if none fires. The rules err
towards protecting: a false "protected" costs a technician a minute, a false "target"
destroys someone's data or the boot stick.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from agent.discover import udev
from agent.discover.system import FileId, SystemState, mount_devnum
from agent.i18n import T_
from agent.records import Transport

# The image's labels (image/ builds them): the data partition is "ARDOISE", the ISO's volume
# id starts with "ARDOISE" (ARDOISE_0.1.0 ...).
DATA_LABEL = "ARDOISE"
ISO_LABEL_PREFIX = "ARDOISE"


@dataclass
class DeviceFacts:
    """Everything the rules look at for one whole disk, gathered by ``probe``."""

    name: str
    devnode: str
    transport: Transport
    properties: dict[str, str] = field(default_factory=dict)
    size_bytes: int = 0
    read_only: bool = False
    # read-only only through an eMMC boot partition's force_ro switch, which the agent clears
    force_ro: bool = False
    serials: list[str] = field(default_factory=list)  # serial, WWN, ID_SERIAL...: any may be excluded
    # major:minor of the disk, its partitions and everything stacked on them
    devnums: set[str] = field(default_factory=set)
    holders: dict[str, list[str]] = field(default_factory=dict)  # device -> dm/md holders
    # (devnode, fstype, label) of the disk itself and of each partition
    labels: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    busy: str | None = None  # why an exclusive open was refused (EBUSY: claimed by the kernel)
    is_file: bool = False
    file_id: FileId | None = None  # (st_dev, st_ino) of a regular file target
    open_by: list[str] = field(default_factory=list)  # other processes holding the file open


def is_image_label(fstype: str | None, label: str | None) -> bool:
    if not label:
        return False
    if label.upper() == DATA_LABEL:
        return True
    return fstype == "iso9660" and label.upper().startswith(ISO_LABEL_PREFIX)


def mountpoints(facts: DeviceFacts, system: SystemState) -> list[str]:
    return [m.mountpoint for m in system.mounts if mount_devnum(m) in facts.devnums]


def normalise_serial(serial: str) -> str:
    return "".join(serial.split()).upper()


def protection_reasons(
    facts: DeviceFacts, system: SystemState, *, explicit: bool, exclude_serials: Iterable[str] = ()
) -> list[str]:
    """Every reason this disk must not be written. Empty list: it may be a target.

    Reasons are ``T_`` texts: English in records and JSON, the reader's language on screen
    (``agent.i18n.localize``)."""
    reasons: list[str] = []
    for signal in system.boot_signals.get(facts.name, []):
        reasons.append(T_("boot medium: {signal}", signal=signal))
    booted_from = bool(system.boot_signals.get(facts.name))
    for devnode, fstype, label in facts.labels:
        if is_image_label(fstype, label):
            # Only the medium we booted from is the stick (discover.stick picks its data
            # partition there); another disk with the label is still spared: it may be a
            # second Ardoise stick holding certificates not yet delivered.
            if booted_from:
                reasons.append(T_("boot medium: {device} carries the Ardoise label {label} ({fstype})",
                                  device=devnode, label=repr(label), fstype=fstype))
            else:
                reasons.append(T_("Ardoise stick (not the boot medium): {device} carries the Ardoise label {label} "
                                  "({fstype})", device=devnode, label=repr(label), fstype=fstype))
    mounted = mountpoints(facts, system)
    if mounted:
        reasons.append(T_("mounted: {mountpoints}", mountpoints=", ".join(sorted(set(mounted)))))
    swap = bool(facts.devnums & system.swap_devnums)
    if swap:
        reasons.append(T_("active swap"))
    for dev, holders in sorted(facts.holders.items()):
        reasons.append(T_("in use by {holders} (RAID/LVM/device-mapper member: {device})", holders=", ".join(holders),
                          device=dev))
    # EBUSY is the kernel's own word that someone holds the device; it is only worth a
    # reason of its own when nothing above explains it (ZFS, a process using it exclusively).
    if facts.busy and not (mounted or swap or facts.holders):
        reasons.append(T_("in use: {why}", why=facts.busy))
    reasons += file_reasons(facts, system)
    if facts.read_only and not facts.force_ro:
        reasons.append(T_("read-only device"))
    if facts.size_bytes <= 0:
        reasons.append(T_("zero size (no medium or detached)"))
    if udev.device_is_optical(facts.properties):
        reasons.append(T_("optical drive"))
    excluded = {normalise_serial(s) for s in exclude_serials if s}
    hit = [s for s in facts.serials if s and normalise_serial(s) in excluded]
    if hit:
        reasons.append(T_("serial {serial} is excluded by config", serial=hit[0]))
    if not explicit and facts.transport in (Transport.LOOP, Transport.RAM):
        reasons.append(T_("{transport} device: out of scope unless named explicitly", transport=facts.transport.value))
    if not explicit and facts.is_file:
        reasons.append(T_("regular file: out of scope unless named explicitly"))
    return reasons


def file_reasons(facts: DeviceFacts, system: SystemState) -> list[str]:
    """A regular file (``--allow-file``) the system uses as a disk is protected like one:
    writing a loop device's backing file rewrites that disk under its mounted filesystem."""
    if facts.file_id is None:
        return []
    reasons = []
    for loop in system.loop_backing.get(facts.file_id, []):
        mounted = sorted({m.mountpoint for m in system.mounts if mount_devnum(m) in loop.devnums})
        if mounted:
            reasons.append(T_("backs loop device /dev/{name}, mounted: {mountpoints}", name=loop.name,
                              mountpoints=", ".join(mounted)))
        else:
            reasons.append(T_("backs loop device /dev/{name}", name=loop.name))
    if facts.file_id in system.mount_source_files:
        reasons.append(T_("mounted: {mountpoints}", mountpoints=", ".join(sorted(system.mount_source_files[facts.file_id]))))
    if facts.file_id in system.swap_files:
        reasons.append(T_("active swap file"))
    if facts.open_by:
        reasons.append(T_("open by {processes}", processes=", ".join(facts.open_by)))
    return reasons


def decide(
    facts: DeviceFacts, system: SystemState, *, explicit: bool, exclude_serials: Iterable[str] = ()
) -> tuple[bool, list[str]]:
    """(target, reasons). A target's reasons say why it is allowed, for the certificate."""
    reasons = protection_reasons(facts, system, explicit=explicit, exclude_serials=exclude_serials)
    if reasons:
        return False, reasons
    return True, [T_("named explicitly; no protection rule applies") if explicit else T_("no protection rule applies")]
