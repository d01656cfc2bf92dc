"""eMMC decisions on recorded `mmc extcsd read` and `lsblk` outputs."""

from __future__ import annotations

import pytest

from agent.sanitize import emmc
from tests.fakes import FIXTURES

MMC = FIXTURES / "mmc"


@pytest.mark.parametrize("name, rpmb, user", [
    ("extcsd-samsung-emmc51-8gb-rev1.8-uda-not-enhanced.txt", 512 * 1024, 0x00E90000 * 512),
    ("extcsd-emmc51-rev1.8-256gb-bredos-wiki-elided.txt", 4 << 20, 0x1D200000 * 512),
])
def test_extcsd_of_real_parts(name, rpmb, user):
    ext = emmc.parse_extcsd((MMC / name).read_text())
    assert ext.get("SEC_FEATURE_SUPPORT") == 0x55
    assert ext.sanitize_supported and ext.secure_trim_supported
    assert ext.boot_partition_bytes == 4 << 20  # BOOT_SIZE_MULTI 0x20 x 128 KiB
    assert ext.rpmb_bytes == rpmb
    assert ext.user_area_bytes == user
    assert [s.method for s in emmc.user_area_steps(ext)] == ["blkdiscard", "mmc-sanitize", "verify"]


def test_without_sanitize_bit_the_user_area_is_overwritten():
    ext = emmc.parse_extcsd("Secure Feature support [SEC_FEATURE_SUPPORT: 0x15]\n")
    assert not ext.sanitize_supported
    assert [s.method for s in emmc.user_area_steps(ext)] == ["blkdiscard", "overwrite", "verify"]


def test_boot_partitions_are_targets_and_the_rpmb_is_not_addressable():
    names = emmc.lsblk_names((MMC / "lsblk-jetson-nano-emmc-boot0-boot1-rpmb.txt").read_text())
    assert {"mmcblk0", "mmcblk0boot0", "mmcblk0boot1", "mmcblk0rpmb", "mmcblk1"} <= set(names)
    parts = {p.name: p for p in emmc.parts_of("mmcblk0", names)}
    assert set(parts) == {"mmcblk0", "mmcblk0boot0", "mmcblk0boot1", "mmcblk0rpmb"}  # not mmcblk1, the SD card
    assert parts["mmcblk0boot0"].target and "force_ro" in parts["mmcblk0boot0"].reason
    assert not parts["mmcblk0rpmb"].target and "not addressable" in parts["mmcblk0rpmb"].reason
