"""The plan executor: fallback, verification and the honest category.

The "drive" is a real loop device (real canary and read-back I/O); its firmware commands
are recorded outputs whose ``effect`` does (or does not) erase the loop device.
"""

import json
import os

import pytest

from agent.config import Config
from agent.errors import ProtectedDeviceError
from agent.records import Category, Disk, Media, Outcome, StepStatus, Transport
from agent.sanitize import ata, execute, nvme
from agent.sanitize.policy import Capabilities, plan_from_capabilities
from fakes import FIXTURES, Recording

pytestmark = pytest.mark.root
SIZE = 16 << 20


@pytest.fixture
def instant(monkeypatch):
    now = [0.0]
    for mod in (nvme, ata):
        monkeypatch.setattr(mod, "clock", lambda: now[0])
        monkeypatch.setattr(mod, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    return now


@pytest.fixture
def drive(loopdevs):
    return loopdevs.create(SIZE, fill=b"customer data! ")


@pytest.fixture
def cfg(tmp_path):
    return Config(state_dir=tmp_path)


def as_disk(path, transport, media):
    return Disk(path=path, name=os.path.basename(path), transport=transport, media=media, size_bytes=SIZE, target=True)


def erase(path):
    """What a real purge does to the medium: every block reads as zeros."""
    def effect(argv):
        fd = os.open(path, os.O_WRONLY)
        try:
            zeros = bytes(1 << 20)
            for off in range(0, SIZE, len(zeros)):
                os.pwrite(fd, zeros, off)
            os.fsync(fd)
        finally:
            os.close(fd)
    return effect


def nvme_plan(path, fixture="id-ctrl-crypto-format-supported.json", **override):
    data = json.loads((FIXTURES / "nvme" / fixture).read_text())
    data.update(override)
    caps = Capabilities(nvme=nvme.parse_id_ctrl(data, "/dev/nvme0"))
    return plan_from_capabilities(as_disk(path, Transport.NVME, Media.NVME), caps)


def ata_plan(path, identify, config=None, **caps_kw):
    info = ata.parse_identify((FIXTURES / "hdparm" / identify).read_text(), path)
    caps = Capabilities(ata=info, **caps_kw)
    return plan_from_capabilities(as_disk(path, Transport.SATA, Media.SSD), caps, config=config)


def status(result):
    return [(s.method, s.status) for s in result.steps]


SANITIZE_LOG = ["nvme", "sanitize-log", "/dev/nvme0", "-o", "json"]


def test_sanicap_crypto_sanitize_that_erases_is_purge(fake_commands, drive, instant, cfg):
    fake_commands.add(["nvme", "sanitize", "/dev/nvme0", "--sanact=4"], effect=erase(drive))
    fake_commands.add(SANITIZE_LOG, fixture="nvme/sanitize-log-in-progress-2.3.json")
    fake_commands.add(SANITIZE_LOG, fixture="nvme/sanitize-log-completed-2.3.json")
    result = execute.sanitize(nvme_plan(drive), config=cfg)
    assert result.outcome == Outcome.SUCCESS and result.category == Category.PURGE
    assert result.method == "nvme-sanitize-crypto"
    step = result.steps[-1]
    assert step.status == StepStatus.SUCCESS and step.verification.method == "sample"
    assert step.verification.status == "passed" and step.verification.expected == "no canary"
    assert any("all 32 canaries" in n for n in step.verification.notes)
    assert [c["argv"][:4] for c in step.commands][0] == ["nvme", "sanitize", "/dev/nvme0", "--sanact=4"]
    assert not [c for c in fake_commands.calls if "--sanact=1" in c]


def test_qemu_nvme_formats_and_records_sanitize_unsupported(fake_commands, drive, cfg):
    fake_commands.add(["nvme", "list-ns", "/dev/nvme0", "-o", "json"], fixture="nvme/list-ns-one.json")
    fake_commands.add(
        ["nvme", "format", "/dev/nvme0", "--namespace-id=1", "--ses=1", "--force"],
        "Success formatting namespace:1\n",
        effect=erase(drive),
    )
    result = execute.sanitize(nvme_plan(drive, "id-ctrl-qemu-7.2.json"), config=cfg)
    assert result.outcome == Outcome.SUCCESS and result.category == Category.PURGE
    assert result.method == "nvme-format-user-data"
    steps = dict(status(result))
    assert steps["nvme-sanitize-crypto"] == StepStatus.UNSUPPORTED
    assert steps["nvme-sanitize-block"] == StepStatus.UNSUPPORTED


def test_drive_that_reports_success_but_keeps_canaries_falls_back_to_clear(fake_commands, drive, instant, cfg):
    # The liar: the command succeeds, the log says completed, nothing is erased.
    fake_commands.add(["nvme", "sanitize", "/dev/nvme0", "--sanact=4"])
    fake_commands.add(["nvme", "sanitize", "/dev/nvme0", "--sanact=2"])
    fake_commands.add(SANITIZE_LOG, fixture="nvme/sanitize-log-completed-2.3.json")
    fake_commands.add(["nvme", "list-ns", "/dev/nvme0", "-o", "json"], fixture="nvme/list-ns-one.json")
    for ses in (2, 1):
        fake_commands.add(["nvme", "format", "/dev/nvme0", "--namespace-id=1", f"--ses={ses}", "--force"])
    result = execute.sanitize(nvme_plan(drive), config=cfg)
    assert status(result)[-5:] == [
        ("nvme-sanitize-crypto", StepStatus.FAILED),
        ("nvme-sanitize-block", StepStatus.FAILED),
        ("nvme-format-crypto", StepStatus.FAILED),
        ("nvme-format-user-data", StepStatus.FAILED),
        ("overwrite:zero", StepStatus.SUCCESS),
    ]
    assert "32 of 32 canaries survived" in result.steps[-5].error
    assert result.outcome == Outcome.SUCCESS and result.category == Category.CLEAR
    assert any("fell back to overwrite, which is NIST Clear" in n for n in result.notes)


def test_sanitize_timeout_falls_back(fake_commands, drive, instant, cfg):
    fake_commands.add(["nvme", "sanitize", "/dev/nvme0", "--sanact=4"])
    fake_commands.add(SANITIZE_LOG, fixture="nvme/sanitize-log-in-progress-2.3.json")
    plan = nvme_plan(drive, sanicap=1, fna=0, oacs=0)
    result = execute.sanitize(plan, config=cfg)
    crypto = next(s for s in result.steps if s.method == "nvme-sanitize-crypto")
    assert crypto.status == StepStatus.FAILED and crypto.error.startswith("timed out")
    assert result.category == Category.CLEAR and result.method == "overwrite:zero"


def test_refused_sanitize_falls_back_to_the_next_purge(fake_commands, drive, cfg):
    fake_commands.add(["nvme", "sanitize", "/dev/nvme0", "--sanact=4"], returncode=1, stderr="NVMe status: Sanitize Prohibited While Persistent Memory Region is Enabled(0x123)\n")
    fake_commands.add(["nvme", "sanitize", "/dev/nvme0", "--sanact=2"], returncode=1, stderr="NVMe status: Invalid Field in Command(0x2)\n")
    fake_commands.add(SANITIZE_LOG, fixture="nvme/sanitize-log-never-2.3.json")
    fake_commands.add(["nvme", "list-ns", "/dev/nvme0", "-o", "json"], fixture="nvme/list-ns-one.json")
    fake_commands.add(["nvme", "format", "/dev/nvme0", "--namespace-id=1", "--ses=2", "--force"], effect=erase(drive))
    result = execute.sanitize(nvme_plan(drive), config=cfg)
    assert dict(status(result))["nvme-sanitize-crypto"] == StepStatus.REFUSED
    assert result.method == "nvme-format-crypto" and result.category == Category.PURGE


def test_frozen_drive_is_unfrozen_then_security_erased_with_a_journaled_password(fake_commands, drive, cfg, tmp_path, monkeypatch):
    dev = drive
    identify = ("hdparm", "-I", dev)
    text = lambda name: (FIXTURES / "hdparm" / name).read_text()  # noqa: E731
    plan = ata_plan(dev, "security-frozen.txt", config=cfg)
    assert [p.method for p in plan.prepare] == ["unfreeze"]
    journal = ata.PasswordJournal(tmp_path)
    seen = {}

    def resumed(argv):
        fake_commands.recordings[identify] = [Recording(stdout=text("security-supported-not-frozen.txt"))]

    def set_pass(argv):
        # The password must already be in the journal when it is sent to the drive.
        seen["journaled"] = journal.load(dev)
        seen["password"] = argv[4]
        fake_commands.recordings[identify] = [Recording(stdout=text("security-enabled-not-locked.txt"))]
        fake_commands.add(["hdparm", "--user-master", "u", "--security-erase-enhanced", argv[4], dev], effect=after_erase)

    def after_erase(argv):
        erase(dev)(argv)
        fake_commands.recordings[identify] = [Recording(stdout=text("security-supported-not-frozen.txt"))]

    fake_commands.add(["rtcwake", "-m", "mem", "-s", "5"], effect=resumed)
    fake_commands.add(identify, text("security-frozen.txt"))
    pw = ata.new_password()
    monkeypatch.setattr(ata, "new_password", lambda: pw)
    fake_commands.add(["hdparm", "--user-master", "u", "--security-set-pass", pw, dev], effect=set_pass)
    result = execute.sanitize(plan, config=cfg)
    assert dict(status(result))["unfreeze"] == StepStatus.SUCCESS
    assert seen["journaled"] == seen["password"] == pw
    assert result.method == "ata-security-erase-enhanced"
    # On flash an enhanced security erase is Clear, never Purge.
    assert result.outcome == Outcome.SUCCESS and result.category == Category.CLEAR
    assert journal.load(dev) is None, "the password is forgotten once security is disabled"


def test_drive_still_frozen_after_suspend_falls_back_and_says_so(fake_commands, drive, cfg):
    plan = ata_plan(drive, "security-frozen.txt", config=cfg)
    fake_commands.add(["rtcwake", "-m", "mem", "-s", "5"])
    fake_commands.add(["hdparm", "-I", drive], fixture="hdparm/security-frozen.txt")
    result = execute.sanitize(plan, config=cfg)
    steps = dict(status(result))
    assert steps["unfreeze"] == StepStatus.FAILED
    assert steps["ata-security-erase-enhanced"] == StepStatus.SKIPPED
    assert result.method == "overwrite:zero" and result.category == Category.CLEAR
    assert any("stays frozen" in n for n in result.notes)
    assert not fake_commands.ran("hdparm", "--user-master")


def test_suspend_impossible_is_recorded(fake_commands, drive, cfg):
    plan = ata_plan(drive, "security-frozen.txt", config=cfg)
    fake_commands.add(["rtcwake", "-m", "mem", "-s", "5"], returncode=1, stderr="rtcwake: /dev/rtc0: unable to find device: No such file or directory\n")
    result = execute.sanitize(plan, config=cfg)
    unf = next(s for s in result.steps if s.method == "unfreeze")
    assert unf.status == StepStatus.FAILED
    assert "suspend-to-RAM failed: rtcwake: /dev/rtc0" in unf.notes[0]


def test_locked_drive_left_by_an_interrupted_run_is_unlocked_with_its_password(fake_commands, drive, cfg, tmp_path):
    ata.PasswordJournal(tmp_path).record(drive, drive, "feedc0de12345678")
    plan = ata_plan(drive, "security-enabled-locked.txt", config=cfg, locked_password="feedc0de12345678")
    plan.steps = [s for s in plan.steps if s.method.startswith("overwrite")]
    identify = ("hdparm", "-I", drive)
    fake_commands.add(identify, fixture="hdparm/security-enabled-locked.txt")
    fake_commands.add(["hdparm", "--user-master", "u", "--security-unlock", "feedc0de12345678", drive])

    def disabled(argv):
        fake_commands.recordings[identify] = [Recording(stdout=(FIXTURES / "hdparm/security-supported-not-frozen.txt").read_text())]

    fake_commands.add(["hdparm", "--user-master", "u", "--security-disable", "feedc0de12345678", drive], effect=disabled)
    result = execute.sanitize(plan, config=cfg)
    assert dict(status(result))["ata-security-recover"] == StepStatus.SUCCESS
    assert ata.PasswordJournal(tmp_path).load(drive) is None
    assert result.outcome == Outcome.SUCCESS


def test_failed_security_erase_keeps_the_password_for_the_next_run(fake_commands, drive, cfg, tmp_path, monkeypatch):
    plan = ata_plan(drive, "security-supported-not-frozen.txt", config=cfg)
    plan.steps = plan.steps[:1]
    monkeypatch.setattr(ata, "new_password", lambda: "0badc0de0badc0de")
    fake_commands.add(["hdparm", "-I", drive], fixture="hdparm/security-supported-not-frozen.txt")
    fake_commands.add(["hdparm", "--user-master", "u", "--security-set-pass", "0badc0de0badc0de", drive])
    fake_commands.add(["hdparm", "--user-master", "u", "--security-erase-enhanced", "0badc0de0badc0de", drive], returncode=5, stderr="SG_IO: bad/missing sense data\n")
    fake_commands.add(["hdparm", "--user-master", "u", "--security-disable", "0badc0de0badc0de", drive], returncode=5, stderr="SG_IO: bad/missing sense data\n")
    result = execute.sanitize(plan, config=cfg)
    assert result.outcome == Outcome.FAILED and result.category is None
    assert ata.PasswordJournal(tmp_path).load(drive) == "0badc0de0badc0de"
    assert any("next run unlocks it" in n for n in result.steps[-1].notes)


def test_hidden_area_that_cannot_be_removed_means_not_sanitized(fake_commands, drive, cfg):
    from agent.records import HiddenAreas

    areas = HiddenAreas(native_max_sectors=60579792, visible_sectors_before=58482640, dco_restricted=False)
    plan = ata_plan(drive, "security-no-enhanced.txt", config=cfg, hidden=areas)
    plan.steps = [s for s in plan.steps if s.method.startswith("overwrite")]
    assert [p.method for p in plan.prepare] == ["hpa-reset"]
    fake_commands.add(["hdparm", "--yes-i-know-what-i-am-doing", "-N", "p60579792", drive], returncode=5, stderr="SG_IO: bad/missing sense data\n")
    fake_commands.add(["hdparm", "-N", drive], fixture="hdparm/N-ssd-hpa.txt")
    result = execute.sanitize(plan, config=cfg)
    assert dict(status(result))["overwrite:zero"] == StepStatus.SUCCESS
    assert result.outcome == Outcome.FAILED and result.category is None
    assert result.hidden_areas.removed is False
    assert any("hidden area not sanitized: 2097152 hidden sectors" in n for n in result.notes)


def test_protected_device_is_refused_before_any_command(fake_commands, cfg):
    plan = nvme_plan("/dev/vda")
    plan.disk.target = False
    plan.not_target = "not a target: boot medium: holds /"
    with pytest.raises(ProtectedDeviceError, match="refusing to write /dev/vda"):
        execute.sanitize(plan, config=cfg)
    assert fake_commands.calls == []


def test_mounted_device_is_refused_by_discover_even_if_the_plan_says_target(fake_commands, cfg):
    plan = nvme_plan("/dev/vda")  # the plan was built from a Disk claiming target=True
    with pytest.raises(ProtectedDeviceError, match="boot medium"):
        execute.sanitize(plan, config=cfg)
    assert fake_commands.calls == []


def test_final_zero_pass_runs_after_a_verified_purge(fake_commands, drive, instant, tmp_path):
    cfg = Config(state_dir=tmp_path, final_zero_pass=True)
    fake_commands.add(["nvme", "sanitize", "/dev/nvme0", "--sanact=4"], effect=erase(drive))
    fake_commands.add(SANITIZE_LOG, fixture="nvme/sanitize-log-completed-2.3.json")
    result = execute.sanitize(nvme_plan(drive), config=cfg)
    assert status(result)[-2:] == [("nvme-sanitize-crypto", StepStatus.SUCCESS), ("final-zero-pass", StepStatus.SUCCESS)]
    assert result.category == Category.PURGE and result.bytes_written == SIZE


def test_every_step_failing_is_failed_with_no_category(fake_commands, drive, cfg):
    plan = nvme_plan(drive, sanicap=2, fna=0, oacs=0)
    plan.steps = plan.steps[:1]
    fake_commands.add(["nvme", "sanitize", "/dev/nvme0", "--sanact=2"], returncode=1, stderr="NVMe status: Invalid Command Opcode(0x1)\n")
    fake_commands.add(SANITIZE_LOG, returncode=1, stderr="NVMe status: Invalid Log Page(0x109)\n")
    result = execute.sanitize(plan, config=cfg)
    assert result.outcome == Outcome.FAILED and result.category is None
    assert any("every planned step failed" in n for n in result.notes)


def test_normal_security_erase_without_enhanced_support_is_clear(fake_commands, drive, cfg, monkeypatch):
    plan = ata_plan(drive, "security-no-enhanced.txt", config=cfg)
    assert plan.steps[0].method == "ata-security-erase"
    identify = ("hdparm", "-I", drive)
    monkeypatch.setattr(ata, "new_password", lambda: "1111222233334444")
    fake_commands.add(identify, fixture="hdparm/security-no-enhanced.txt")
    fake_commands.add(["hdparm", "--user-master", "u", "--security-set-pass", "1111222233334444", drive])

    def erased(argv):
        erase(drive)(argv)

    fake_commands.add(["hdparm", "--user-master", "u", "--security-erase", "1111222233334444", drive], effect=erased)
    result = execute.sanitize(plan, config=cfg)
    assert result.method == "ata-security-erase"
    assert result.outcome == Outcome.SUCCESS and result.category == Category.CLEAR


def test_ata_sanitize_block_erase_that_erases_is_purge(fake_commands, drive, instant, cfg):
    plan = ata_plan(drive, "sanitize-crypto-block-not-frozen.txt", config=cfg)
    fake_commands.add(["hdparm", "--yes-i-know-what-i-am-doing", "--sanitize-crypto-scramble", drive], returncode=5, stderr="SANITIZE device error reason: Unsupported command\n")
    fake_commands.add(["hdparm", "--yes-i-know-what-i-am-doing", "--sanitize-block-erase", drive], effect=erase(drive))
    fake_commands.add(["hdparm", "--sanitize-status", drive], fixture="hdparm/sanitize-status-in-progress.txt")
    fake_commands.add(["hdparm", "--sanitize-status", drive], fixture="hdparm/sanitize-status-completed.txt")
    result = execute.sanitize(plan, config=cfg)
    steps = dict(status(result))
    assert steps["ata-sanitize-crypto"] == StepStatus.REFUSED
    assert result.method == "ata-sanitize-block" and result.category == Category.PURGE


def test_scsi_sanitize_crypto_that_erases_is_purge(fake_commands, drive, cfg, monkeypatch):
    from agent.sanitize import scsi

    monkeypatch.setattr(scsi, "sleep", lambda s: None)
    caps = Capabilities(scsi=scsi.parse_opcodes((FIXTURES / "sg3" / "sg_opcodes-sas-ssd-sanitize.txt").read_text()))
    plan = plan_from_capabilities(as_disk(drive, Transport.SAS, Media.SSD), caps)
    fake_commands.add(["sg_sanitize", "--quick", "--early", "--crypto", drive], effect=erase(drive))
    fake_commands.add(["sg_requests", "--progress", drive], fixture="sg3/sg_requests-progress-25.txt")
    fake_commands.add(["sg_requests", "--progress", drive], fixture="sg3/sg_requests-progress-none.txt")
    fake_commands.add(["sg_requests", drive], stderr=" Sense key: No Sense\n")
    seen = []
    result = execute.sanitize(plan, config=cfg, progress=seen.append)
    assert result.method == "scsi-sanitize-crypto" and result.category == Category.PURGE
    purge = [p for p in seen if p.phase == "purge"]
    assert [p.bytes_done for p in purge] == [SIZE // 4, SIZE]


def test_emmc_secure_discard_runs_after_the_overwrite_and_stays_clear(fake_commands, drive, cfg):
    from agent.sanitize.discard import DiscardCaps

    caps = Capabilities(discard=DiscardCaps(True, True, "MMC device that accepts discards"))
    plan = plan_from_capabilities(as_disk(drive, Transport.MMC, Media.FLASH), caps, verify="sample")
    fake_commands.add(["blkdiscard", "--secure", drive], returncode=1, stderr=f"blkdiscard: {drive}: BLKSECDISCARD ioctl failed: Operation not supported\n")
    result = execute.sanitize(plan, config=cfg)
    assert status(result)[-2:] == [("overwrite:two-pass", StepStatus.SUCCESS), ("blkdiscard-secure", StepStatus.UNSUPPORTED)]
    assert result.outcome == Outcome.SUCCESS and result.category == Category.CLEAR


def test_usb_bridged_drive_is_overwritten_and_the_bridge_is_on_the_record(fake_commands, drive, cfg):
    from agent.records import UsbBridge

    disk = as_disk(drive, Transport.USB, Media.SSD)
    disk.usb_bridge = UsbBridge(vendor_id="152d", product_id="0578", name="JMS578")
    result = execute.sanitize(plan_from_capabilities(disk, Capabilities()), config=cfg)
    assert result.method == "overwrite:zero" and result.category == Category.CLEAR
    assert any("USB bridge" in n and "152d" in n for n in result.notes)
    assert fake_commands.calls == []


def test_no_suspend_while_other_disks_are_being_sanitized(fake_commands, drive, cfg, monkeypatch):
    plan = ata_plan(drive, "security-frozen.txt", config=cfg)
    monkeypatch.setattr(execute, "_active_runs", 1)  # another shelf bay is mid-wipe
    result = execute.sanitize(plan, config=cfg)
    unf = next(s for s in result.steps if s.method == "unfreeze")
    assert unf.status == StepStatus.FAILED and "1 other disk(s) are being sanitized" in unf.notes[0]
    assert not fake_commands.ran("rtcwake")
    assert result.method == "overwrite:zero" and result.category == Category.CLEAR
    assert execute._active_runs == 1


def test_ata_password_reaches_the_drive_but_never_the_certificate_nor_the_logs(fake_commands, drive, cfg, monkeypatch, caplog):
    import logging

    from agent.certify.keys import StationKey
    from agent.certify.payload import build_payload

    pw = "5ec2e75ec2e75ec2"
    plan = ata_plan(drive, "security-supported-not-frozen.txt", config=cfg)
    plan.steps = plan.steps[:1]
    monkeypatch.setattr(ata, "new_password", lambda: pw)
    # hdparm echoes the password it sends: its output must be redacted too.
    echo = f' Issuing SECURITY_SET_PASS command, password="{pw}", user=user, mode=high\n'
    fake_commands.add(["hdparm", "-I", drive], fixture="hdparm/security-supported-not-frozen.txt")
    fake_commands.add(["hdparm", "--user-master", "u", "--security-set-pass", pw, drive], echo)
    fake_commands.add(["hdparm", "--user-master", "u", "--security-erase-enhanced", pw, drive], returncode=5, stderr=f"erase with {pw}: SG_IO: bad/missing sense data\n")
    fake_commands.add(["hdparm", "--user-master", "u", "--security-disable", pw, drive], returncode=5, stderr="SG_IO: bad/missing sense data\n")
    with caplog.at_level(logging.DEBUG):
        result = execute.sanitize(plan, config=cfg)
    assert ("hdparm", "--user-master", "u", "--security-set-pass", pw, drive) in fake_commands.calls
    payload = json.dumps(build_payload(result, None, cfg, key_id=StationKey.generate().key_id))
    assert "--security-set-pass" in payload and '"***"' in payload
    assert pw not in payload
    assert caplog.records and pw not in caplog.text
    assert "security-set-pass *** " in caplog.text
