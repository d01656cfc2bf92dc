"""Self-encrypting drives on recorded sedutil outputs: the SSC, the locking state, and
the decision (sanitize as usual, FAILED locked, or PSID revert)."""

from __future__ import annotations

import pytest

from agent.sanitize import sed
from tests.fakes import FIXTURES

SED = FIXTURES / "sed"
# Raw IDENTIFY words (hdparm --Istdout) of two real drives: a Samsung 870 QVO, which has
# the Trusted Computing feature set (word 48 = 0x4001), and an ATA-7 Seagate, which predates it.
TCG_WORDS = "hdparm/Istdout-samsung-870-qvo-4tb-tcg.txt"
NO_TCG_WORDS = "hdparm/Istdout-seagate-st3160023as-ata7-no-tcg.txt"


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
    assert "locking state unknown" in sed.decide(unknown, "X").reason


def test_nvme_oacs_bit_0_is_the_tcg_transport():
    assert sed.nvme_security_supported(0x17) and not sed.nvme_security_supported(0x10a)


# --------------------------------------------------------------------------- in the plan

from agent.config import Config  # noqa: E402
from agent.records import Disk, Media, Outcome, Transport  # noqa: E402
from agent.sanitize import execute  # noqa: E402
from agent.sanitize.policy import make_plan  # noqa: E402

OPAL = "sedutil-query-crucial-t710-nvme-opal2.15-lockingenabled-unlocked.txt"


def sata_sed(fake, query_text: str | None):
    """A SATA SSD; ``query_text`` is its sedutil --query, None on a station without sedutil."""
    if query_text is None:
        fake.missing_tools.add("sedutil-cli")
        fake.add(["hdparm", "--Istdout", "/dev/sda"], fixture=NO_TCG_WORDS)
    else:
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
    disk = sata_sed(fake_commands, None)
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


# --------------------------------------------------------------------------- NVMe, without sedutil

SECRECV = ["nvme", "security-recv", "/dev/nvme0"]
PROTOCOLS = [*SECRECV, "--secp=0", "--spsp=0", "--nssf=0", "--size=16", "--al=16"]
LEVEL0 = [*SECRECV, "--secp=1", "--spsp=1", "--nssf=0", "--size=2048", "--al=2048"]
# Intel 7600p with Dell firmware: TCG listed among its security protocols, and a Level 0
# Discovery with the Pyrite 1 SSC and Locking supported, not enabled (flags 0x41).
INTEL_PROTOCOLS = "nvme/security-recv-protocols-intel-7600p-dell.txt"
INTEL_LEVEL0 = "nvme/security-recv-level0-intel-7600p-dell-pyrite1.txt"


def nvme_with_security(fake, oacs=0x10B):
    import json

    data = json.loads((FIXTURES / "nvme" / "id-ctrl-qemu-7.2.json").read_text())
    data["oacs"] = oacs  # QEMU's 0x10a, plus bit 0 (Security Send/Receive) unless told otherwise
    fake.add(["nvme", "id-ctrl", "/dev/nvme0", "-o", "json"], json.dumps(data))
    fake.add(["nvme", "list-ns", "/dev/nvme0", "-o", "json"], fixture="nvme/list-ns-one.json")
    return Disk(path="/dev/nvme0n1", name="nvme0n1", transport=Transport.NVME, media=Media.NVME,
                size_bytes=1 << 30, serial="PHHH0000000256G", target=True)


def level0_locked() -> str:
    # The same drive after its owner enabled locking and locked a range: Locking flags
    # 0x41 -> 0x47 (LockingEnabled, Locked), the one byte Level 0 changes.
    text = (FIXTURES / INTEL_LEVEL0).read_text()
    return text.replace("0040: 00 02 20 0c 41", "0040: 00 02 20 0c 47")


def test_level0_discovery_of_a_pyrite_drive_reads_its_ssc_and_locking_state():
    data = sed.parse_nvme_hexdump((FIXTURES / INTEL_LEVEL0).read_text())
    assert len(data) == 160 and data[:4] == bytes.fromhex("000000a0")
    info = sed.parse_level0(data)
    assert info.ssc == ["Pyrite 1"]
    assert (info.locking_supported, info.locking_enabled, info.locked, info.media_encrypt) == (True, False, False, False)
    locked = sed.parse_level0(sed.parse_nvme_hexdump(level0_locked()))
    assert (locked.locking_enabled, locked.locked) == (True, True)


