"""Self-encrypting drives on recorded sedutil outputs: the SSC, the locking state, and
the decision (sanitize as usual, FAILED locked, or PSID revert)."""

from __future__ import annotations

import pytest

from agent.sanitize import sed
from tests.fakes import FIXTURES

SED = FIXTURES / "sed"


def query(name: str) -> sed.SedInfo:
    info = sed.parse_query((SED / name).read_text())
    assert info is not None
    return info


def test_opal_215_with_locking_enabled_but_unlocked():
    info = query("sedutil-query-crucial-t710-nvme-opal2.15-lockingenabled-unlocked.txt")
    assert info.ssc == ["Opal 2.15"]
    assert (info.locking_enabled, info.locked, info.media_encrypt) == (True, False, True)
    d = sed.decide(info, "SN1")
    assert d.action == "sanitize" and "Opal 2.15" in d.reason and "no locked range" in d.reason


def test_opal_2_with_locking_not_enabled():
    info = query("sedutil-query-samsung-960-evo-nvme-opal2-locking-not-enabled.txt")
    assert info.ssc == ["Opal 2.0"]
    assert (info.locking_supported, info.locking_enabled, info.locked) == (True, False, False)
    assert sed.decide(info, "S3ESNX0J").action == "sanitize"


def test_enterprise_sas_drive():
    info = query("sedutil-query-toshiba-mg08scp16te-sas-enterprise-lockingenabled.txt")
    assert info.ssc == ["Enterprise"] and info.locking_enabled and info.locked is False


def locked(name="sedutil-query-crucial-t710-nvme-opal2.15-lockingenabled-unlocked.txt") -> sed.SedInfo:
    # The same drive after its owner locked it: the one flag that changes in --query.
    text = (SED / name).read_text().replace("Locked = N", "Locked = Y")
    return sed.parse_query(text)


def test_a_locked_range_without_a_psid_fails_the_drive():
    d = sed.decide(locked(), "2207E6123456", {"OTHERSERIAL": "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"})
    assert d.action == "fail"
    assert d.reason.startswith("locked self-encrypting drive (Opal 2.15)")
    assert "no PSID for serial 2207E6123456" in d.reason


def test_a_locked_range_with_its_psid_is_reverted():
    psid = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    d = sed.decide(locked(), "2207E6123456", {" 2207e6123456 ": psid})
    assert d.action == "psid-revert" and d.psid == psid


@pytest.mark.parametrize("name, expected", [
    ("sedutil-scan-linux-nvme-pyrite2-corsair-mp400.txt", {"/dev/nvme3n1": ["Pyrite 2"]}),
    ("sedutil-scan-linux-nvme-pyrite1-and-non-sed-usb-disks.txt",
     {"/dev/nvme0": ["Pyrite 1"], "/dev/sda": [], "/dev/sdb": [], "/dev/sdc": [], "/dev/sdd": []}),
    ("sedutil-scan-linux-samsung-860-evo-opal2-and-seagate-sas-enterprise.txt",
     {"/dev/sda": ["Opal 2"], "/dev/sdb": ["Enterprise"], "/dev/sdc": ["Enterprise"]}),
])
def test_scan_letters(name, expected):
    assert sed.parse_scan((SED / name).read_text()) == expected


def test_not_a_sed_and_unknown_state_are_sanitized_as_usual():
    assert sed.parse_query("Invalid or unsupported disk /dev/sda\n") is None
    assert sed.decide(None, "X").action == "sanitize"
    unknown = sed.SedInfo(ssc=["Pyrite 2"], source="sedutil-cli --scan")
    assert "unknown locking state" in sed.decide(unknown, "X").reason


def test_nvme_oacs_bit_0_is_the_tcg_transport():
    assert sed.nvme_security_supported(0x17) and not sed.nvme_security_supported(0x10a)


# --------------------------------------------------------------------------- in the plan

from agent.config import Config  # noqa: E402
from agent.records import Disk, Media, Outcome, Transport  # noqa: E402
from agent.sanitize import execute  # noqa: E402
from agent.sanitize.policy import make_plan  # noqa: E402

OPAL = "sedutil-query-crucial-t710-nvme-opal2.15-lockingenabled-unlocked.txt"


