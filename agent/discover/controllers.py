"""Storage controllers, and whether the disks behind them can be reached.

Why: a disk the agent cannot see is never wiped, and a machine whose only disk hides
behind Intel RST "RAID" mode or a VMD domain would otherwise power off with no failure on
screen while the donor's data leaves the workshop. So every PCI storage controller is
listed with the driver bound to it and the disks the kernel shows beneath it, and a
controller that hides its disks makes the machine FAILED before anything is written.

Everything is read from sysfs (the kernel's own view: class, driver symlink, and which
block devices sit under the controller in the device tree) and from the kernel log; only
the human names come from ``lspci`` through the command gateway. The decisions
(``controller_problem``, ``remap_warnings``, ``storage_state``) are pure functions of
those readings, tested on recorded trees of real machines (tests/fixtures/sysfs/).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import time
from pathlib import Path
from typing import Iterable

from agent import commands
from agent.errors import ArdoiseError
from agent.i18n import T_
from agent.records import Disk, StorageController, StorageReport, StorageState

log = logging.getLogger("ardoise.discover.controllers")

# The one sentence the screen and the audit report give the technician.
ADVICE = T_("storage not reachable: set SATA mode to AHCI in the firmware setup (F2 / Del)")

# PCI class/subclass (the first four hex digits of sysfs "class") -> kind. Base class 01 is
# mass storage; 0805 is an SD host controller (SD cards and soldered eMMC).
_KINDS = {
    "0100": "scsi",
    "0101": "ide",
    "0104": "raid",
    "0105": "ata",
    "0106": "sata",
    "0107": "sas",
    "0108": "nvme",
    "0805": "sd_host",
}

_LABELS = {
    "scsi": "SCSI", "ide": "IDE", "raid": "RAID-mode", "vmd": "VMD", "ata": "ATA", "sata": "SATA",
    "ahci": "AHCI", "sas": "SAS", "nvme": "NVMe", "sd_host": "SD host", "usb": "USB",
}  # fmt: skip

# Intel Volume Management Device IDs the Linux vmd driver knows (drivers/pci/controller/vmd.c);
# a VMD is class 0104 like RST RAID mode, but its NVMe drives live in a PCI domain of its own.
VMD_DEVICE_IDS = {"201d", "28c0", "467f", "4c3d", "7d0b", "9a0b", "a77f", "ad0b", "b60b", "b06f", "b07f"}

# drivers/ata/ahci.c, ahci_remap_check(): "Found %u remapped NVMe devices." on the AHCI function.
_REMAP = re.compile(r"\bahci (?P<slot>[0-9a-f]{4,}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]): Found (?P<n>\d+) remapped NVMe devices")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def kind_of(class_code: str, device_id: str | None, driver: str | None) -> str | None:
    """What a PCI function is, from its class code: None when it is not storage."""
    kind = _KINDS.get(class_code[:4])
    if kind == "raid" and (driver == "vmd" or (device_id or "").lower() in VMD_DEVICE_IDS):
        return "vmd"
    if kind == "sata" and class_code[4:6] == "01":
        return "ahci"
    return kind


def _block_devices(sys_root: Path) -> dict[str, str]:
    """Every whole block device -> its real path in the device tree."""
    out = {}
    base = sys_root / "block"
    for entry in sorted(base.glob("*")) if base.is_dir() else []:
        out[entry.name] = os.path.realpath(entry)
    return out


def read_controllers(sys_root: str = "/sys") -> tuple[list[StorageController] | None, str | None]:
    """Every storage controller in /sys/bus/pci/devices, with its driver and disks."""
    root = Path(sys_root)
    base = root / "bus" / "pci" / "devices"
    if not base.is_dir():
        return None, f"no {base} (no PCI bus, or sysfs not mounted)"
    blocks = _block_devices(root)
    found = []
    for dev in sorted(base.glob("*")):
        class_code = (_read(dev / "class") or "").removeprefix("0x").lower()
        device_id = (_read(dev / "device") or "").removeprefix("0x") or None
        driver = Path(os.path.realpath(dev / "driver")).name if (dev / "driver").exists() else None
        kind = kind_of(class_code, device_id, driver)
        real = os.path.realpath(dev)
        beneath = [name for name, path in blocks.items() if path.startswith(real + "/")]
        if kind is None:
            # USB host controllers are listed only with disks beneath them (sticks, USB
            # drives): their other devices are keyboards and cameras, not storage.
            if class_code[:4] != "0c03" or not beneath:
                continue
            kind = "usb"
        found.append(
            StorageController(
                slot=dev.name,
                class_code=class_code,
                kind=kind,
                vendor_id=(_read(dev / "vendor") or "").removeprefix("0x") or None,
                device_id=device_id,
                driver=driver,
                disks=beneath,
            )
        )
    return found, None


# An eMMC's boot partitions and RPMB sit beneath its host beside the user area.
_EMMC_EXTRA = re.compile(r"^mmcblk\d+(boot\d+|rpmb)$")


def controller_problem(c: StorageController) -> str | None:
    """Why the storage behind this controller cannot be reached, or None when it can.

    Intel RST RAID mode bound by ahci with its disks visible is fine: they are wiped as
    usual. Only what hides a disk fails the machine."""
    kind = _LABELS.get(c.kind, c.kind)
    label = (T_("{kind} controller {slot} ({name})", kind=kind, slot=c.slot, name=c.name) if c.name
             else T_("{kind} controller {slot}", kind=kind, slot=c.slot))
    if c.kind == "usb":
        return None
    if c.driver is None:
        return T_("{label} has no driver bound: the disks behind it cannot be seen", label=label)
    if c.kind == "vmd" and not c.disks:
        return T_("{label} shows no NVMe drive in its domain: VMD hides it", label=label)
    if c.kind == "raid" and not c.disks:
        return T_("{label} shows no disk beneath it: firmware RAID hides its drives", label=label)
    return None


def remap_warnings(lines: Iterable[str]) -> list[tuple[str, int, str]]:
    """The kernel's "Found N remapped NVMe devices" lines: (AHCI slot, N, the line)."""
    out = []
    for line in lines:
        m = _REMAP.search(line)
        if m and int(m["n"]) > 0:
            out.append((m["slot"], int(m["n"]), line.strip()))
    return out


