"""Issue 15 in the virtual machine: storage that hides.

One boot, under 32-bit UEFI firmware (it also proves EFI mixed mode, issue 14), with an LSI
MegaRAID controller whose disk the guest sees only as a RAID volume, and an SD card in an
SD host controller: both are wiped (no planted marker survives in either image), the RAID
certificate says it was wiped through the volume, the SD card's is Clear by overwrite, and
the audit report lists the controllers with their drivers. The stick's config says
`language: fr`: the agent's log on the console is French. The machine with no disk at all
shares the boot of the Secure Boot 2023-keys test (test_firmware_boots.py).
"""

from __future__ import annotations

import pytest

from scenario import MiB, assert_valid, boot, make_config, spooled_audit
from vm import VirtualDisk

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]


def test_raid_volume_and_sd_card_on_32bit_uefi_are_wiped_and_certified_for_what_they_are(live_image, tmp_path,
                                                                                        collector):
    lot = "E2E-STORAGE"
    disks = [VirtualDisk(tmp_path / "raid.img", "megasas", "RAIDVOL1", 64 * MiB),
             VirtualDisk(tmp_path / "sd.img", "sd", "SDCARD1", 32 * MiB)]
    # In French (issue 12): the technician's screen and log speak the workshop's language.
    run = boot(live_image, tmp_path, "uefi32", disks, make_config(collector, collector.token(lot), lot,
                                                                    extra="language: fr\n"))
    # The amd64 kernel started by BOOTIA32.EFI in EFI mixed mode, Secure Boot off; markers
    # gone from both images.
    run.assert_unattended_and_clean("ardoise-image: uefi 32-bit (mixed mode)")
    assert "ardoise-image: firmware uefi, secure boot disabled" in run.result.serial
    agent_log = run.result.serial.split("agent ready", 1)[-1]
    assert "RÉSULTAT" in agent_log and "EFFACÉ" in agent_log, agent_log[-3000:]
    # The technician's shell on tty2 types AZERTY (the image keeps only that console keymap).
    assert "ardoise-image: keymap fr (AZERTY)" in run.result.serial, run.result.serial[-3000:]
    certs = collector.certificates(lot)
    assert len(certs) == 2, [c["payload"]["media"] for c in certs]
    for cert in certs:
        assert_valid(collector, cert)
    raid = [c["payload"] for c in certs if c["payload"]["media"].get("raid_volume")]
    assert len(raid) == 1, [c["payload"]["media"] for c in certs]
    volume = raid[0]["media"]["raid_volume"]
    assert volume["controller"].startswith("megaraid_sas at "), volume
    assert volume["note"] == "wiped through the RAID volume the controller presents, not the physical drive"
    assert raid[0]["sanitization"]["category"] == "Clear", raid[0]["sanitization"]
    (sd,) = [c["payload"] for c in certs if c["payload"]["media"]["transport"] == "mmc"]
    assert sd["sanitization"]["category"] == "Clear", sd["sanitization"]
    assert "overwrite" in (sd["sanitization"]["method"] + " " + sd["sanitization"]["technique"]).lower()
    audit = spooled_audit(run, tmp_path)
    storage = audit["storage"]
    assert storage["state"] == "ok", storage
    kinds = {c["kind"]: c for c in storage["controllers"]}
    assert kinds["raid"]["driver"] == "megaraid_sas" and kinds["raid"]["disks"], kinds
    assert kinds["sd_host"]["driver"] == "sdhci-pci" and kinds["sd_host"]["disks"] == ["mmcblk0"], kinds