def sata_sed(fake, query_text: str):
    fake.missing_tools.discard("sedutil-cli")
    fake.add(["sedutil-cli", "--query", "/dev/sda"], query_text)
    fake.add(["hdparm", "-I", "/dev/sda"], fixture="hdparm/security-supported-not-frozen.txt")
    fake.add(["hdparm", "-N", "/dev/sda"], fixture="hdparm/N-ssd-no-hpa.txt")
    fake.add(["hdparm", "--dco-identify", "/dev/sda"], fixture="hdparm/dco-identify-ssd-no-overlay.txt")
    return Disk(path="/dev/sda", name="sda", transport=Transport.SATA, media=Media.SSD, serial="2207E6123456",
                size_bytes=60579792 * 512, target=True)


def test_an_unlocked_sed_is_planned_as_usual_and_the_certificate_notes_say_it_is_one(fake_commands):
    plan = make_plan(sata_sed(fake_commands, (SED / OPAL).read_text()))
    assert plan.steps and plan.refused is None
    assert "self-encrypting drive (Opal 2.15), no locked range: sanitized as usual" in plan.notes


def test_a_locked_sed_is_failed_before_any_write_with_the_reason(fake_commands):
    disk = sata_sed(fake_commands, (SED / OPAL).read_text().replace("Locked = N", "Locked = Y"))
    plan = make_plan(disk)
    assert plan.steps == [] and plan.refused.startswith("locked self-encrypting drive (Opal 2.15)")


@pytest.mark.root
def test_a_locked_sed_ends_failed_with_the_reason_and_nothing_written(fake_commands, loopdevs, tmp_path):
    dev = loopdevs.create(4 << 20, fill=b"DONOR DATA ")
    from agent import discover

    disk = discover.disk_for_path(dev)
    disk.transport, disk.media = Transport.SATA, Media.SSD
    fake_commands.missing_tools.discard("sedutil-cli")
    fake_commands.add(["sedutil-cli", "--query", dev], (SED / OPAL).read_text().replace("Locked = N", "Locked = Y"))
    plan = make_plan(disk)
    result = execute.sanitize(plan, config=Config(state_dir=tmp_path))
    assert result.outcome == Outcome.FAILED and result.category is None
    assert result.notes[-1] == plan.refused and plan.refused.startswith("locked self-encrypting drive")
    with open(dev, "rb") as f:
        assert f.read(11) == b"DONOR DATA "  # nothing was written


def test_without_sedutil_nothing_is_asked(fake_commands):
    disk = sata_sed(fake_commands, "")
    fake_commands.missing_tools.add("sedutil-cli")
    plan = make_plan(disk)
    assert ("sedutil-cli", "--query", "/dev/sda") not in fake_commands.calls
    assert plan.steps and not any("self-encrypting" in n for n in plan.notes)


# --------------------------------------------------------------------------- PSID revert

PSID = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
LOCKED = (SED / OPAL).read_text().replace("Locked = N", "Locked = Y")
REVERTED = (SED / OPAL).read_text().replace("LockingEnabled = Y", "LockingEnabled = N")


def test_psid_config_is_validated(tmp_path):
    from agent.config import load_config
    from agent.errors import ConfigError

    good = tmp_path / "good.yaml"
    good.write_text(f"psid:\n  '2207E6123456': {PSID}\n")
    assert load_config(str(good)).psid == {"2207E6123456": PSID}
    bad = tmp_path / "bad.yaml"
    bad.write_text("psid:\n  '2207E6123456': 1234\n")
    with pytest.raises(ConfigError, match="psid.2207E6123456 must be the 32-character PSID"):
        load_config(str(bad))


def test_a_locked_sed_with_its_psid_is_planned_for_revert_without_the_psid_in_the_plan(fake_commands):
    disk = sata_sed(fake_commands, LOCKED)
    plan = make_plan(disk, config=Config(psid={"2207E6123456": PSID}))
    assert [s.method for s in plan.steps] == ["tcg-psid-revert", "overwrite:zero"]
    assert plan.steps[0].category == "Purge" and plan.steps[0].options == {"psid_for": "2207E6123456"}
    assert PSID not in repr(plan)


