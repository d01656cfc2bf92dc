"""What the running system is using: mounts, active swap, and the disks it booted from.

The parsers are pure functions over the text of /proc/self/mountinfo and /proc/swaps so
that they can be tested on recorded files; ``read_system_state`` is the only part that
reads the live system.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field

from agent.discover.sysfs import Sysfs

# Where live systems mount the medium they booted from: Debian live-boot, older live-boot,
# dracut's dmsquash-live and casper (Ubuntu). Any of them present means "that disk is the stick".
LIVE_MEDIUM_MOUNTS = ("/run/live/medium", "/lib/live/mount/medium", "/run/initramfs/live", "/cdrom")


@dataclass(frozen=True)
class Mount:
    devnum: str  # "major:minor" as mountinfo reports it (0:N for virtual filesystems)
    mountpoint: str
    fstype: str
    source: str


# A regular file's identity: (st_dev, st_ino). Paths lie (symlinks, bind mounts, a loop's
# backing path as its creator spelled it); the inode does not.
FileId = tuple[int, int]


@dataclass(frozen=True)
class LoopUse:
    """A loop device and the devnums (itself, its partitions, what is stacked on them)."""

    name: str
    devnums: frozenset[str] = frozenset()


@dataclass
class SystemState:
    """The facts about the running system that protect disks, gathered once per decision."""

    mounts: list[Mount] = field(default_factory=list)
    swap_devnums: set[str] = field(default_factory=set)
    # whole-disk name -> the boot signals that point at it ("holds /", "holds /run/live/medium")
    boot_signals: dict[str, list[str]] = field(default_factory=dict)
    # For --allow-file targets: the regular files the system is using as disks.
    swap_files: dict[FileId, str] = field(default_factory=dict)  # active swap files -> path
    loop_backing: dict[FileId, list[LoopUse]] = field(default_factory=dict)  # file -> loops on it
    mount_source_files: dict[FileId, list[str]] = field(default_factory=dict)  # file -> mountpoints


def file_id(path: str) -> FileId | None:
    """The identity of the regular file at ``path``, or None (missing, not a regular file)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def loop_backing_files(sysfs: Sysfs) -> dict[FileId, list[LoopUse]]:
    """Which regular file each attached loop device reads and writes."""
    out: dict[FileId, list[LoopUse]] = {}
    for name in sysfs.disk_names():
        if not name.startswith("loop"):
            continue
        backing = sysfs.read(sysfs.block_dir(name) / "loop" / "backing_file")
        if not backing:
            continue
        fid = file_id(backing.removesuffix(" (deleted)"))
        if fid is not None:
            out.setdefault(fid, []).append(LoopUse(name, frozenset(sysfs.stacked_devnums(name))))
    return out


def _unescape(field_text: str) -> str:
    # mountinfo and /proc/swaps escape space, tab, newline and backslash as \ooo (octal).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field_text)


def parse_mountinfo(text: str) -> list[Mount]:
    """Parse /proc/self/mountinfo (proc(5)): fields, optional fields, ``-``, fstype, source."""
    mounts = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 10 or "-" not in parts[6:]:
            continue
        sep = parts.index("-", 6)
        mounts.append(
            Mount(
                devnum=parts[2],
                mountpoint=_unescape(parts[4]),
                fstype=parts[sep + 1],
                source=_unescape(parts[sep + 2]) if len(parts) > sep + 2 else "",
            )
        )
    return mounts


def parse_swaps(text: str) -> list[str]:
    """The file names of active swap areas from /proc/swaps (first line is a header)."""
    names = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if parts:
            names.append(_unescape(parts[0]))
    return names


def devnum_of_path(path: str) -> str | None:
    """``major:minor`` of a block device node, or None if ``path`` is not one."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISBLK(st.st_mode):
        return None
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def mount_devnum(mount: Mount) -> str | None:
    """The block device a mount sits on. btrfs and some others report an anonymous 0:N
    device in mountinfo; their source path then names the real device."""
    if not mount.devnum.startswith("0:"):
        return mount.devnum
    if mount.source.startswith("/dev/"):
        return devnum_of_path(mount.source)
    return None


def read_system_state(sysfs: Sysfs | None = None, *, proc: str = "/proc") -> SystemState:
    sysfs = sysfs or Sysfs()
    try:
        with open(os.path.join(proc, "self/mountinfo")) as f:
            mounts = parse_mountinfo(f.read())
    except OSError:
        mounts = []
    try:
        with open(os.path.join(proc, "swaps")) as f:
            swap_names = parse_swaps(f.read())
    except OSError:
        swap_names = []
    swap_devnums = {d for d in (devnum_of_path(n) for n in swap_names) if d}

    boot: dict[str, list[str]] = {}
    for m in mounts:
        if m.mountpoint == "/" or m.mountpoint in LIVE_MEDIUM_MOUNTS:
            devnum = mount_devnum(m)
            if devnum is None:
                continue  # overlay / tmpfs root of a live system: the live medium mount says where
            for disk in sysfs.whole_disks_under(devnum):
                boot.setdefault(disk, []).append(f"holds {m.mountpoint}")
    swap_files = {fid: n for n in swap_names if (fid := file_id(n)) is not None}
    # A filesystem mounted straight from a file (FUSE image mounts; the kernel's own image
    # mounts go through a loop device, covered by loop_backing).
    sources: dict[FileId, list[str]] = {}
    for m in mounts:
        if m.source.startswith("/") and not m.source.startswith("/dev/"):
            fid = file_id(m.source)
            if fid is not None:
                sources.setdefault(fid, []).append(m.mountpoint)
    return SystemState(mounts=mounts, swap_devnums=swap_devnums, boot_signals=boot, swap_files=swap_files,
                       loop_backing=loop_backing_files(sysfs), mount_source_files=sources)
