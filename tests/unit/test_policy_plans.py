"""The media-aware policy: recorded capabilities in, ordered plan with reasons out."""

import json

import pytest

from agent.config import Config
from agent.errors import ConfigError, UsageError
from agent.records import Category, Disk, Media, Transport, UsbBridge
from agent.sanitize import ata
from agent.sanitize.policy import make_plan
from fakes import FIXTURES


def disk(path="/dev/sda", transport=Transport.SATA, media=Media.SSD, **kw):
    kw.setdefault("serial", "SER1")
    return Disk(path=path, name=path.rsplit("/", 1)[-1], transport=transport, media=media,
                size_bytes=kw.pop("size_bytes", 60579792 * 512), target=kw.pop("target", True), **kw)


def nvme_disk():
    return disk("/dev/nvme0n1", Transport.NVME, Media.NVME)


def methods(plan):
    return [s.method for s in plan.steps]


def skipped(plan):
    return {s.method: s.reason for s in plan.skipped}


def id_ctrl(fake, fixture=None, **override):
    data = json.loads((FIXTURES / "nvme" / (fixture or "id-ctrl-crypto-format-supported.json")).read_text())
    # These tests are about sanitize and format: the controller is taken without Security
    # Send/Receive (OACS bit 0), whose TCG path is tested in test_sed_detect.py.
    data["oacs"] &= ~0x1
    data.update(override)
    fake.add(["nvme", "id-ctrl", "/dev/nvme0", "-o", "json"], json.dumps(data))


def ata_drive(fake, identify, n="hdparm/N-ssd-no-hpa.txt", dco="hdparm/dco-identify-ssd-no-overlay.txt"):
    fake.add(["hdparm", "-I", "/dev/sda"], fixture=f"hdparm/{identify}")
    # The raw IDENTIFY words only decide TCG support (docs/policy.md): a real drive without it.
    fake.add(["hdparm", "--Istdout", "/dev/sda"], fixture="hdparm/Istdout-seagate-st3160023as-ata7-no-tcg.txt")
    if n:
        fake.add(["hdparm", "-N", "/dev/sda"], fixture=n)
    if dco:
        fake.add(["hdparm", "--dco-identify", "/dev/sda"], fixture=dco)


# --------------------------------------------------------------------------- NVMe


def test_nvme_sanicap_crypto_plans_sanitize_crypto_first(fake_commands):
    id_ctrl(fake_commands)
    fake_commands.add(["nvme", "sanitize-log", "/dev/nvme0", "-o", "json"], fixture="nvme/sanitize-log-never-2.3.json")
    plan = make_plan(nvme_disk())
    assert methods(plan) == [
        "nvme-sanitize-crypto", "nvme-sanitize-block", "nvme-format-crypto", "nvme-format-user-data", "overwrite:zero",
    ]
    first = plan.steps[0]
    assert first.category == Category.PURGE and first.technique == "Cryptographic Erase"
    assert first.options == {"controller": "/dev/nvme0", "action": "crypto", "estimate_s": 10}
    assert "SANICAP bit 0" in first.reason
    assert plan.steps[-1].category == Category.CLEAR


def test_nvme_fna_bit_2_without_sanitize_plans_format_ses_2(fake_commands):
    id_ctrl(fake_commands, sanicap=0)
    plan = make_plan(nvme_disk())
    assert methods(plan) == ["nvme-format-crypto", "nvme-format-user-data", "overwrite:zero"]
    assert plan.steps[0].options["ses"] == 2 and "FNA bit 2" in plan.steps[0].reason
    assert skipped(plan)["nvme-sanitize-crypto"].startswith("unsupported: SANICAP 0x0")


def test_qemu_nvme_plans_format_and_records_sanitize_unsupported(fake_commands):
    id_ctrl(fake_commands, "id-ctrl-qemu-7.2.json")
    plan = make_plan(nvme_disk())
    assert methods(plan) == ["nvme-format-user-data", "overwrite:zero"]
    assert plan.steps[0].options == {"controller": "/dev/nvme0", "ses": 1}
    gone = skipped(plan)
    assert gone["nvme-sanitize-crypto"].startswith("unsupported")
    assert gone["nvme-sanitize-block"].startswith("unsupported")
    assert "FNA bit 2 clear" in gone["nvme-format-crypto"]


def test_nvme_without_format_or_sanitize_falls_to_overwrite(fake_commands):
    id_ctrl(fake_commands, "id-ctrl-format-unsupported.json", sanicap=0)
    plan = make_plan(nvme_disk())
    assert methods(plan) == ["overwrite:zero"]
    assert "no firmware sanitize command" in plan.steps[0].reason