def _loop_sed(fake_commands, loopdevs, *answers):
    from agent import discover

    dev = loopdevs.create(4 << 20, fill=b"DONOR DATA ")
    disk = discover.disk_for_path(dev)
    disk.transport, disk.media = Transport.SATA, Media.SSD
    fake_commands.missing_tools.discard("sedutil-cli")
    for text in answers:
        fake_commands.add(["sedutil-cli", "--query", dev], text)
    return dev, disk


@pytest.mark.root
def test_psid_revert_verified_is_purge_and_the_psid_is_nowhere_in_the_certificate(fake_commands, loopdevs, tmp_path):
    import json

    import certify_samples as S
    from agent.certify import issue_certificate
    from agent.certify.check import check_file
    from agent.certify.keys import StationKey

    dev, disk = _loop_sed(fake_commands, loopdevs, LOCKED, REVERTED)
    cfg = Config(state_dir=tmp_path, psid={disk.identity: PSID})
    disk.serial = disk.identity  # a loop device has no serial: file its PSID under its identity
    plan = make_plan(disk, config=cfg)
    fake_commands.add(["sedutil-cli", "--PSIDrevert", PSID, dev], "")
    result = execute.sanitize(plan, config=cfg)
    revert = result.steps[0]
    assert revert.method == "tcg-psid-revert" and revert.status == "success", revert.error
    assert result.outcome == Outcome.SUCCESS and result.category == "Purge" and result.method == "tcg-psid-revert"
    assert revert.commands[0]["argv"] == ["sedutil-cli", "--PSIDrevert", "***", dev]
    key = StationKey.generate()
    files = issue_certificate(result, None, S.config(), key, tmp_path / "out")
    report = check_file(files.json_path, {key.key_id: key.public_key})
    assert report.valid, report.reasons
    text = json.dumps(report.payload)
    assert PSID not in text and "***" in text
    assert "TCG PSID revert" in json.dumps(report.payload["sanitization"])
    assert report.payload["sanitization"]["category"] == "Purge"


@pytest.mark.root
def test_psid_revert_that_leaves_locking_enabled_is_not_purge(fake_commands, loopdevs, tmp_path):
    dev, disk = _loop_sed(fake_commands, loopdevs, LOCKED, LOCKED.replace("Locked = Y", "Locked = N"))
    disk.serial = disk.identity
    cfg = Config(state_dir=tmp_path, psid={disk.identity: PSID})
    plan = make_plan(disk, config=cfg)
    fake_commands.add(["sedutil-cli", "--PSIDrevert", PSID, dev], "")
    result = execute.sanitize(plan, config=cfg)
    assert result.steps[0].status == "failed"
    assert "still reports locking enabled" in result.steps[0].error
    assert result.category != "Purge"  # the loop device then takes the overwrite: Clear at best


def test_an_nvme_that_may_be_a_sed_says_so_when_sedutil_is_absent(fake_commands):
    import json

    data = json.loads((FIXTURES / "nvme" / "id-ctrl-qemu-7.2.json").read_text())
    data["oacs"] = 0x10B  # QEMU's 0x10a plus bit 0, Security Send/Receive
    fake_commands.add(["nvme", "id-ctrl", "/dev/nvme0", "-o", "json"], json.dumps(data))
    fake_commands.add(["nvme", "list-ns", "/dev/nvme0", "-o", "json"], fixture="nvme/list-ns-one.json")
    disk = Disk(path="/dev/nvme0n1", name="nvme0n1", transport=Transport.NVME, media=Media.NVME,
                size_bytes=1 << 30, serial="NVME123", target=True)
    plan = make_plan(disk)
    assert any("may be a self-encrypting drive" in n for n in plan.notes)
    data["oacs"] = 0x10A
    fake_commands.recordings.clear()
    fake_commands.add(["nvme", "id-ctrl", "/dev/nvme0", "-o", "json"], json.dumps(data))
    fake_commands.add(["nvme", "list-ns", "/dev/nvme0", "-o", "json"], fixture="nvme/list-ns-one.json")
    assert not any("self-encrypting" in n for n in make_plan(disk).notes)
