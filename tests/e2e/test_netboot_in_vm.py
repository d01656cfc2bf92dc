"""Laptops booted from the network, no stick (docs/netboot.md).

The table: four machines boot at once from a switch in network namespaces the test makes
(tests/e2e/workshop_lan.py), beside the LAN's own DHCP server, through dnsmasq in
proxy-DHCP mode configured by scripts/netboot-dnsmasq.sh as a workshop would:
- SeaBIOS: the NIC's PXE ROM (QEMU's is iPXE) -> ardoise.ipxe by TFTP -> HTTP;
- OVMF: the firmware's own PXE -> Debian's snponly.efi (iPXE) -> the same HTTP boot;
- OVMF with Secure Boot enforced (Microsoft's 2011 keys): firmware PXE -> Debian's shim ->
  Debian's signed GRUB network image -> the signed kernel and both initrds by TFTP; the
  session then fetches this boot's token by MAC over HTTP;
- SeaBIOS again, whose cable is pulled once its agent runs: it must stay on, say NOT
  DELIVERED and retry, and deliver once plugged back.
Each wipes a disk with planted data, delivers certificates that verify, and powers off.

The low-RAM refusal boots alone over QEMU's user-mode network (it never gets far).
"""

from __future__ import annotations

import re
import subprocess
import threading
import sys
import time
import urllib.request

import pytest

from live_collector import GUEST_HOST, free_port
from scenario import BOOT_TIMEOUT, DIAGNOSTICS, MiB, assert_valid, make_disks, wait_for_certificates
from vm import Machine, VirtualDisk
from workshop_lan import PC, TableCollector, WorkshopLan

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


NETBOOT_PORT = 8070  # the docs' default: only iPXE speaks HTTP, signed GRUB reads TFTP
# (name, firmware, MAC, NIC option ROM, disk kind, disk serial, seat, expected firmware line)
TABLE = [
    ("bios", "bios", "52:54:00:a7:00:01", True, "sata", "TABLEDSK1", "1", "firmware bios"),
    ("uefi", "uefi", "52:54:00:a7:00:02", False, "nvme", "TABLEDSK2", "2", "firmware uefi, secure boot disabled"),
    ("secureboot", "secureboot", "52:54:00:a7:00:03", False, "sata", "TABLEDSK3", "3",
     "firmware uefi, secure boot enabled"),
    ("outage", "bios", "52:54:00:a7:00:04", True, "sata", "TABLEDSK4", "4", "firmware bios"),
]
HOLD = "not delivered; the machine stays on and retries"


