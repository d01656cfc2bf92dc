"""Discover: which whole disks this machine has, and which of them may be written.

Public functions (the contract in notes/INTERFACES.md):

- ``list_disks(exclude_serials=(), explicit=())``: every whole disk, each with ``target``
  and ``reasons``;
- ``disk_for_path(path, allow_file=False, exclude_serials=())``: one named device;
- ``require_targets(paths, allow_file=False, exclude_serials=())``: the guard every
  destructive path calls; raises ``ProtectedDeviceError`` naming the device and the reason.
"""

from __future__ import annotations

import os
import stat
from typing import Iterable

from agent.discover import udev
from agent.discover.probe import facts_for_disk, facts_for_file, judge, udev_properties
from agent.discover.sysfs import Sysfs
from agent.discover.system import read_system_state
from agent.errors import DeviceError, ProtectedDeviceError
from agent import i18n
from agent.i18n import T_
from agent.records import Disk, Transport

__all__ = ["list_disks", "disk_for_path", "require_targets"]


def _enumerate_disk_names(sysfs: Sysfs) -> list[str]:
    try:
        import pyudev

        ctx = pyudev.Context()
        names = [d.sys_name for d in ctx.list_devices(subsystem="block", DEVTYPE="disk")]
    except Exception:  # noqa: BLE001 - no libudev: sysfs lists the same disks
        names = sysfs.disk_names()
    return sorted(set(names), key=lambda n: (len(n), n))


def list_disks(*, exclude_serials: Iterable[str] = (), explicit: Iterable[str] = ()) -> list[Disk]:
    """Every whole physical (or loop/ram) disk. Device-mapper and md volumes are left out:
    they are not disks but views of disks, and their members are listed (and protected)."""
    sysfs = Sysfs()
    system = read_system_state(sysfs)
    explicit_devnums = set()
    for path in explicit:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISBLK(st.st_mode):
            explicit_devnums.add(f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}")
    exclude_serials = list(exclude_serials)
    disks = []
    for name in _enumerate_disk_names(sysfs):
        if udev.device_is_stacked(udev_properties(name, sysfs)) or sysfs.slaves(name):
            continue
        if sysfs.read(sysfs.block_dir(name) / "hidden") == "1":
            continue  # NVMe multipath paths (nvme0c0n1): no device node, the namespace is listed
        named = sysfs.read(sysfs.block_dir(name) / "dev") in explicit_devnums
        facts, disk = facts_for_disk(name, sysfs, probe_busy=named)
        unused = disk.transport in (Transport.LOOP, Transport.RAM) and disk.size_bytes == 0
        if unused and not named:
            continue  # detached loop devices and unused zram: nothing there to list
        disks.append(judge(facts, disk, system, explicit=named, exclude_serials=exclude_serials))
    return disks


def stat_named(path: str) -> os.stat_result:
    """``os.stat`` of a path the user named, with the one-line error a missing device gets."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise DeviceError(T_("{path}: no such device", path=path)) from None
    except OSError as exc:
        raise DeviceError(f"{path}: {exc.strerror}") from None


def disk_for_path(path: str, *, allow_file: bool = False, exclude_serials: Iterable[str] = ()) -> Disk:
    """Resolve one named device (or, with ``allow_file``, a regular file) to a judged ``Disk``.

    A device named here counts as named explicitly: a free loop device may be a target.
    """
    st = stat_named(path)
    sysfs = Sysfs()
    if stat.S_ISREG(st.st_mode):
        if not allow_file:
            raise DeviceError(T_("{path} is a regular file, not a block device (files are allowed only with --allow-file)",
                                 path=path))
        facts, disk = facts_for_file(os.path.abspath(path))
        return judge(facts, disk, read_system_state(sysfs), explicit=True, exclude_serials=exclude_serials)
    if not stat.S_ISBLK(st.st_mode):
        raise DeviceError(T_("{path} is not a block device", path=path))
    devnum = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    d = sysfs.dir_for_devnum(devnum)
    if d is None:
        raise DeviceError(T_("{path}: the kernel does not know block device {devnum}", path=path, devnum=devnum))
    if sysfs.is_partition_dir(d):
        raise DeviceError(T_("{path} is a partition of {disk}; name the whole disk {disk}", path=path,
                             disk=f"/dev/{d.parent.name}"))
    name = d.name
    if udev.device_is_stacked(udev_properties(name, sysfs)) or sysfs.slaves(name):
        members = ", ".join(f"/dev/{s}" for s in sysfs.slaves(name)) or T_("its member disks")
        raise DeviceError(T_("{path} is a device-mapper/RAID volume; name the disks it is built on ({members})",
                             path=path, members=members))
    facts, disk = facts_for_disk(name, sysfs)
    return judge(facts, disk, read_system_state(sysfs), explicit=True, exclude_serials=exclude_serials)


def require_targets(
    paths: Iterable[str], *, allow_file: bool = False, exclude_serials: Iterable[str] = ()
) -> list[Disk]:
    """The named devices as ``Disk``s, all targets; else ``ProtectedDeviceError`` for the first
    protected one, naming it and why. Every destructive path calls this first."""
    exclude_serials = list(exclude_serials)
    disks: list[Disk] = []
    seen: dict[str, str] = {}
    for path in paths:
        disk = disk_for_path(path, allow_file=allow_file, exclude_serials=exclude_serials)
        key = disk.devnum or os.path.realpath(disk.path)
        if key in seen:
            raise DeviceError(T_("{path} and {other} are the same disk; name it once", path=path, other=seen[key]))
        seen[key] = path
        if not disk.target:
            raise ProtectedDeviceError(
                T_("refusing to write {device}: protected ({reasons})", device=disk.path, reasons=i18n.join("; ", disk.reasons)),
                device=disk.path,
                reasons=disk.reasons,
            )
        disks.append(disk)
    if not disks:
        raise DeviceError(T_("no device named"))
    return disks


def disk_for_name(name: str, *, exclude_serials: Iterable[str] = ()) -> Disk:
    """The judged ``Disk`` for a kernel name (sdb, nvme0n1) as enumeration sees it: not
    named explicitly, so loop devices stay out of scope. Used by the hot-plug watcher."""
    sysfs = Sysfs()
    facts, disk = facts_for_disk(name, sysfs, probe_busy=False)
    return judge(facts, disk, read_system_state(sysfs), explicit=False, exclude_serials=exclude_serials)