def test_unreadable_nvme_identify_falls_back_to_overwrite_and_says_why(fake_commands):
    fake_commands.add(["nvme", "id-ctrl", "/dev/nvme0", "-o", "json"], returncode=1, stderr="identify controller: Permission denied\n")
    plan = make_plan(nvme_disk())
    assert methods(plan) == ["overwrite:zero"]
    assert any("NVMe capabilities not readable" in n for n in plan.notes)


# --------------------------------------------------------------------------- ATA


def test_frozen_ssd_is_unfrozen_before_security_erase(fake_commands):
    ata_drive(fake_commands, "security-frozen.txt")
    plan = make_plan(disk())
    assert [p.method for p in plan.prepare] == ["unfreeze"]
    assert plan.prepare[0].options == {"seconds": 5, "enabled": True}
    assert methods(plan) == ["ata-security-erase-enhanced", "ata-security-erase", "overwrite:zero"]


def test_security_erase_on_flash_is_clear_even_when_enhanced(fake_commands):
    ata_drive(fake_commands, "security-supported-not-frozen.txt")
    plan = make_plan(disk())
    enhanced, normal = plan.steps[0], plan.steps[1]
    assert enhanced.category == Category.CLEAR and "Clear" in enhanced.reason
    assert normal.category == Category.CLEAR
    assert enhanced.options["timeout_s"] == 24 * 60 * 2 + 600
    assert not plan.prepare


def test_no_enhanced_support_plans_normal_erase_reported_clear(fake_commands):
    ata_drive(fake_commands, "security-no-enhanced.txt")
    plan = make_plan(disk())
    assert methods(plan) == ["ata-security-erase", "overwrite:zero"]
    assert plan.steps[0].category == Category.CLEAR
    assert skipped(plan)["ata-security-erase-enhanced"] == "unsupported: the drive reports no enhanced erase"


def test_enhanced_security_erase_on_a_hard_drive_is_purge(fake_commands):
    ata_drive(fake_commands, "hdd-security-not-frozen.txt")
    plan = make_plan(disk(media=Media.HDD))
    assert plan.steps[0].method == "ata-security-erase-enhanced" and plan.steps[0].category == Category.PURGE
    assert plan.steps[1].category == Category.CLEAR


def test_ata_sanitize_is_preferred_over_security_erase(fake_commands):
    ata_drive(fake_commands, "sanitize-crypto-block-not-frozen.txt")
    plan = make_plan(disk())
    assert methods(plan)[:2] == ["ata-sanitize-crypto", "ata-sanitize-block"]
    assert all(s.category == Category.PURGE for s in plan.steps[:2])


def test_hard_drive_with_sanitize_overwrite_gets_it_first(fake_commands):
    ata_drive(fake_commands, "hdd-sanitize-overwrite.txt")
    plan = make_plan(disk(media=Media.HDD))
    assert plan.steps[0].method == "ata-sanitize-overwrite" and plan.steps[0].category == Category.PURGE


def test_locked_drive_with_our_journaled_password_is_unlocked_first(fake_commands, tmp_path):
    ata.PasswordJournal(tmp_path).record("SER1", "/dev/sda", "0123456789abcdef")
    ata_drive(fake_commands, "security-enabled-locked.txt")
    plan = make_plan(disk(), config=Config(state_dir=tmp_path))
    assert [p.method for p in plan.prepare] == ["ata-security-recover"]
    assert plan.prepare[0].options == {"locked": True}
    assert "ata-security-erase-enhanced" in methods(plan)


def test_locked_drive_with_an_unknown_password_cannot_be_erased(fake_commands, tmp_path):
    ata_drive(fake_commands, "security-enabled-locked.txt")
    plan = make_plan(disk(), config=Config(state_dir=tmp_path))
    assert not plan.prepare
    assert "did not set" in skipped(plan)["ata-security-erase"]
    assert any("locked with an unknown password" in n for n in plan.notes)


def test_unfreeze_disabled_in_config_skips_security_erase(fake_commands, tmp_path):
    ata_drive(fake_commands, "security-frozen.txt")
    plan = make_plan(disk(), config=Config(state_dir=tmp_path, policy={"ssd": {"unfreeze": False}}))
    assert methods(plan) == ["overwrite:zero"]
    assert "unfreezing is disabled" in skipped(plan)["ata-security-erase-enhanced"]


