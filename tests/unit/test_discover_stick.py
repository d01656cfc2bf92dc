"""The stick's data partition is the one labelled ARDOISE on the medium live-boot booted
from; a donated disk labelled ARDOISE never takes its place."""

from __future__ import annotations

import os
from pathlib import Path

from agent.discover.stick import choose_data_partition, live_medium_disks
from agent.discover.sysfs import Sysfs
from agent.discover.system import read_system_state

# What probe records for an Ardoise stick written with dd (build_image.sh: a hybrid ISO,
# its EFI image, then the FAT data partition) and for a donated disk someone labelled ARDOISE.
STICK = [("/dev/sdb", "iso9660", "ARDOISE_LIVE"), ("/dev/sdb1", "iso9660", "ARDOISE_LIVE"),
         ("/dev/sdb2", "vfat", "ARDOISE_EFI"), ("/dev/sdb3", "vfat", "ARDOISE")]
DONATED = [("/dev/sdc", None, None), ("/dev/sdc1", "vfat", "ARDOISE")]


def test_the_partition_on_the_boot_medium_wins_over_the_by_label_link():
    choice = choose_data_partition({"sdb"}, {"sdb": STICK, "sdc": DONATED}, "/dev/sdc1")
    assert choice.device == "/dev/sdb3"
    assert "boot medium /dev/sdb" in choice.why and "/dev/sdc1, also labelled ARDOISE, is not on it and is ignored" in choice.why


def test_a_boot_medium_without_a_data_partition_gives_none_even_if_another_disk_has_one():
    cd = [("/dev/sr0", "iso9660", "ARDOISE_LIVE")]
    choice = choose_data_partition({"sr0"}, {"sr0": cd}, "/dev/sdc1")
    assert choice.device is None and "no partition labelled ARDOISE on the boot medium /dev/sr0" in choice.why


def test_without_a_live_boot_the_label_is_all_there_is():
    assert choose_data_partition(set(), {}, "/dev/sdc1").device == "/dev/sdc1"
    assert choose_data_partition(set(), {}, None).device is None


def _block(root: Path, devpath: str, devnum: str, *, partition: bool = False) -> None:
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


def test_the_live_medium_disk_is_read_from_mountinfo_and_sysfs(tmp_path):
    """live-boot mounts the stick's ISO partition at /run/live/medium; its whole disk is the stick."""
    sys_root, proc = tmp_path / "sys", tmp_path / "proc"
    for name, devnum in (("sdb", "8:16"), ("sdc", "8:32")):
        _block(sys_root, f"devices/pci0000:00/usb1/block/{name}", devnum)
        _block(sys_root, f"devices/pci0000:00/usb1/block/{name}/{name}1", devnum[:-1] + str(int(devnum[-1]) + 1),
               partition=True)
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text(
        "22 1 0:21 / / rw - overlay overlay rw\n"
        "30 22 8:17 / /run/live/medium ro - iso9660 /dev/sdb1 ro\n"
        "31 22 8:33 / /mnt/donated rw - vfat /dev/sdc1 rw\n"
    )
    (proc / "swaps").write_text("Filename Type Size Used Priority\n")
    system = read_system_state(Sysfs(str(sys_root)), proc=str(proc))
    assert live_medium_disks(system) == {"sdb"}


def test_a_live_boot_whose_medium_disk_is_unknown_trusts_no_label():
    choice = choose_data_partition(set(), {}, "/dev/sdc1", live=True)
    assert choice.device is None and "could not be identified" in choice.why


def test_booted_live_is_read_from_the_mounts():
    from agent.discover.stick import booted_live
    from agent.discover.system import Mount, SystemState

    assert booted_live(SystemState(mounts=[Mount("0:45", "/run/live/medium", "iso9660", "/dev/sr0")]))
    assert not booted_live(SystemState(mounts=[Mount("254:0", "/", "ext4", "/dev/vda")]))
