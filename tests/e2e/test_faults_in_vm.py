"""Faults on the real kernel paths of the booted image, which loop devices cannot give:

- bad sectors: QEMU's blkdebug driver fails every read and write of a few sectors under
  the emulated AHCI controller, so the guest's libata and block layer report a media error
  exactly as a drive with bad sectors does;
- a drive pulled mid-wipe: QEMU's ``device_del`` removes a USB disk from the running
  machine (a surprise removal), while another disk is being wiped next to it.

The agent refuses device-mapper volumes as targets (a certificate must name a physical
medium), so dm-error/dm-flakey tables would not reach the overwrite engine through
``ardoise run``; the faults are injected one layer lower, in the emulated hardware.
"""

from __future__ import annotations

import re
import time

import pytest

from scenario import BOOT_TIMEOUT, MiB, assert_signed, assert_valid, by_serial, keep_diagnostics, make_config, make_disks
from vm import Machine, VirtualDisk, data_partition, digest_outside, make_stick

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

SECTOR = 512
BAD_FIRST = (40 * MiB) // SECTOR  # well inside the disk: the kernel's partition scan never reads it
BAD_COUNT = 8
THROTTLE = 8 * 10**6  # bytes/s: a 256 MiB wipe lasts over half a minute, even on a fast host


def test_bad_sectors_fail_with_their_range_and_a_pulled_drive_is_interrupted_while_others_finish(
        live_image, tmp_path, collector):
    lot = "E2E-FAULTS"
    bad = VirtualDisk(tmp_path / "BADSECT1.img", "sata", "BADSECT1", 64 * MiB, bad_sectors=(BAD_FIRST, BAD_COUNT))
    pulled = VirtualDisk(tmp_path / "PULLED1.img", "usb", "PULLED1", 256 * MiB, throttle_bps=THROTTLE)
    steady = VirtualDisk(tmp_path / "STEADY1.img", "usb", "STEADY1", 128 * MiB, throttle_bps=THROTTLE)
    disks = make_disks(tmp_path, [bad, pulled, steady])
    # Donor data inside the range that can never be written: it must be the only copy left.
    bad.plant(BAD_FIRST * SECTOR + 100)

    iso, _, _ = live_image
    stick = make_stick(iso, tmp_path / "stick.img", make_config(collector, collector.token(lot), lot))
    part = data_partition(stick)
    before = digest_outside(stick, part)
    running = Machine(tmp_path, firmware="bios", qmp=True).start(stick, disks)
    try:
        path = running.wait_for(r"(/dev/\w+) \(PULLED1\): wiping", BOOT_TIMEOUT).group(1)
        # Pull it once its write pass is really under way, not while it is being planned.
        running.wait_for(rf"{re.escape(path)}: write pass 1/\d+ +\d+%", 300)
        time.sleep(3)
        assert "(STEADY1): passed" not in running.serial(), "STEADY1 finished too early to prove anything"
        running.unplug(pulled)
        running.wait(BOOT_TIMEOUT)
    finally:
        result = running.finish()
        keep_diagnostics("faults", result, stick, part)
    tail = result.serial[-3000:]
    assert result.powered_off, f"no power-off by itself (qemu rc={result.returncode}):\n{tail}"
    assert digest_outside(stick, part) == before

    certs = by_serial(collector.certificates(lot))
    assert set(certs) == {"BADSECT1", "PULLED1", "STEADY1"}, sorted(certs)
    for cert in certs.values():
        assert_signed(collector, cert)

    # Bad sectors: failed, never success, with exactly the range that could not be written.
    s = certs["BADSECT1"]["payload"]["sanitization"]
    assert s["outcome"] == "failed", s
    assert "category" not in s or s["category"] is None, s
    assert s["method"] == "overwrite:zero" and s["bytes_written"] == bad.size, s
    assert {"start": BAD_FIRST, "end": BAD_FIRST + BAD_COUNT} in s["error_ranges"], s["error_ranges"]
    for r in s["error_ranges"]:
        assert BAD_FIRST <= r["start"] < r["end"] <= BAD_FIRST + BAD_COUNT, s["error_ranges"]
    # Read on the host: the planted data survives only in the sectors the certificate names.
    left = [off // SECTOR for off in bad.marker_offsets()]
    assert left and all(BAD_FIRST <= lba < BAD_FIRST + BAD_COUNT for lba in left), left

    # The pulled drive: interrupted, no category; the others carried on to the end.
    s = certs["PULLED1"]["payload"]["sanitization"]
    assert s["outcome"] == "interrupted", s
    assert "category" not in s or s["category"] is None, s
    assert 0 < s["bytes_written"] < pulled.size, s  # how far it got, not "0 bytes"
    assert_valid(collector, certs["STEADY1"])
    assert steady.marker_count() == 0