def read_kernel_log(path: str = "/dev/kmsg") -> tuple[list[str] | None, str | None]:
    """The kernel's ring buffer, one message per line (continuation lines dropped).

    /dev/kmsg is read without blocking: each read returns one record, and EAGAIN means
    the end. It is the kernel's own data, like sysfs, so no tool is needed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return None, f"cannot read the kernel log {path}: {exc.strerror or exc}"
    chunks: list[bytes] = []
    try:
        while True:
            try:
                data = os.read(fd, 8192)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # a record was overwritten while we read: go on
                    continue
                return None, f"cannot read the kernel log {path}: {exc.strerror or exc}"
            if not data:
                break  # a regular file (a recording) ends; /dev/kmsg answers EAGAIN instead
            chunks.append(data)
    finally:
        os.close(fd)
    lines = []
    for line in b"".join(chunks).decode(errors="replace").splitlines():
        if not line or line.startswith(" "):
            continue  # " SUBSYSTEM=pci" and " DEVICE=+pci:..." continuation lines
        head, sep, message = line.partition(";")
        lines.append(message if sep and re.fullmatch(r"\d+,\d+,\d+,[^;]*", head) else line)
    return lines, None


_PCI_SLOT = re.compile(r"^[0-9a-f]{4,}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
_SCSI_ADDR = re.compile(r"^(\d+):(\d+):(\d+):(\d+)$")
# Drivers bound to class 0104 that show the drives themselves (RST RAID mode under ahci,
# NVMe behind VMD or remapping): their disks are drives, not volumes.
_DRIVE_DRIVERS = {"ahci", "vmd", "intel-nvme-remap"}
# megaraid_sas puts pass-through drives (JBOD, "system PDs") on SCSI channels 0-1 and the
# logical drives on channel 2 and up (MEGASAS_MAX_PD_CHANNELS in megaraid_sas.h).
_MEGARAID_LD_CHANNEL = 2


def raid_volume_of(block_dir: str | Path) -> str | None:
    """"driver at slot" when this block device is a volume of a hardware RAID controller.

    The nearest PCI function above the block device in the device tree decides: a RAID
    class controller (0104) with a RAID driver presents volumes; under megaraid_sas only
    SCSI channel 2 and up are volumes, lower channels are drives passed through."""
    real = Path(os.path.realpath(block_dir))
    channel = None
    for part in (real, *real.parents):
        m = _SCSI_ADDR.match(part.name)
        if m and channel is None:
            channel = int(m[2])
        if not _PCI_SLOT.match(part.name):
            continue
        class_code = (_read(part / "class") or "").removeprefix("0x")
        if not class_code.startswith("0104"):
            return None
        driver = Path(os.path.realpath(part / "driver")).name if (part / "driver").exists() else None
        if driver in _DRIVE_DRIVERS:
            return None
        if driver == "megaraid_sas" and channel is not None and channel < _MEGARAID_LD_CHANNEL:
            return None
        return f"{driver or 'no driver'} at {part.name}"
    return None


def lspci_names() -> dict[str, str]:
    """PCI slot (with domain) -> device name, from ``lspci -D -mm -nn``; {} without lspci."""
    from agent.audit.machine import parse_lspci_mm

    try:
        result = commands.run(["lspci", "-D", "-mm", "-nn"], timeout=30)
    except ArdoiseError as exc:
        log.info("lspci unavailable, controller names left empty: %s", exc)
        return {}
    return {slot: device for slot, (_vendor, device) in parse_lspci_mm(result.stdout).items() if device}


def storage_state(
    controllers: list[StorageController] | None,
    kernel_lines: list[str] | None,
    disks: list[Disk],
    *,
    expect_disks: bool = True,
    listed: list[Disk] | None = None,
) -> StorageReport:
    """The machine's storage state. Each controller's ``problem`` is filled in.

    Unreachable storage wins over everything: a machine with one visible disk and one
    hidden NVMe is FAILED, not passed. With nothing hidden and no target disk, the
    machine has NO DISK FOUND (unless ``expect_disks`` is False: a shelf station waits)."""
    reasons = []
    for c in controllers or []:
        c.problem = controller_problem(c)
        if c.problem:
            reasons.append(c.problem)
    warnings = remap_warnings(kernel_lines or [])
    for slot, n, _line in warnings:
        reasons.append(T_("the kernel found {count} NVMe drive(s) remapped behind the SATA controller {slot} "
                          "(Intel RST)",
                           count=n, slot=slot))
        for c in controllers or []:
            if c.slot == slot and not c.problem:
                c.problem = T_("hides {count} remapped NVMe drive(s)", count=n)
    # ``listed``: every disk discover saw, when ``disks`` are only the ones named as targets.
    known = {d.name for d in (disks if listed is None else listed)}
    # A shelf station (expect_disks False) takes late disks through its watcher.
    late = []
    for c in (controllers or []) if expect_disks else []:
        for name in c.disks:
            if name not in known and c.kind != "usb" and not _EMMC_EXTRA.match(name):
                # Beneath a controller but not among the disks the run listed: it was probed
                # after the scan, and nothing will sanitize it in this run.
                late.append(name)
                reasons.append(T_("{disk} beneath {slot} appeared after the disks were listed: it is not sanitized",
                                   disk=name, slot=c.slot))
    report = StorageReport(
        state=StorageState.OK, controllers=controllers, kernel_warnings=[line for _s, _n, line in warnings],
        late_disks=late,
    )
    if reasons:
        report.state, report.reasons, report.advice = StorageState.STORAGE_UNREACHABLE, reasons, ADVICE
    elif expect_disks and not any(d.target for d in disks):
        report.state = StorageState.NO_DISK_FOUND
        protected = [d for d in disks if not d.target]
        report.reasons = [T_("no disk to sanitize was found ({count} protected)", count=len(protected)) if protected
                          else T_("no disk to sanitize was found")]
    return report


def check_storage(
    disks: list[Disk],
    *,
    expect_disks: bool = True,
    sys_root: str = "/sys",
    kmsg: str = "/dev/kmsg",
    names: bool = True,
    settle_s: float = 0.0,
    sleep=time.sleep,
    listed: list[Disk] | None = None,
) -> StorageReport:
    """Read the controllers and the kernel log, and decide (see ``storage_state``).

    ``settle_s``: a RAID or VMD controller may still be scanning its bus (the kernel scans
    SCSI hosts asynchronously, after udev settled); while a controller shows no disk or no
    driver, read sysfs again every second for up to this long before deciding."""
    controllers, why = read_controllers(sys_root)
    waited = 0.0
    while controllers and waited < settle_s and any(controller_problem(c) for c in controllers):
        sleep(1.0)
        waited += 1.0
        controllers, why = read_controllers(sys_root)
    kernel_lines, kwhy = read_kernel_log(kmsg)
    if controllers and names:
        named = lspci_names()
        for c in controllers:
            c.name = named.get(c.slot)
    report = storage_state(controllers, kernel_lines, disks, expect_disks=expect_disks, listed=listed)
    if why:
        report.missing["controllers"] = why
    if kwhy:
        report.missing["kernel_log"] = kwhy
    for reason in report.reasons:
        log.warning("storage: %s", reason)
    return report
