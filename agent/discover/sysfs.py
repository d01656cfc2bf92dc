"""Reading block-device facts from sysfs.

sysfs is the kernel's own view and is there even when udevd is not running (containers,
early boot, this project's CI VM), so the safety rules lean on it: read-only flag, size,
partitions, holders (device-mapper, md RAID, LVM stacked on a disk) and slaves. ``root``
can point at a directory tree shaped like /sys, which is how the tests build odd machines.
"""

from __future__ import annotations

import os
from pathlib import Path

_MAX_DEPTH = 8  # stacked devices (dm on md on partitions...) never go this deep in practice


class Sysfs:
    def __init__(self, root: str = "/sys") -> None:
        self.root = Path(root)

    # -- raw access -------------------------------------------------------------------
    def read(self, path: Path | str, default: str | None = None) -> str | None:
        try:
            return Path(path).read_text(errors="replace").strip()
        except OSError:
            return default

    def read_int(self, path: Path | str, default: int | None = None) -> int | None:
        text = self.read(path)
        try:
            return int(text) if text is not None else default
        except ValueError:
            return default

    def list(self, path: Path | str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except OSError:
            return []

    # -- block devices ----------------------------------------------------------------
    def block_dir(self, name: str) -> Path:
        """The real directory of a disk or partition named ``name`` (sda, sda1, dm-0)."""
        return Path(os.path.realpath(self.root / "class" / "block" / name))

    def dir_for_devnum(self, devnum: str) -> Path | None:
        link = self.root / "dev" / "block" / devnum
        if not link.exists():
            return None
        return Path(os.path.realpath(link))

    def is_partition_dir(self, d: Path) -> bool:
        return (d / "partition").exists()

    def disk_names(self) -> list[str]:
        return self.list(self.root / "block")

    def partitions(self, disk: str) -> list[str]:
        d = self.block_dir(disk)
        return [n for n in self.list(d) if (d / n / "partition").exists()]

    def holders(self, name: str) -> list[str]:
        return self.list(self.block_dir(name) / "holders")

    def slaves(self, name: str) -> list[str]:
        return self.list(self.block_dir(name) / "slaves")

    def holders_in_use(self, disk: str) -> dict[str, list[str]]:
        """{device (disk or partition) -> its holders}: something (dm, md, LVM, bcache) has
        claimed it. The kernel only lists a holder while the stacked device exists."""
        found = {}
        for name in [disk, *self.partitions(disk)]:
            h = self.holders(name)
            if h:
                found[name] = h
        return found

    def whole_disks_under(self, devnum: str, _depth: int = 0) -> set[str]:
        """The whole disks a device (given as major:minor) ultimately lives on.

        A partition lives on its disk; a device-mapper or md device on its slaves; a loop
        device on whatever holds its backing file (a live system's squashfs sits on a loop
        device backed by a file on the stick).
        """
        if _depth > _MAX_DEPTH:
            return set()
        d = self.dir_for_devnum(devnum)
        if d is None:
            return set()
        if self.is_partition_dir(d):
            return {d.parent.name}
        name = d.name
        disks: set[str] = set()
        for slave in self.slaves(name):
            slave_devnum = self.read(self.block_dir(slave) / "dev")
            if slave_devnum:
                disks |= self.whole_disks_under(slave_devnum, _depth + 1)
        backing = self.read(d / "loop" / "backing_file")
        if backing:
            try:
                st = os.stat(backing)
                disks |= self.whole_disks_under(f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}", _depth + 1)
            except OSError:
                pass
        return disks or {name}

    def stacked_devnums(self, disk: str) -> set[str]:
        """major:minor of the disk, its partitions, and everything stacked on them: a mount
        or a swap on any of these means the disk is in use."""
        seen: set[str] = set()
        todo = [disk, *self.partitions(disk)]
        names_seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in names_seen or len(names_seen) > 256:
                continue
            names_seen.add(name)
            devnum = self.read(self.block_dir(name) / "dev")
            if devnum:
                seen.add(devnum)
            for holder in self.holders(name):
                todo.append(holder)
                todo.extend(self.partitions(holder))
        return seen