def test_hpa_is_reset_before_sanitizing(fake_commands):
    ata_drive(fake_commands, "security-supported-not-frozen.txt", n="hdparm/N-ssd-hpa.txt")
    plan = make_plan(disk())
    assert [p.method for p in plan.prepare] == ["hpa-reset"]
    assert "hides 2097152 sectors" in plan.prepare[0].reason
    assert plan.hidden_areas.visible_sectors_before == 58482640


def test_hpa_reset_off_says_the_area_will_not_be_sanitized(fake_commands, tmp_path):
    ata_drive(fake_commands, "security-supported-not-frozen.txt", n="hdparm/N-ssd-hpa.txt")
    plan = make_plan(disk(), config=Config(state_dir=tmp_path, hpa_reset=False))
    assert not plan.prepare
    assert any("will not be sanitized" in n for n in plan.notes)


def test_frozen_drive_with_hpa_unfreezes_before_the_reset(fake_commands):
    ata_drive(fake_commands, "security-frozen.txt", n="hdparm/N-ssd-hpa.txt")
    plan = make_plan(disk())
    assert [p.method for p in plan.prepare] == ["unfreeze", "hpa-reset"]


# --------------------------------------------------------------------------- SCSI, bridges, flash, virtual


def test_sas_ssd_plans_scsi_sanitize_crypto_then_block(fake_commands):
    fake_commands.add(["sg_opcodes", "/dev/sdb"], fixture="sg3/sg_opcodes-sas-ssd-sanitize.txt")
    plan = make_plan(disk("/dev/sdb", Transport.SAS, Media.SSD))
    assert methods(plan) == ["scsi-sanitize-crypto", "scsi-sanitize-block", "overwrite:zero"]
    assert "not used on flash" in skipped(plan)["scsi-sanitize-overwrite"]


def test_sas_hdd_plans_scsi_sanitize_overwrite(fake_commands):
    fake_commands.add(["sg_opcodes", "/dev/sdb"], fixture="sg3/sg_opcodes-sas-hdd-overwrite-only.txt")
    plan = make_plan(disk("/dev/sdb", Transport.SAS, Media.HDD))
    assert methods(plan) == ["scsi-sanitize-overwrite", "overwrite:zero"]


def test_usb_bridge_gets_overwrite_only_and_the_bridge_is_recorded(fake_commands):
    bridge = UsbBridge(vendor_id="152d", product_id="0578", name="JMicron JMS578")
    plan = make_plan(disk("/dev/sdc", Transport.USB, Media.SSD, usb_bridge=bridge))
    assert methods(plan) == ["overwrite:zero"]
    assert "USB bridge (JMicron JMS578 152d:0578)" in plan.steps[0].reason
    assert any("vendor 152d, product 0578" in n for n in plan.notes)
    assert fake_commands.calls == []


def test_usb_stick_gets_two_pass_full_verification_and_clear(fake_commands):
    plan = make_plan(disk("/dev/sdd", Transport.USB, Media.FLASH, removable=True))
    assert methods(plan) == ["overwrite:two-pass"] and plan.verify == "full"
    assert any("Purge is not available" in n for n in plan.notes)
    assert fake_commands.calls == []


def test_emmc_gets_secure_discard_after_the_overwrite(fake_commands, tmp_path, monkeypatch):
    from agent.sanitize import discard

    (tmp_path / "mmcblk0" / "queue").mkdir(parents=True)
    (tmp_path / "mmcblk0" / "queue" / "discard_max_bytes").write_text("4194304\n")
    monkeypatch.setattr(discard, "SYS_BLOCK", tmp_path)
    monkeypatch.setattr(discard.capability, "__defaults__", (tmp_path,))
    plan = make_plan(disk("/dev/mmcblk0", Transport.MMC, Media.FLASH))
    assert methods(plan) == ["overwrite:two-pass"]
    assert plan.steps[0].options == {"method": "two-pass", "secure_discard": True}


@pytest.mark.parametrize("transport", [Transport.LOOP, Transport.FILE, Transport.VIRTIO])
def test_virtual_devices_get_overwrite_only(fake_commands, transport):
    plan = make_plan(disk("/dev/loop7", transport, Media.VIRTUAL, serial=None))
    assert methods(plan) == ["overwrite:zero"]
    assert fake_commands.calls == []


def test_protected_disk_has_no_steps_and_says_why(fake_commands):
    d = disk("/dev/vda", Transport.VIRTIO, Media.VIRTUAL, target=False, reasons=["boot medium: holds /"])
    plan = make_plan(d)
    assert plan.steps == [] and plan.not_target == "not a target: boot medium: holds /"
    assert fake_commands.calls == []