@pytest.mark.parametrize("name, protocols", [
    ("nvme/security-recv-protocols-samsung-960-pro.txt", [0x00, 0x01, 0x02, 0xEF]),
    (INTEL_PROTOCOLS, [0x00, 0x01, 0x02]),
])
def test_supported_security_protocols_are_read_from_nvme_cli(name, protocols):
    assert sed.security_protocols(sed.parse_nvme_hexdump((FIXTURES / name).read_text())) == protocols


def test_without_sedutil_an_nvme_drive_is_asked_its_level0_discovery_with_nvme_cli(fake_commands):
    disk = nvme_with_security(fake_commands)
    fake_commands.add(PROTOCOLS, fixture=INTEL_PROTOCOLS)
    fake_commands.add(LEVEL0, fixture=INTEL_LEVEL0)
    plan = make_plan(disk)
    assert "self-encrypting drive (Pyrite 1), no locked range: sanitized as usual" in plan.notes
    assert plan.steps and plan.refused is None


def test_without_sedutil_a_locked_nvme_drive_is_failed_before_any_write(fake_commands):
    disk = nvme_with_security(fake_commands)
    fake_commands.add(PROTOCOLS, fixture=INTEL_PROTOCOLS)
    fake_commands.add(LEVEL0, level0_locked())
    plan = make_plan(disk)
    assert plan.steps == [] and plan.refused.startswith("locked self-encrypting drive (Pyrite 1)")
    # Its PSID does not help without sedutil-cli, and the reason says so.
    plan = make_plan(disk, config=Config(psid={"PHHH0000000256G": PSID}))
    assert plan.steps == [] and "a PSID revert needs sedutil-cli" in plan.refused


def test_an_nvme_drive_without_the_tcg_protocol_is_not_a_sed(fake_commands):
    disk = nvme_with_security(fake_commands)
    # The Intel drive's list with TCG (01h) taken out: 00h and 02h only.
    text = (FIXTURES / INTEL_PROTOCOLS).read_text().replace("00 00 00 03 00 01 02 00", "00 00 00 02 00 02 00 00")
    fake_commands.add(PROTOCOLS, text)
    plan = make_plan(disk)
    assert tuple(LEVEL0) not in fake_commands.calls
    assert not any("self-encrypting" in n for n in plan.notes)


def test_an_unreadable_security_receive_says_the_drive_may_be_a_sed(fake_commands):
    disk = nvme_with_security(fake_commands)
    fake_commands.add(PROTOCOLS, returncode=1, stderr="NVMe status: Invalid Field in Command(0x2)\n")
    plan = make_plan(disk)
    assert any("may be a self-encrypting drive; its TCG state could not be read" in n for n in plan.notes)
    assert plan.steps


def test_an_nvme_drive_without_security_send_receive_is_not_asked(fake_commands):
    plan = make_plan(nvme_with_security(fake_commands, oacs=0x10A))
    assert not fake_commands.ran("nvme", "security-recv")
    assert not any("self-encrypting" in n for n in plan.notes)


# --------------------------------------------------------------------------- SATA, without sedutil


def words(name: str) -> list[int]:
    from agent.sanitize import ata

    return ata.parse_identify_words((FIXTURES / name).read_text(), "/dev/sda")


def test_a_sata_drive_with_identify_word_48_bit_0_is_a_tcg_drive_of_unknown_locking_state():
    info = sed.from_ata_identify(words(TCG_WORDS))
    assert info is not None and info.is_sed and info.ssc == [] and info.locked is None
    d = sed.decide(info, "S5STNF0W706332M")
    assert d.action == "sanitize"
    assert d.reason == "self-encrypting drive (TCG), locking state unknown: sanitized as usual"


