"""The protection rules, decided on recorded facts (no device is touched)."""

from __future__ import annotations

import pytest

from agent.discover.labels import parse_label
from agent.discover.protect import DeviceFacts, decide, is_image_label
from agent.discover.system import Mount, SystemState
from agent.records import Transport


def sata_disk(**kw) -> DeviceFacts:
    base = dict(
        name="sdb",
        devnode="/dev/sdb",
        transport=Transport.SATA,
        properties={"DEVNAME": "/dev/sdb", "DEVTYPE": "disk", "ID_SERIAL_SHORT": "WD-WCC6Y1234567"},
        size_bytes=1_000_204_886_016,
        serials=["WD-WCC6Y1234567", "0x50014ee2b1234567"],
        devnums={"8:16", "8:17", "8:18"},
    )
    base.update(kw)
    return DeviceFacts(**base)


def test_unused_disk_is_a_target_with_a_reason():
    assert decide(sata_disk(), SystemState(), explicit=False) == (True, ["no protection rule applies"])


def test_disk_holding_root_is_protected_as_boot_medium():
    system = SystemState(boot_signals={"sdb": ["holds /"]})
    target, reasons = decide(sata_disk(), system, explicit=True)
    assert not target
    assert "boot medium: holds /" in reasons


def test_live_medium_and_label_are_both_reported_when_both_point_at_the_stick():
    system = SystemState(boot_signals={"sdb": ["holds /run/live/medium"]})
    facts = sata_disk(labels=[("/dev/sdb", "iso9660", "ARDOISE_0.1.0"), ("/dev/sdb2", "ext4", "ARDOISE")])
    target, reasons = decide(facts, system, explicit=True)
    assert not target
    assert [r for r in reasons if r.startswith("boot medium")] == [
        "boot medium: holds /run/live/medium",
        "boot medium: /dev/sdb carries the Ardoise label 'ARDOISE_0.1.0' (iso9660)",
        "boot medium: /dev/sdb2 carries the Ardoise label 'ARDOISE' (ext4)",
    ]


@pytest.mark.parametrize(
    "fstype,label,is_image",
    [
        ("iso9660", "ARDOISE_0.1.0", True),
        ("vfat", "ardoise", True),
        ("ext4", "ARDOISE", True),
        ("ext4", "ARDOISE_BACKUP", False),  # only the ISO's volume id is a prefix match
        ("ext4", "home", False),
        (None, None, False),
    ],
)
def test_image_labels(fstype, label, is_image):
    assert is_image_label(fstype, label) is is_image


def test_disk_with_a_mounted_partition_is_protected():
    system = SystemState(mounts=[Mount("8:17", "/mnt/data", "ext4", "/dev/sdb1")])
    target, reasons = decide(sata_disk(), system, explicit=True)
    assert not target and reasons == ["mounted: /mnt/data"]


def test_disk_with_active_swap_is_protected():
    target, reasons = decide(sata_disk(), SystemState(swap_devnums={"8:18"}), explicit=True)
    assert not target and reasons == ["active swap"]


def test_raid_or_lvm_member_in_use_is_protected():
    facts = sata_disk(holders={"sdb1": ["md127"]})
    target, reasons = decide(facts, SystemState(), explicit=True)
    assert not target
    assert reasons == ["in use by md127 (RAID/LVM/device-mapper member: sdb1)"]


def test_disk_the_kernel_refuses_to_open_exclusively_is_protected():
    facts = sata_disk(busy="exclusive open refused (EBUSY): claimed by the kernel")
    target, reasons = decide(facts, SystemState(), explicit=True)
    assert not target and reasons == ["in use: exclusive open refused (EBUSY): claimed by the kernel"]


def test_read_only_and_zero_size_disks_are_protected():
    target, reasons = decide(sata_disk(read_only=True, size_bytes=0), SystemState(), explicit=True)
    assert not target
    assert reasons == ["read-only device", "zero size (no medium or detached)"]


def test_optical_drive_is_protected():
    facts = sata_disk(name="sr0", devnode="/dev/sr0", properties={"DEVNAME": "/dev/sr0", "ID_CDROM": "1"})
    assert decide(facts, SystemState(), explicit=True) == (False, ["optical drive"])


