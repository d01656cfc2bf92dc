"""Shelf mode in the booted image, where drives really come and go: ``shelf: true`` on the
stick, an empty machine at boot, then drives hot-plugged through QEMU's monitor (USB on
the xHCI controller, NVMe on a PCIe root port) while ``ardoise run --watch`` runs."""

from __future__ import annotations

import json
import re
import time

import pytest

from scenario import (BOOT_TIMEOUT, MiB, assert_signed, assert_valid, by_serial, keep_diagnostics, make_config,
                      make_disks, wait_for_certificates)
from vm import Machine, VirtualDisk, data_partition, digest_outside, make_stick, mcopy_out

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

THROTTLE = 8 * 10**6  # bytes/s: the drive that is pulled is still being written when it is


def test_shelf_certifies_each_hot_plugged_drive_as_it_finishes_and_a_pulled_one_as_interrupted(
        live_image, tmp_path, collector):
    lot = "E2E-SHELF"
    usb = VirtualDisk(tmp_path / "SHELFUSB1.img", "usb", "SHELFUSB1", 64 * MiB)
    nvme = VirtualDisk(tmp_path / "SHELFNVME1.img", "nvme", "SHELFNVME1", 64 * MiB)
    pulled = VirtualDisk(tmp_path / "SHELFPULL1.img", "usb", "SHELFPULL1", 256 * MiB, throttle_bps=THROTTLE)
    make_disks(tmp_path, [usb, nvme, pulled])

    iso, _, _ = live_image
    config = make_config(collector, collector.token(lot), lot, on_finish="wait", extra="shelf: true\n")
    stick = make_stick(iso, tmp_path / "stick.img", config)
    part = data_partition(stick)
    before = digest_outside(stick, part)
    # An empty shelf at boot: only the stick. Two free PCIe slots for NVMe drives.
    running = Machine(tmp_path, firmware="bios", qmp=True, root_ports=2).start(stick, [])
    try:
        running.wait_for(r"ardoise: shelf mode: insert drives", BOOT_TIMEOUT)
        for disk in (usb, nvme, pulled):
            running.plug(disk)
        path = running.wait_for(r"(/dev/\w+) \(SHELFPULL1\): wiping", 600).group(1)
        running.wait_for(rf"{re.escape(path)}: write pass 1/\d+ +\d+%", 300)
        time.sleep(3)
        running.unplug(pulled)

        # Each certificate reaches the collector while the session goes on: nothing waits
        # for a last drive, because a shelf has none.
        certs = wait_for_certificates(collector, lot, {"SHELFUSB1", "SHELFNVME1", "SHELFPULL1"}, running, 900)
        assert running.proc.poll() is None

        # The certified USB drive goes back into a bay: it is recognised, not wiped again.
        mark = len(running.serial())
        running.unplug(usb, wait=60)
        running.plug(usb)
        running.wait_for(r"\(SHELFUSB1\): skipped", 300, after=mark)
        time.sleep(5)  # room for a wrong second certificate to arrive
        again = [c for c in collector.certificates(lot) if c["payload"]["media"]["serial"] == "SHELFUSB1"]
        assert len(again) == 1, [c["id"] for c in again]
        running.quit()
    finally:
        result = running.finish()
        keep_diagnostics("shelf", result, stick, part)
    assert digest_outside(stick, part) == before

    # The machine was stopped dead (QEMU quit: a power cut), seconds after the last
    # certificates: the stick's copies are whole, byte for byte what the collector holds.
    state = tmp_path / "state"
    assert mcopy_out(stick, part, "/ardoise", state)
    stored = {c["payload"]["media"]["serial"]: c["envelope"] for c in collector.certificates(lot)}
    for serial, envelope in stored.items():
        copies = [f for f in (state / "spool" / "certificates").glob(f"{serial}-*.json")]
        assert len(copies) == 1, sorted(f.name for f in (state / "spool" / "certificates").iterdir())
        assert copies[0].stat().st_size > 0, f"{copies[0].name}: empty after the power cut"
        assert json.loads(copies[0].read_bytes()) == envelope

    certs = by_serial(collector.certificates(lot))
    assert set(certs) == {"SHELFUSB1", "SHELFNVME1", "SHELFPULL1"}, sorted(certs)
    assert_valid(collector, certs["SHELFUSB1"])
    assert_valid(collector, certs["SHELFNVME1"])
    assert certs["SHELFNVME1"]["payload"]["sanitization"]["category"] == "Purge"
    s = certs["SHELFPULL1"]["payload"]["sanitization"]
    assert_signed(collector, certs["SHELFPULL1"])
    assert s["outcome"] == "interrupted", s
    assert 0 < s["bytes_written"] < pulled.size, s
    for disk in (usb, nvme):
        assert disk.marker_count() == 0, f"{disk.serial}: planted data survived"
    # Read on the host: the pulled drive really was cut off mid-wipe.
    assert pulled.marker_count() > 0