def test_a_drive_older_than_acs2_is_not_taken_for_a_tcg_drive():
    w = words(NO_TCG_WORDS)
    assert sed.from_ata_identify(w) is None
    # Word 48 is only read on ACS-2 and later: an ATA-7 drive with bit 0 set (the word was
    # not defined then) is still not a TCG drive.
    w[48] = 0x4001
    assert sed.from_ata_identify(w) is None


def test_word_48_counts_only_when_its_validity_bits_are_01():
    w = words(TCG_WORDS)
    for invalid in (0x0001, 0xC001, 0x8001):
        w[48] = invalid
        assert not sed.ata_trusted_computing(w), hex(invalid)
    w[48] = 0x4000
    assert not sed.ata_trusted_computing(w)


def test_hdparm_dash_capital_i_says_nothing_of_trusted_computing():
    # Why the raw words are read: hdparm 9.65's -I page of the very drive whose word 48 is
    # 0x4001 (rendered by hdparm itself from the words) has no line for it.
    page = (FIXTURES / "hdparm" / "I-samsung-870-qvo-4tb-rendered-by-hdparm-9.65.txt").read_text()
    assert "Samsung SSD 870 QVO 4TB" in page and "Checksum: correct" in page
    assert "trusted" not in page.lower() and "tcg" not in page.lower()


def test_identify_words_that_are_short_or_corrupt_are_refused():
    from agent.errors import ToolOutputError
    from agent.sanitize import ata

    text = (FIXTURES / TCG_WORDS).read_text()
    with pytest.raises(ToolOutputError, match="248 IDENTIFY words, not 256"):
        ata.parse_identify_words(text.rsplit("\n", 2)[0] + "\n")
    corrupt = text.replace("4001 2f00", "4000 2f00")  # word 48 changed, checksum not
    with pytest.raises(ToolOutputError, match="checksum"):
        ata.parse_identify_words(corrupt)


def qvo(fake):
    fake.add(["hdparm", "-I", "/dev/sda"], fixture="hdparm/I-samsung-870-qvo-4tb-rendered-by-hdparm-9.65.txt")
    fake.add(["hdparm", "--Istdout", "/dev/sda"], fixture=TCG_WORDS)
    # Its HPA and DCO readings are not part of this test: hdparm could not read them.
    fake.add(["hdparm", "-N", "/dev/sda"], returncode=1)
    fake.add(["hdparm", "--dco-identify", "/dev/sda"], returncode=1)
    return Disk(path="/dev/sda", name="sda", transport=Transport.SATA, media=Media.SSD, serial="S5STNF0W706332M",
                size_bytes=7814037168 * 512, target=True)


def test_without_sedutil_a_tcg_sata_drive_is_planned_as_usual_and_its_notes_say_it_is_a_sed(fake_commands):
    plan = make_plan(qvo(fake_commands))
    assert ("hdparm", "--Istdout", "/dev/sda") in fake_commands.calls
    assert plan.refused is None and plan.steps
    assert "self-encrypting drive (TCG), locking state unknown: sanitized as usual" in plan.notes


def test_a_sata_drive_without_tcg_gets_no_sed_note(fake_commands):
    plan = make_plan(sata_sed(fake_commands, None))
    assert ("hdparm", "--Istdout", "/dev/sda") in fake_commands.calls
    assert not any("self-encrypting" in n for n in plan.notes)


def test_identify_words_not_readable_leave_tcg_support_unknown_and_say_so(fake_commands):
    disk = qvo(fake_commands)
    fake_commands.recordings[("hdparm", "--Istdout", "/dev/sda")] = []
    fake_commands.add(["hdparm", "--Istdout", "/dev/sda"], returncode=22, stderr="SG_IO: bad/missing sense data\n")
    plan = make_plan(disk)
    assert plan.steps and not any("self-encrypting" in n for n in plan.notes)
    assert any(n.startswith("IDENTIFY words not readable, TCG support unknown") for n in plan.notes)


def test_with_sedutil_the_identify_words_are_not_needed(fake_commands):
    plan = make_plan(sata_sed(fake_commands, (SED / OPAL).read_text()))
    assert ("hdparm", "--Istdout", "/dev/sda") not in fake_commands.calls
    assert "self-encrypting drive (Opal 2.15), no locked range: sanitized as usual" in plan.notes