def test_a_table_of_four_laptops_boots_from_the_network_at_once_through_proxy_dhcp(live_image, tmp_path):
    iso, _, _ = live_image
    lan = WorkshopLan(tmp_path)
    collector = None
    running: dict[str, object] = {}
    disks = {}
    off_after: dict[str, float] = {}
    stop = threading.Event()
    try:
        taps = lan.up([(mac, rom) for _, _, mac, rom, *_ in TABLE])
        lan.start_dhcp()
        lan.start_proxy(NETBOOT_PORT, uefi_ipxe=[TABLE[1][2]])
        collector = TableCollector(tmp_path, lan).start()
        seats = tmp_path / "seats.csv"
        seats.write_text("MAC,seat\n" + "".join(f"{mac},{seat}\n" for _, _, mac, _, _, _, seat, _ in TABLE))
        config = tmp_path / "table.yaml"
        config.write_text(f"lot: {LOT}\non_finish: poweroff\nfinish_display_seconds: 1\n"
                          "operator:\n  name: E2E Technician\n"
                          f"collector:\n  url: {collector.guest_url}\n  allow_insecure_http: true\n"
                          "  retries: 1\n  backoff_s: 0.5\n  timeout_s: 5\n")
        log = tmp_path / "netboot.log"
        netboot = lan.spawn("netboot", lan.table, [
            sys.executable, "-m", "server_stub.cli", "netboot", "--iso", str(iso), "--config", str(config),
            "--seats", str(seats), "--db", collector.db, "--host", PC, "--port", str(NETBOOT_PORT),
            "--tftp-root", str(lan.tftp), "--work-dir", str(tmp_path)])
        lan.wait_http(f"http://{PC}:{NETBOOT_PORT}/boot.ipxe", netboot, log)
        assert (lan.tftp / "ardoise" / "grub.cfg").is_file(), log.read_text()[-2000:]

        for (name, firmware, mac, rom, kind, serial, seat, _), tap in zip(TABLE, taps):
            work = tmp_path / name
            work.mkdir()
            disks[name] = make_disks(work, [VirtualDisk(work / f"{serial}.img", kind, serial, 64 * MiB)])[0]
            machine = Machine(work, firmware=firmware, smp=1, tap=tap)
            running[name] = machine.start(None, [disks[name]])
        threading.Thread(target=_clock, args=(running, off_after, stop), daemon=True).start()

        # The fourth laptop's cable comes out once its agent runs: wipe, then hold.
        outage, out_tap = running["outage"], taps[3]
        outage.wait_for(r"ardoise-image: agent ready", timeout=BOOT_TIMEOUT)
        lan.unplug(out_tap)
        outage.wait_for(HOLD, timeout=BOOT_TIMEOUT)
        time.sleep(40)
        assert outage.proc.poll() is None, "the machine powered off with undelivered certificates"
        assert outage.serial().count(HOLD) >= 2, outage.serial()[-3000:]  # it keeps retrying
        assert "NOT DELIVERED" in outage.serial()  # the red line, echoed on the serial console
        lan.plug(out_tap)

        for name, *_, serial, _, _ in TABLE:
            # Each machine's own certificate, while that machine still runs (or once it
            # has powered off after delivering: the collector is asked first).
            certs = wait_for_certificates(collector, LOT, {serial}, running[name], timeout=BOOT_TIMEOUT)
            assert_valid(collector, certs[serial])
        timings = []
        for name, firmware, mac, rom, kind, serial, seat, line in TABLE:
            result = running[name].wait(BOOT_TIMEOUT)
            assert result.powered_off, f"{name}: no power-off by itself:\n{result.serial[-3000:]}"
            assert f"ardoise-image: {line}" in result.serial, f"{name}: {result.serial[-3000:]}"
            assert disks[name].marker_count() == 0, f"{name}: planted data survived"
            # Wall clock from QEMU's start, and the guest kernel's own uptime at agent ready:
            # the difference is firmware, loaders and the download, before Linux runs.
            uptime = re.search(r"agent ready \(uptime ([0-9.]+) s", result.serial)
            timings.append(f"{name} ready_after={result.ready_after:.0f}s "
                           f"kernel_uptime_at_ready={float(uptime.group(1)):.0f}s "
                           f"powered_off_after={off_after.get(name, result.seconds):.0f}s")
        # The Secure Boot machine came through signed GRUB and fetched its token by MAC.
        assert "this boot's token fetched for 52:54:00:a7:00:03" in running["secureboot"].result.serial
        assert sorted(s["name"] for s in collector.stations()) == [f"seat {row[6]}" for row in TABLE]
        # Each loader came from the script's TFTP tree: the paths really taken.
        served = (tmp_path / "proxy-dhcp.log").read_text(errors="replace")
        for name in ("ardoise.ipxe", "snponly.efi", "shimx64.efi", "grubx64.efi", "grub/grub.cfg",
                     "ardoise/grub.cfg", "ardoise/vmlinuz", "ardoise/netboot.cpio"):
            assert f"sent {lan.tftp / name} to " in served, name
        print("netboot table: " + "; ".join(timings))
        (tmp_path.parent / "netboot-table-timing.txt").write_text("\n".join(timings) + "\n")
    finally:
        stop.set()
        out = DIAGNOSTICS / "netboot-table"
        out.mkdir(parents=True, exist_ok=True)
        for name, r in running.items():
            (out / f"{name}-serial.log").write_text(r.finish().serial)
        for proc_log in ("proxy-dhcp.log", "lan-dhcp.log", "netboot.log", "collector.log"):
            if (tmp_path / proc_log).exists():
                (out / proc_log).write_text((tmp_path / proc_log).read_text(errors="replace"))
        if collector is not None:
            collector.stop()
        lan.down()


def _clock(running: dict, off_after: dict, stop: threading.Event) -> None:
    """Each machine's times as they happen, not when the test gets round to asking: reading
    the serial log stamps "agent ready"; a QEMU that exited has powered off."""
    while not stop.is_set():
        for name, r in list(running.items()):
            r.serial()
            if name not in off_after and r.proc.poll() is not None:
                off_after[name] = r.elapsed()
        time.sleep(1)