# --------------------------------------------------------------------------- overrides


def test_explicit_overwrite_method_gives_a_one_step_plan(fake_commands):
    plan = make_plan(nvme_disk(), method="dod-3pass", verify="full")
    assert methods(plan) == ["overwrite:dod-3pass"] and plan.verify == "full"
    assert fake_commands.calls == []


def test_unknown_explicit_method_is_a_usage_error(fake_commands):
    with pytest.raises(UsageError):
        make_plan(disk("/dev/loop7", Transport.LOOP, Media.VIRTUAL), method="shred-it-all")


def test_config_reorders_and_limits_nvme_methods(fake_commands, tmp_path):
    id_ctrl(fake_commands)
    fake_commands.add(["nvme", "sanitize-log", "/dev/nvme0", "-o", "json"], fixture="nvme/sanitize-log-never-2.3.json")
    cfg = Config(state_dir=tmp_path, policy={"nvme": {"steps": ["nvme-format-crypto", "nvme-sanitize-block", "overwrite"], "overwrite": "random"}})
    plan = make_plan(nvme_disk(), config=cfg)
    assert methods(plan) == ["nvme-format-crypto", "nvme-sanitize-block", "overwrite:random"]
    assert "left out by policy.nvme.steps" in skipped(plan)["nvme-sanitize-crypto"]


def test_config_without_overwrite_in_steps_has_no_fallback(fake_commands, tmp_path):
    id_ctrl(fake_commands, "id-ctrl-qemu-7.2.json")
    plan = make_plan(nvme_disk(), config=Config(state_dir=tmp_path, policy={"nvme": {"steps": ["nvme-format-user-data"]}}))
    assert methods(plan) == ["nvme-format-user-data"]


@pytest.mark.parametrize(
    "policy, message",
    [
        ({"nvme": {"stepz": []}}, "unknown key policy.nvme.stepz"),
        ({"nvme": {"steps": ["nvme-sanitize-exit-failure"]}}, "unknown method 'nvme-sanitize-exit-failure'"),
        ({"nvme": {"verify": "twice"}}, "policy.nvme.verify"),
        ({"nvme": {"overwrite": "shred"}}, "policy.nvme.overwrite"),
    ],
)
def test_bad_policy_overrides_are_config_errors_naming_the_key(fake_commands, tmp_path, policy, message):
    id_ctrl(fake_commands, "id-ctrl-qemu-7.2.json")
    with pytest.raises(ConfigError) as exc:
        make_plan(nvme_disk(), config=Config(state_dir=tmp_path, policy=policy))
    assert message in str(exc.value)


def test_nvme_steps_are_dropped_when_another_namespace_of_the_controller_is_protected(fake_commands, monkeypatch):
    from agent import discover
    from agent.sanitize import policy

    monkeypatch.setattr(policy.glob, "glob", lambda pattern: ["/sys/class/nvme/nvme0/nvme0n1", "/sys/class/nvme/nvme0/nvme0n2"])
    boot = disk("/dev/nvme0n2", Transport.NVME, Media.NVME, target=False, reasons=["boot medium: holds /"])
    monkeypatch.setattr(discover, "disk_for_path", lambda path, **kw: boot)
    id_ctrl(fake_commands, "id-ctrl-qemu-7.2.json")
    plan = make_plan(nvme_disk())
    assert methods(plan) == ["overwrite:zero"]
    assert "protected namespaces: /dev/nvme0n2 (boot medium: holds /)" in skipped(plan)["nvme-format-user-data"]


def test_human_plan_lists_preparation_steps_and_what_was_left_out(fake_commands, capsys):
    from agent.cli.plan import print_plan

    ata_drive(fake_commands, "security-frozen.txt")
    print_plan(make_plan(disk()))
    out = capsys.readouterr().out
    assert "first: unfreeze - drive is frozen" in out
    assert "1. ata-security-erase-enhanced [Clear]" in out
    assert "-  ata-sanitize-crypto: unsupported" in out


def test_human_plan_shows_a_serial_without_its_terminal_controls(fake_commands, capsys):
    from agent.cli.plan import print_plan

    ata_drive(fake_commands, "security-frozen.txt")
    d = disk()
    d.serial = "S\x1b[1A\x1b[2KPASSED"
    print_plan(make_plan(d))
    out = capsys.readouterr().out
    assert "\x1b" not in out and "S\\x1b[1A\\x1b[2KPASSED" in out
