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


# --------------------------------------------------------------------------- in the plan

from agent.records import Disk, Media, PlanStep, SanitizePlan, SanitizeResult, Transport  # noqa: E402
from agent.sanitize import execute  # noqa: E402
from agent.sanitize.policy import Capabilities, _plan_emmc, plan_from_capabilities  # noqa: E402


def boot0() -> Disk:
    return Disk(path="/dev/mmcblk0boot0", name="mmcblk0boot0", transport=Transport.MMC, media=Media.FLASH,
                size_bytes=4 << 20, read_only=True, force_ro=True, target=True)


def test_a_boot_partition_is_made_writable_before_it_is_sanitized():
    plan = plan_from_capabilities(boot0(), Capabilities())
    assert [p.method for p in plan.prepare] == ["mmc-boot-writable"]
    assert plan.prepare[0].options == {"force_ro": "/sys/block/mmcblk0boot0/force_ro"}
    assert plan.steps and plan.steps[-1].method.startswith("overwrite")


def test_the_user_areas_rpmb_is_named_not_addressable(tmp_path):
    (tmp_path / "mmcblk0rpmb").touch()
    user = Disk(path="/dev/mmcblk0", name="mmcblk0", transport=Transport.MMC, media=Media.FLASH, target=True)
    plan = SanitizePlan(disk=user, steps=[])
    _plan_emmc(user, plan, dev_root=str(tmp_path))
    assert plan.notes == ["mmcblk0rpmb (RPMB): not addressable by the host (authenticated writes only), not sanitized"]
    sd = Disk(path="/dev/mmcblk1", name="mmcblk1", transport=Transport.MMC, media=Media.FLASH, target=True)
    plan = SanitizePlan(disk=sd, steps=[])
    _plan_emmc(sd, plan, dev_root=str(tmp_path))
    assert plan.notes == []  # an SD card has no RPMB


def test_clearing_force_ro_is_checked(tmp_path):
    switch = tmp_path / "force_ro"
    switch.write_text("1\n")
    plan = SanitizePlan(disk=boot0(), steps=[])
    prep = PlanStep("mmc-boot-writable", None, "", "test", None, {"force_ro": str(switch)})
    run = execute._Run(plan, None, None, None, None)
    result = SanitizeResult(disk=plan.disk, outcome="failed", category=None, method="none")
    sr = execute._prepare(run, prep, result)
    assert sr.status == "success" and switch.read_text() == "0\n"
    prep.options["force_ro"] = str(tmp_path / "missing" / "force_ro")
    sr = execute._prepare(run, prep, result)
    assert sr.status == "failed" and "cannot clear" in sr.error


# --------------------------------------------------------------------------- discard + Sanitize

from agent.config import Config  # noqa: E402
from agent.records import Outcome  # noqa: E402
from agent.sanitize import discard, policy  # noqa: E402

SAMSUNG = "extcsd-samsung-emmc51-8gb-rev1.8-uda-not-enhanced.txt"


def emmc_caps(text: str, *, discards=True) -> Capabilities:
    return Capabilities(emmc=emmc.parse_extcsd(text),
                        discard=discard.DiscardCaps(discards, True, "MMC device that accepts discards"))


def user() -> Disk:
    return Disk(path="/dev/mmcblk0", name="mmcblk0", transport=Transport.MMC, media=Media.FLASH,
                size_bytes=0x00E90000 * 512, target=True)


def test_an_emmc_with_sanitize_is_discarded_then_sanitized_and_stays_clear():
    plan = plan_from_capabilities(user(), emmc_caps((MMC / SAMSUNG).read_text()))
    assert [s.method for s in plan.steps] == ["mmc-discard-sanitize", "overwrite:two-pass"]
    assert plan.steps[0].category == "Clear"


def test_an_emmc_without_sanitize_or_discard_is_overwritten_and_says_why():
    plan = plan_from_capabilities(user(), emmc_caps("[SEC_FEATURE_SUPPORT: 0x15]"))
    assert "mmc-discard-sanitize" not in [s.method for s in plan.steps]
    assert "no Sanitize" in {s.method: s.reason for s in plan.skipped}["mmc-discard-sanitize"]
    plan = plan_from_capabilities(user(), emmc_caps((MMC / SAMSUNG).read_text(), discards=False))
    assert "accepts no discard" in {s.method: s.reason for s in plan.skipped}["mmc-discard-sanitize"]


@pytest.mark.root
@pytest.mark.parametrize("erases", [True, False])
def test_discard_and_sanitize_are_judged_by_canaries(fake_commands, loopdevs, tmp_path, monkeypatch, erases):
    """A Sanitize that erases is Clear by mmc-discard-sanitize; one that says success and
    leaves the data falls back to the overwrite (also Clear, but the certificate says so)."""
    from agent import discover

    dev = loopdevs.create(8 << 20, fill=b"DONOR DATA ")
    disk = discover.disk_for_path(dev)
    disk.transport, disk.media = Transport.MMC, Media.FLASH
    monkeypatch.setattr(policy, "_is_emmc", lambda d: True)
    monkeypatch.setattr(discard, "capability", lambda d: discard.DiscardCaps(True, False, "test: discards accepted"))
    fake_commands.add(["mmc", "extcsd", "read", dev], fixture=f"mmc/{SAMSUNG}")

    def zero(argv):
        with open(dev, "r+b") as f:
            f.write(bytes(8 << 20))
            f.flush()

    fake_commands.add(["blkdiscard", dev], "", effect=zero if erases else None)
    fake_commands.add(["mmc", "sanitize", dev], "")
    plan = policy.make_plan(disk, config=Config(state_dir=tmp_path))
    assert plan.steps[0].method == "mmc-discard-sanitize"
    result = execute.sanitize(plan, config=Config(state_dir=tmp_path))
    assert result.outcome == Outcome.SUCCESS and result.category == "Clear"
    first = result.steps[0]
    if erases:
        assert result.method == "mmc-discard-sanitize" and first.status == "success"
    else:
        assert first.status == "failed" and "canaries survived" in first.error
        assert result.method.startswith("overwrite")
    with open(dev, "rb") as f:
        assert b"DONOR DATA" not in f.read()
