"""Gathering the facts about one whole disk from udev and sysfs, and turning them into a
``Disk``. The decisions themselves live in ``udev`` (classification) and ``protect``."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Iterable, Mapping

from agent.discover import labels, udev
from agent.discover.controllers import raid_volume_of
from agent.discover.protect import DeviceFacts, decide, mountpoints
from agent.discover.sysfs import Sysfs
from agent.discover.system import SystemState
from agent.records import Disk, Media, Transport, UsbBridge

# eMMC hardware boot partitions: written only after their force_ro switch is cleared.
EMMC_BOOT = re.compile(r"^mmcblk\d+boot\d+$")

_context = None


def _udev_context():
    global _context
    if _context is None:
        import pyudev

        _context = pyudev.Context()
    return _context


def udev_properties(name: str, sysfs: Sysfs) -> dict[str, str]:
    """udev's properties for a block device; the kernel's uevent when udev has none.

    Without udevd, pyudev still returns the kernel's own properties (DEVNAME, DEVPATH,
    DEVTYPE, MAJOR, MINOR), which is all the safety rules strictly need.
    """
    try:
        import pyudev

        device = pyudev.Devices.from_name(_udev_context(), "block", name)
        props = {str(k): str(v) for k, v in device.properties.items()}
        if props:
            return props
    except Exception:  # noqa: BLE001 - pyudev raises many kinds; fall back to sysfs
        pass
    d = sysfs.block_dir(name)
    props = {"SUBSYSTEM": "block", "DEVPATH": str(d).removeprefix(str(sysfs.root))}
    for line in (sysfs.read(d / "uevent") or "").splitlines():
        key, _, value = line.partition("=")
        if key:
            props[key] = value
    if "DEVNAME" in props and not props["DEVNAME"].startswith("/"):
        props["DEVNAME"] = "/dev/" + props["DEVNAME"]
    return props


def _first(*values: str | None) -> str | None:
    for v in values:
        if v and v.strip():
            return " ".join(v.split())
    return None


def _usb_bridge_from_sysfs(block_dir: Path, sysfs: Sysfs) -> UsbBridge | None:
    """Without udev: walk up the device path to the USB device, which has idVendor/idProduct."""
    d = block_dir
    while d != d.parent and str(d).startswith(str(sysfs.root)):
        if (d / "idVendor").exists():
            name = " ".join(filter(None, [sysfs.read(d / "manufacturer"), sysfs.read(d / "product")]))
            return UsbBridge(vendor_id=sysfs.read(d / "idVendor"), product_id=sysfs.read(d / "idProduct"), name=name or None)
        d = d.parent
    return None


def _busy(devnode: str) -> str | None:
    """An exclusive open fails with EBUSY when the kernel has claimed the device (mounted,
    swap, dm/md member): a last check that does not depend on parsing anything."""
    try:
        fd = os.open(devnode, os.O_RDONLY | os.O_EXCL | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            return "exclusive open refused (EBUSY): claimed by the kernel"
        return None
    os.close(fd)
    return None


# sysfs attributes (relative to /sys/class/block/<name>) that identify and size a disk.
SYSFS_ATTRS = (
    "size",
    "ro",
    "force_ro",  # eMMC boot partitions
    "removable",
    "queue/rotational",
    "queue/logical_block_size",
    "queue/physical_block_size",
    "serial",  # virtio
    "wwid",
    "device/model",
    "device/name",  # mmc
    "device/vendor",
    "device/serial",  # nvme, mmc
    "device/wwid",  # nvme
    "device/firmware_rev",  # nvme
    "device/rev",  # scsi
    "device/fwrev",  # mmc
)


def read_sysattrs(d: Path, sysfs: Sysfs) -> dict[str, str]:
    attrs = {}
    for key in SYSFS_ATTRS:
        value = sysfs.read(d / key)
        if value is not None:
            attrs[key] = value
    return attrs


def _not_hex(value: str | None) -> str | None:
    return None if value is None or value.startswith("0x") else value


def _int(attrs: Mapping[str, str], key: str, default: int) -> int:
    try:
        return int(attrs[key])
    except (KeyError, ValueError):
        return default


def disk_from_properties(name: str, props: Mapping[str, str], attrs: Mapping[str, str]) -> Disk:
    """A ``Disk`` (identity and classification, not yet judged) from udev properties and
    sysfs attributes. Pure, so it is tested on recorded devices (tests/fixtures/udev/)."""
    transport = udev.device_get_transport(props)
    rotational = None if "queue/rotational" not in attrs else attrs["queue/rotational"] == "1"
    removable = attrs.get("removable") == "1"
    return Disk(
        path=props.get("DEVNAME") or f"/dev/{name}",
        name=name,
        transport=transport,
        media=udev.device_get_media(props, transport, rotational=rotational, removable=removable),
        model=_first(udev.device_get_model(props), attrs.get("device/model"), attrs.get("device/name")),
        # virtio and nvme put a PCI vendor id (0x1af4) in device/vendor: not a name.
        vendor=_first(udev.device_get_vendor(props), _not_hex(attrs.get("device/vendor"))),
        serial=_first(
            udev.device_get_serial(props, transport), attrs.get("device/serial"), attrs.get("serial")
        ),
        wwn=_first(udev.device_get_wwn(props), attrs.get("device/wwid"), attrs.get("wwid")),
        firmware=_first(
            udev.device_get_firmware(props),
            attrs.get("device/firmware_rev"),
            attrs.get("device/rev"),
            attrs.get("device/fwrev"),
        ),
        size_bytes=_int(attrs, "size", 0) * 512,  # sysfs counts 512-byte units, whatever the sector size
        logical_sector_size=_int(attrs, "queue/logical_block_size", 512),
        physical_sector_size=_int(attrs, "queue/physical_block_size", 512),
        rotational=rotational,
        removable=removable,
        read_only=attrs.get("ro") == "1",
        force_ro=attrs.get("force_ro") == "1" and EMMC_BOOT.match(name) is not None,
        usb_bridge=_bridge_from_props(props) if transport == Transport.USB else None,
        devnum=f"{props['MAJOR']}:{props['MINOR']}" if "MAJOR" in props and "MINOR" in props else None,
    )


def _bridge_from_props(props: Mapping[str, str]) -> UsbBridge | None:
    vendor, product, name = udev.device_get_usb_ids(props)
    if vendor is None and product is None:
        return None
    return UsbBridge(vendor_id=vendor, product_id=product, name=name)


def facts_for_disk(name: str, sysfs: Sysfs, *, probe_busy: bool = True) -> tuple[DeviceFacts, Disk]:
    """``probe_busy`` tries an exclusive open: only for devices someone named, because an
    O_EXCL open of a device another process is setting up (mkfs, mount) makes theirs fail."""
    d = sysfs.block_dir(name)
    props = udev_properties(name, sysfs)
    disk = disk_from_properties(name, props, read_sysattrs(d, sysfs))
    devnode = disk.path
    transport = disk.transport
    disk.sysfs_path = str(d)
    disk.devnum = sysfs.read(d / "dev") or disk.devnum
    if transport == Transport.USB and disk.usb_bridge is None:
        disk.usb_bridge = _usb_bridge_from_sysfs(d, sysfs)
    disk.raid_volume = raid_volume_of(d)
    label_list = [(devnode, *udev.fs_label(props))]
    for part in sysfs.partitions(name):
        part_props = udev_properties(part, sysfs)
        label_list.append((part_props.get("DEVNAME") or f"/dev/{part}", *udev.fs_label(part_props)))
    # When udev did not probe the filesystems, read the labels ourselves (see labels.py).
    label_list = [
        (node, fstype, label) if fstype else (node, *labels.read_label(node)) for node, fstype, label in label_list
    ]
    serials = [s for s in (disk.serial, disk.wwn, props.get("ID_SERIAL"), props.get("ID_SERIAL_SHORT")) if s]
    facts = DeviceFacts(
        name=name,
        devnode=devnode,
        transport=transport,
        properties=props,
        size_bytes=disk.size_bytes,
        read_only=disk.read_only,
        force_ro=disk.force_ro,
        serials=serials,
        devnums=sysfs.stacked_devnums(name),
        holders=sysfs.holders_in_use(name),
        labels=label_list,
        busy=_busy(devnode) if probe_busy else None,
    )
    return facts, disk


def facts_for_file(path: str) -> tuple[DeviceFacts, Disk]:
    st = os.stat(path)
    read_only = not os.access(path, os.W_OK)
    disk = Disk(
        path=path,
        name=os.path.basename(path),
        transport=Transport.FILE,
        media=Media.VIRTUAL,
        size_bytes=st.st_size,
        read_only=read_only,
        rotational=None,
    )
    fid = (st.st_dev, st.st_ino)
    facts = DeviceFacts(
        name=disk.name,
        devnode=path,
        transport=Transport.FILE,
        size_bytes=st.st_size,
        read_only=read_only,
        is_file=True,
        file_id=fid,
        open_by=processes_holding(fid),
    )
    return facts, disk


def processes_holding(fid: tuple[int, int], proc: str = "/proc") -> list[str]:
    """Other processes with the file open ("pid 812 (qemu-system-x86)"): a file has no
    EBUSY, so this is how a VM image in use or a database file is recognised."""
    holders = []
    me = os.getpid()
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit() and int(p) != me]
    except OSError:
        return holders
    for pid in pids:
        fd_dir = os.path.join(proc, pid, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or a kernel thread
        for fd in fds:
            try:
                st = os.stat(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == fid:
                try:
                    with open(os.path.join(proc, pid, "comm")) as f:
                        comm = f.read().strip()
                except OSError:
                    comm = "?"
                holders.append(f"pid {pid} ({comm})")
                break
    return holders


def judge(
    facts: DeviceFacts,
    disk: Disk,
    system: SystemState,
    *,
    explicit: bool,
    exclude_serials: Iterable[str] = (),
) -> Disk:
    disk.mountpoints = sorted(set(mountpoints(facts, system)))
    disk.target, disk.reasons = decide(facts, system, explicit=explicit, exclude_serials=exclude_serials)
    return disk
