"""Mounts, swap and the boot disk, from recorded /proc files and sysfs-shaped trees."""

from __future__ import annotations

import os
from pathlib import Path

from agent.discover.sysfs import Sysfs
from agent.discover.system import parse_mountinfo, parse_swaps

PROC = Path(__file__).parent.parent / "fixtures" / "proc"


def test_root_mount_of_this_vm_is_found_on_vda():
    mounts = parse_mountinfo((PROC / "mountinfo-vm-root-on-vda.txt").read_text())
    root = next(m for m in mounts if m.mountpoint == "/")
    assert (root.devnum, root.fstype, root.source) == ("254:0", "ext4", "/dev/vda")


def test_mountinfo_escapes_and_optional_fields_are_handled():
    text = (
        "36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue\n"
        "37 35 0:45 / /run/live/medium ro - iso9660 /dev/sdb ro\n"
        "garbage line\n"
    )
    mounts = parse_mountinfo(text)
    assert [(m.devnum, m.mountpoint, m.fstype, m.source) for m in mounts] == [
        ("98:0", "/mnt/my disk", "ext3", "/dev/root"),
        ("0:45", "/run/live/medium", "iso9660", "/dev/sdb"),
    ]


def test_swaps_lists_active_swap_areas():
    text = (
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
        "/dev/sda2                               partition\t8388604\t\t0\t\t-2\n"
        "/swap\\040file                           file\t\t1048572\t\t0\t\t-3\n"
    )
    assert parse_swaps(text) == ["/dev/sda2", "/swap file"]
    assert parse_swaps((PROC / "swaps-none.txt").read_text()) == []


def _block(root: Path, devpath: str, devnum: str, *, partition: bool = False) -> Path:
    """Create a sysfs-shaped device directory and its /sys/dev/block and /sys/class/block links."""
    d = root / devpath.lstrip("/")
    d.mkdir(parents=True)
    (d / "dev").write_text(devnum + "\n")
    (d / "holders").mkdir()
    (d / "slaves").mkdir()
    if partition:
        (d / "partition").write_text("1\n")
    for link_dir in (root / "dev" / "block", root / "class" / "block"):
        link_dir.mkdir(parents=True, exist_ok=True)
    os.symlink(d, root / "dev" / "block" / devnum)
    os.symlink(d, root / "class" / "block" / d.name)
    return d


def _stacked_machine(tmp_path: Path) -> Path:
    """sda1 + sdb1 form md127; LVM's dm-0 sits on md127; / is on dm-0."""
    root = tmp_path / "sys"
    sda = _block(root, "devices/pci/ata1/block/sda", "8:0")
    sda1 = _block(root, "devices/pci/ata1/block/sda/sda1", "8:1", partition=True)
    _block(root, "devices/pci/ata2/block/sdb", "8:16")
    sdb1 = _block(root, "devices/pci/ata2/block/sdb/sdb1", "8:17", partition=True)
    _block(root, "devices/pci/ata3/block/sdc", "8:32")
    md = _block(root, "devices/virtual/block/md127", "9:127")
    dm = _block(root, "devices/virtual/block/dm-0", "253:0")
    for member in (sda1, sdb1):
        os.symlink(md, member / "holders" / "md127")
        os.symlink(member, md / "slaves" / member.name)
    os.symlink(dm, md / "holders" / "dm-0")
    os.symlink(md, dm / "slaves" / "md127")
    assert sda.exists()
    return root


def test_root_on_lvm_on_raid_resolves_to_every_member_disk(tmp_path):
    sysfs = Sysfs(str(_stacked_machine(tmp_path)))
    assert sysfs.whole_disks_under("253:0") == {"sda", "sdb"}
    assert sysfs.whole_disks_under("8:1") == {"sda"}
    assert sysfs.whole_disks_under("8:32") == {"sdc"}
    assert sysfs.whole_disks_under("99:99") == set()


def test_raid_member_disk_reports_its_holders_and_stacked_devices(tmp_path):
    sysfs = Sysfs(str(_stacked_machine(tmp_path)))
    assert sysfs.holders_in_use("sda") == {"sda1": ["md127"]}
    assert sysfs.holders_in_use("sdc") == {}
    # A mount of dm-0 (253:0) is a mount "on" sda: it is in the disk's stacked devnums.
    assert sysfs.stacked_devnums("sda") == {"8:0", "8:1", "9:127", "253:0"}
    assert sysfs.partitions("sdb") == ["sdb1"]
