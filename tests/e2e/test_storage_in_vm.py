"""Issue 15 in the virtual machine: storage that hides, or none at all.

- One boot with an LSI MegaRAID controller whose disk the guest sees only as a RAID volume,
  and an SD card in an SD host controller: both are wiped (no planted marker survives in
  either image), the RAID certificate says it was wiped through the volume, the SD card's
  is Clear by overwrite, and the audit report lists the controllers with their drivers.
- One short boot with no disk at all: NO DISK FOUND on the serial console and in the signed
  audit report, never PASSED.
"""

from __future__ import annotations

import base64
import json

import pytest

from scenario import MiB, assert_valid, boot, make_config
from vm import VirtualDisk, mcopy_out, mdir

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]


def spooled_audit(run, tmp_path) -> dict:
    """The payload of the one audit report the run left on the stick's data partition."""
    state = tmp_path / "state-out"
    assert mcopy_out(run.stick, run.part, "/ardoise", state), mdir(run.stick, run.part)
    (path,) = list((state / "spool" / "audits").glob("*.json"))
    envelope = json.loads(path.read_text())
    return json.loads(base64.b64decode(envelope["payload"]))


def test_raid_volume_and_sd_card_are_wiped_and_certified_for_what_they_are(live_image, tmp_path, collector):
    lot = "E2E-STORAGE"
    disks = [VirtualDisk(tmp_path / "raid.img", "megasas", "RAIDVOL1", 64 * MiB),
             VirtualDisk(tmp_path / "sd.img", "sd", "SDCARD1", 32 * MiB)]
    run = boot(live_image, tmp_path, "bios", disks, make_config(collector, collector.token(lot), lot))
    run.assert_unattended_and_clean("ardoise-image: firmware bios")  # markers gone from both images
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


def test_a_machine_with_no_disk_says_no_disk_found(live_image, tmp_path):
    run = boot(live_image, tmp_path, "bios", [], make_config(None, None, "E2E-NODISK"), network=False)
    run.assert_unattended_and_clean("ardoise-image: firmware bios")
    serial = run.result.serial
    assert "RESULT machine: NO DISK FOUND" in serial, serial[-3000:]
    assert "PASSED" not in serial.split("agent ready", 1)[-1]
    audit = spooled_audit(run, tmp_path)
    assert audit["storage"]["state"] == "no_disk_found", audit["storage"]