def test_excluded_serial_is_protected_whatever_its_case_and_spacing():
    target, reasons = decide(sata_disk(), SystemState(), explicit=True, exclude_serials=[" wd-wcc6y1234567 "])
    assert not target and reasons == ["serial WD-WCC6Y1234567 is excluded by config"]


def test_excluded_wwn_is_protected_too():
    target, reasons = decide(sata_disk(), SystemState(), explicit=False, exclude_serials=["0x50014EE2B1234567"])
    assert not target and reasons == ["serial 0x50014ee2b1234567 is excluded by config"]


def test_loop_device_is_a_target_only_when_named_explicitly():
    facts = DeviceFacts(name="loop3", devnode="/dev/loop3", transport=Transport.LOOP, size_bytes=1 << 20)
    assert decide(facts, SystemState(), explicit=False) == (
        False,
        ["loop device: out of scope unless named explicitly"],
    )
    assert decide(facts, SystemState(), explicit=True) == (True, ["named explicitly; no protection rule applies"])


def test_zram_is_out_of_scope_unless_named():
    facts = DeviceFacts(name="zram0", devnode="/dev/zram0", transport=Transport.RAM, size_bytes=1 << 30)
    assert decide(facts, SystemState(), explicit=False)[0] is False


# --------------------------------------------------------------------------- labels


def _iso_head(volume_id: str) -> bytes:
    head = bytearray(64 * 1024)
    pvd = 0x8000
    head[pvd] = 1
    head[pvd + 1 : pvd + 6] = b"CD001"
    head[pvd + 40 : pvd + 72] = volume_id.encode().ljust(32)
    return bytes(head)


def test_iso9660_volume_id_is_read_from_the_primary_volume_descriptor():
    assert parse_label(_iso_head("ARDOISE_0_1")) == ("iso9660", "ARDOISE_0_1")


def test_ext4_label_is_read_from_the_superblock():
    head = bytearray(64 * 1024)
    head[1024 + 56 : 1024 + 58] = b"\x53\xef"
    head[1024 + 120 : 1024 + 127] = b"ARDOISE"
    assert parse_label(bytes(head)) == ("ext4", "ARDOISE")


def test_fat32_label_is_read_from_the_boot_sector():
    head = bytearray(4096)
    head[71:82] = b"ARDOISE    "
    head[82:90] = b"FAT32   "
    head[510:512] = b"\x55\xaa"
    assert parse_label(bytes(head)) == ("vfat", "ARDOISE")


def test_blank_device_has_no_label():
    assert parse_label(bytes(64 * 1024)) == (None, None)
    assert parse_label(b"") == (None, None)


def a_file(**kw) -> DeviceFacts:
    base = dict(name="disk.img", devnode="/srv/disk.img", transport=Transport.FILE, size_bytes=1 << 30,
                is_file=True, file_id=(2049, 1234))
    base.update(kw)
    return DeviceFacts(**base)


def test_unused_file_named_explicitly_is_a_target():
    assert decide(a_file(), SystemState(), explicit=True)[0]


def test_file_backing_a_mounted_loop_device_is_protected_naming_both():
    from agent.discover.system import LoopUse

    system = SystemState(
        mounts=[Mount("7:3", "/mnt/vm", "ext4", "/dev/loop3")],
        loop_backing={(2049, 1234): [LoopUse("loop3", frozenset({"7:3"}))]},
    )
    target, reasons = decide(a_file(), system, explicit=True)
    assert not target and reasons == ["backs loop device /dev/loop3, mounted: /mnt/vm"]
    # Another file with the same path elsewhere (another inode) is not confused with it.
    assert decide(a_file(file_id=(2049, 99)), system, explicit=True)[0]


def test_file_that_is_a_mount_source_swap_or_open_elsewhere_is_protected():
    system = SystemState(swap_files={(2049, 1234): "/swapfile"}, mount_source_files={(2049, 1234): ["/mnt/iso"]})
    target, reasons = decide(a_file(open_by=["pid 812 (qemu-system-x86)"]), system, explicit=True)
    assert not target
    assert reasons == ["mounted: /mnt/iso", "active swap file", "open by pid 812 (qemu-system-x86)"]
