"""A laptop booted from the network, no stick: QEMU's user-mode DHCP hands the NIC's iPXE
the URL of ``ardoise-collector netboot``'s script; the image comes over HTTP into RAM, the
agent enrolls with the per-boot token, wipes the disk, and delivers before powering off.

In the same boot the collector is down from the moment the agent starts: the machine must
stay on, say NOT DELIVERED and retry, and deliver once the collector is back.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest

from live_collector import GUEST_HOST, free_port
from scenario import BOOT_TIMEOUT, DIAGNOSTICS, MiB, assert_valid, make_disks, wait_for_certificates
from vm import Machine, VirtualDisk

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

LOT = "LOT-NETBOOT"


def start_netboot(tmp_path, iso, collector, seats):
    config = tmp_path / "netboot.yaml"
    config.write_text(f"lot: {LOT}\non_finish: poweroff\nfinish_display_seconds: 1\n"
                      "operator:\n  name: E2E Technician\n"
                      f"collector:\n  url: {collector.guest_url}\n  allow_insecure_http: true\n"
                      "  retries: 1\n  backoff_s: 0.5\n  timeout_s: 5\n")
    port = free_port()
    log = open(tmp_path / "netboot.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "server_stub.cli", "netboot", "--iso", str(iso),
                             "--config", str(config), "--seats", str(seats), "--db", collector.db,
                             "--host", "127.0.0.1", "--port", str(port), "--work-dir", str(tmp_path)],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/boot.ipxe", timeout=5).read()
            return proc, port
        except OSError:
            assert proc.poll() is None, (tmp_path / "netboot.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "netboot service did not start"
            time.sleep(0.5)


def _stop(netboot, running, name: str) -> None:
    """The netboot service, and QEMU if a failed test left it running; the serial log kept
    in /var/tmp/ardoise-e2e/<name>/ for whoever reads the failure."""
    netboot.terminate()
    netboot.wait(timeout=20)
    if running is not None:
        result = running.finish()
        out = DIAGNOSTICS / name
        out.mkdir(parents=True, exist_ok=True)
        (out / "serial.log").write_text(result.serial)


def test_bios_laptop_boots_from_the_network_and_survives_a_collector_outage(live_image, collector, tmp_path):
    iso, _, _ = live_image
    seats = tmp_path / "seats.csv"
    seats.write_text("MAC,seat\n52:54:00:12:34:56,7\n")  # QEMU's default MAC for the first NIC
    netboot, port = start_netboot(tmp_path, iso, collector, seats)
    running = None
    try:
        disks = make_disks(tmp_path, [VirtualDisk(tmp_path / "NETDISK1.img", "sata", "NETDISK1", 64 * MiB)])
        machine = Machine(tmp_path, firmware="bios", bootfile=f"http://{GUEST_HOST}:{port}/boot.ipxe")
        running = machine.start(None, disks)
        running.wait_for(r"ardoise-image: network boot from", timeout=BOOT_TIMEOUT)
        running.wait_for(r"ardoise-image: agent ready", timeout=600)
        booted_after = running.elapsed()
        collector.stop()  # the collector goes down as the agent starts
        m = running.wait_for(r"not delivered; the machine stays on and retries", timeout=BOOT_TIMEOUT)
        time.sleep(40)
        assert running.proc.poll() is None, "the machine powered off with undelivered certificates"
        assert running.serial().count("not delivered; the machine stays on") >= 2  # it keeps retrying
        collector.start()
        certs = wait_for_certificates(collector, LOT, {"NETDISK1"}, running, timeout=300)
        assert_valid(collector, certs["NETDISK1"])
        result = running.wait(600)
        assert result.powered_off, result.serial[-3000:]
        assert disks[0].marker_count() == 0
        # The station enrolled with this boot's token, named by its seat.
        stations = collector.stations()
        assert [s["name"] for s in stations] == ["seat 7"], stations
        print(f"netboot: agent ready {booted_after:.0f} s after power-on; outage noticed at offset {m.start()}")
        (tmp_path.parent / "netboot-timing.txt").write_text(f"agent_ready_s={booted_after:.1f}\n")
    finally:
        _stop(netboot, running, "netboot-bios")


def test_a_laptop_with_too_little_ram_is_refused_on_screen_and_powers_off(live_image, collector, tmp_path):
    """768 MiB of RAM: the kernel still unpacks the layers, then the netboot script in the
    initramfs refuses (Debian's iPXE ROM does not know ${memsize}, so the service could not)."""
    iso, _, _ = live_image
    seats = tmp_path / "seats.csv"
    seats.write_text("MAC,seat\n")
    netboot, port = start_netboot(tmp_path, iso, collector, seats)
    running = None
    try:
        machine = Machine(tmp_path, firmware="bios", memory_mb=768,
                          bootfile=f"http://{GUEST_HOST}:{port}/boot.ipxe")
        running = machine.start(None, [])
        result = running.wait(900)
        assert "ardoise-netboot: refused:" in result.serial, result.serial[-3000:]
        assert "NOT ENOUGH RAM" in result.serial
        assert "ardoise-image: agent ready" not in result.serial
        assert result.powered_off, result.serial[-3000:]
    finally:
        _stop(netboot, running, "netboot-low-ram")


def test_uefi_laptop_boots_from_the_network_through_ipxe_efi(live_image, collector, tmp_path):
    """OVMF without Secure Boot: the NIC's iPXE EFI driver boots the same scripts; the
    kernel's EFI stub finds the two initrds by the names on the kernel line."""
    iso, _, _ = live_image
    seats = tmp_path / "seats.csv"
    seats.write_text("52:54:00:12:34:56,3\n")
    netboot, port = start_netboot(tmp_path, iso, collector, seats)
    running = None
    try:
        disks = make_disks(tmp_path, [VirtualDisk(tmp_path / "UEFIDSK1.img", "nvme", "UEFIDSK1", 64 * MiB)])
        machine = Machine(tmp_path, firmware="uefi", bootfile=f"http://{GUEST_HOST}:{port}/boot.ipxe")
        running = machine.start(None, disks)
        running.wait_for(r"ardoise-image: firmware uefi, secure boot disabled", timeout=BOOT_TIMEOUT)
        certs = wait_for_certificates(collector, LOT, {"UEFIDSK1"}, running, timeout=BOOT_TIMEOUT)
        assert_valid(collector, certs["UEFIDSK1"])
        result = running.wait(600)
        assert result.powered_off, result.serial[-3000:]
        assert disks[0].marker_count() == 0
        assert [s["name"] for s in collector.stations()] == ["seat 3"]
        print(f"netboot uefi: agent ready after {running.ready_after} s, powered off after {result.seconds:.0f} s")
    finally:
        _stop(netboot, running, "netboot-uefi")
