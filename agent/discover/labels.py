"""Filesystem labels read straight from the superblock, for the boot-medium rule.

Why not blkid: udev normally gives ``ID_FS_LABEL`` and we use it first. When udevd is not
running (containers, early boot, CI), running a tool per partition inside every safety check
would put a command into every caller's recorded test script. The two labels Ardoise looks
for are on filesystems whose label sits at a fixed offset: ISO 9660 (the image's volume id),
ext2/3/4 and FAT (the ARDOISE data partition). Reading 64 KiB read-only is harmless.
"""

from __future__ import annotations

import os

_ISO_PVD = 0x8000  # ECMA-119 §6.2.1: system area is 16 sectors of 2048 bytes
_EXT_SB = 1024


def parse_label(head: bytes) -> tuple[str | None, str | None]:
    """(fstype, label) from the first 64 KiB of a device, or (None, None)."""
    # ISO 9660 primary volume descriptor: type 1, "CD001", volume identifier at byte 40.
    pvd = head[_ISO_PVD : _ISO_PVD + 2048]
    if len(pvd) >= 72 and pvd[0] == 1 and pvd[1:6] == b"CD001":
        return "iso9660", pvd[40:72].decode("ascii", "replace").strip() or None
    # ext2/3/4: magic 0xEF53 at offset 56 of the superblock, volume name at 120 (16 bytes).
    sb = head[_EXT_SB : _EXT_SB + 1024]
    if len(sb) >= 136 and sb[56:58] == b"\x53\xef":
        return "ext4", sb[120:136].split(b"\0", 1)[0].decode("utf-8", "replace").strip() or None
    # FAT: boot sector signature 0x55AA; FAT32 keeps the label at 71, FAT12/16 at 43.
    if len(head) >= 512 and head[510:512] == b"\x55\xaa":
        if head[82:87] == b"FAT32":
            return "vfat", _fat_label(head[71:82])
        if head[54:57] == b"FAT":
            return "vfat", _fat_label(head[43:54])
    return None, None


def _fat_label(raw: bytes) -> str | None:
    label = raw.decode("ascii", "replace").strip()
    return None if label in ("", "NO NAME") else label


def read_label(devnode: str) -> tuple[str | None, str | None]:
    try:
        fd = os.open(devnode, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None, None
    try:
        return parse_label(os.pread(fd, 64 * 1024, 0))
    except OSError:
        return None, None
    finally:
        os.close(fd)
