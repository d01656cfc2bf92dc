"""Machine readers over sysfs-shaped trees and recorded dmidecode/lspci outputs."""

from __future__ import annotations

import os
from pathlib import Path

from agent.audit import dmidecode, machine
from test_audit_edid import make_edid

FIX = Path(__file__).parent.parent / "fixtures"
VM_STDERR = "/dev/mem: No such file or directory\n/dev/mem: No such file or directory\n"


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text + "\n")


# --------------------------------------------------------------------------- DMI


def test_dmi_is_read_from_sysfs_with_placeholders_dropped_and_chassis_named(tmp_path):
    dmi = tmp_path / "class" / "dmi" / "id"
    write(dmi / "sys_vendor", "LENOVO")
    write(dmi / "product_name", "20L5CTO1WW")
    write(dmi / "product_version", "ThinkPad T480")
    write(dmi / "product_serial", "PF1ABCDE")
    write(dmi / "board_serial", "To Be Filled By O.E.M.")
    write(dmi / "chassis_type", "10")
    info, reason = machine.read_dmi(str(tmp_path))
    assert reason is None
    assert (info.system_vendor, info.system_product, info.system_version) == ("LENOVO", "20L5CTO1WW", "ThinkPad T480")
    assert info.system_serial == "PF1ABCDE"
    assert info.board_serial is None
    assert info.chassis_type == "Notebook"
    assert info.source == "sysfs"


def test_dmi_falls_back_to_dmidecode_without_sysfs(tmp_path, fake_commands):
    fake_commands.add(["dmidecode", "-t", "0,1,2,3"], fixture="dmidecode/laptop-t-0123.txt")
    info, reason = machine.read_dmi(str(tmp_path))
    assert reason is None
    assert info.source == "dmidecode"
    assert (info.system_vendor, info.system_version, info.chassis_type) == ("LENOVO", "ThinkPad T480", "Notebook")
    assert info.system_uuid == "3f1c2a5e-2b7d-11b2-a85c-8b3c2d4e5f60"
    assert info.bios_version == "N24ET56W (1.31 )"


def test_vm_without_smbios_has_null_dmi_with_the_reason(tmp_path, fake_commands):
    # Recorded on this project's VM: dmidecode exits 1 and finds no entry point.
    fake_commands.add(
        ["dmidecode", "-t", "0,1,2,3"], fixture="dmidecode/vm-no-smbios-t-memory.txt", returncode=1, stderr=VM_STDERR
    )
    info, reason = machine.read_dmi(str(tmp_path))
    assert info is None
    assert reason == "no /sys/class/dmi/id and dmidecode found no SMBIOS table (/dev/mem: No such file or directory)"


def test_missing_dmidecode_gives_a_reason(tmp_path, fake_commands):
    fake_commands.missing_tools.add("dmidecode")
    assert machine.read_dmi(str(tmp_path)) == (None, "no /sys/class/dmi/id and dmidecode is not installed")


# --------------------------------------------------------------------------- memory


def test_memory_modules_are_parsed_from_dmidecode(tmp_path, fake_commands):
    write(tmp_path / "meminfo", "MemTotal:       16262720 kB\nMemFree:         1000 kB")
    fake_commands.add(["dmidecode", "-t", "memory"], fixture="dmidecode/laptop-2x8g-ddr4-t-memory.txt")
    info, missing = machine.read_memory(str(tmp_path))
    assert missing == {}
    assert info.total_bytes == 16262720 * 1024
    assert (info.slots_total, info.slots_used, info.installed_bytes) == (3, 2, 16 << 30)
    first, empty, third = info.modules
    assert (first.slot, first.size_bytes, first.type, first.speed_mts, first.form_factor) == (
        "ChannelA-DIMM0",
        8 << 30,
        "DDR4",
        2400,
        "SODIMM",
    )
    assert (first.manufacturer, first.part_number, first.serial) == ("Samsung", "M471A1K43CB1-CRC", "12345678")
    assert empty.size_bytes is None and empty.manufacturer is None
    assert (third.size_bytes, third.speed_mts, third.configured_speed_mts) == (8 << 30, 2667, 2400)


def test_memory_modules_are_null_with_a_reason_on_a_vm_without_smbios(tmp_path, fake_commands):
    write(tmp_path / "meminfo", "MemTotal:       2000000 kB")
    fake_commands.add(
        ["dmidecode", "-t", "memory"], fixture="dmidecode/vm-no-smbios-t-memory.txt", returncode=1, stderr=VM_STDERR
    )
    info, missing = machine.read_memory(str(tmp_path))
    assert info.total_bytes == 2000000 * 1024 and info.modules is None
    assert missing == {
        "memory.modules": "dmidecode found no memory devices in SMBIOS (/dev/mem: No such file or directory)"
    }


def test_dmidecode_placeholders_mean_nothing():
    assert dmidecode.clean("  To Be Filled By O.E.M. ") is None
    assert dmidecode.clean("Default string") is None
    assert dmidecode.clean("LENOVO") == "LENOVO"


# --------------------------------------------------------------------------- battery


def test_battery_health_is_full_over_design_capacity(tmp_path):
    bat = tmp_path / "class" / "power_supply" / "BAT0"
    write(bat / "type", "Battery")
    write(bat / "energy_full_design", "57020000")  # µWh
    write(bat / "energy_full", "39914000")
    write(bat / "cycle_count", "412")
    write(bat / "manufacturer", "SMP")
    write(bat / "model_name", "01AV445")
    write(tmp_path / "class" / "power_supply" / "AC" / "type", "Mains")
    mouse = tmp_path / "class" / "power_supply" / "hidpp_battery_0"
    write(mouse / "type", "Battery")
    write(mouse / "scope", "Device")
    batteries, reason = machine.read_batteries(str(tmp_path))
    assert reason is None
    assert [b.name for b in batteries] == ["BAT0"]
    b = batteries[0]
    assert (b.unit, b.design_capacity, b.full_capacity, b.health_percent, b.cycle_count) == (
        "mWh",
        57020.0,
        39914.0,
        70.0,
        412,
    )


def test_battery_reporting_charge_uses_mah(tmp_path):
    bat = tmp_path / "class" / "power_supply" / "BAT1"
    write(bat / "type", "Battery")
    write(bat / "charge_full_design", "4400000")
    write(bat / "charge_full", "2200000")
    write(bat / "cycle_count", "0")
    (b,), _ = machine.read_batteries(str(tmp_path))
    assert (b.unit, b.health_percent, b.cycle_count) == ("mAh", 50.0, None)


def test_no_battery_is_null_with_a_reason(tmp_path):
    assert machine.read_batteries(str(tmp_path)) == (
        None,
        "no battery in /sys/class/power_supply (desktop, server or VM)",
    )


# --------------------------------------------------------------------------- GPU, NIC, display


def test_gpus_come_from_pci_class_03_with_names_from_lspci(tmp_path, fake_commands):
    pci = tmp_path / "bus" / "pci" / "devices"
    write(pci / "0000:00:02.0" / "class", "0x030000")
    write(pci / "0000:00:02.0" / "vendor", "0x8086")
    write(pci / "0000:00:02.0" / "device", "0x5917")
    write(pci / "0000:00:1f.6" / "class", "0x020000")
    lspci = (
        '00:02.0 "VGA compatible controller [0300]" "Intel Corporation [8086]" '
        '"UHD Graphics 620 [5917]" -r07 -p00 "Lenovo [17aa]" "Device [225d]"\n'
        '00:1f.6 "Ethernet controller [0200]" "Intel Corporation [8086]" "Ethernet Connection (4) I219-V [15d8]" -r21 "" ""\n'
    )
    fake_commands.add(["lspci", "-mm", "-nn"], lspci)
    gpus, reason = machine.read_gpus(str(tmp_path))
    assert reason is None
    assert [(g.slot, g.vendor, g.device, g.vendor_id, g.device_id) for g in gpus] == [
        ("0000:00:02.0", "Intel Corporation", "UHD Graphics 620", "8086", "5917")
    ]


def test_lspci_of_this_vm_parses():
    names = machine.parse_lspci_mm((FIX / "lspci" / "vm-virtio-mm-nn.txt").read_text())
    assert names["00:02.0"] == ("Red Hat, Inc.", "Virtio 1.0 block device")


def test_no_gpu_is_null_with_a_reason_and_lspci_is_not_run(tmp_path, fake_commands):
    gpus, reason = machine.read_gpus(str(tmp_path))
    assert gpus is None and "no PCI display controller" in reason
    assert fake_commands.calls == []


def test_nics_skip_virtual_interfaces_and_tell_wireless_from_wired(tmp_path):
    net = tmp_path / "class" / "net"
    for name, mac in (("enp0s31f6", "8c:16:45:00:00:01"), ("wlp3s0", "a0:a4:c5:00:00:02"), ("lo", "00:00:00:00:00:00")):
        write(net / name / "address", mac)
    for name in ("enp0s31f6", "wlp3s0"):
        dev = tmp_path / "devices" / name
        write(dev / "vendor", "0x8086")
        os.symlink(dev, net / name / "device")
    (net / "wlp3s0" / "wireless").mkdir()
    nics, reason = machine.read_nics(str(tmp_path))
    assert reason is None
    assert [(n.name, n.mac, n.kind, n.vendor_id) for n in nics] == [
        ("enp0s31f6", "8c:16:45:00:00:01", "wired", "8086"),
        ("wlp3s0", "a0:a4:c5:00:00:02", "wireless", "8086"),
    ]


def test_displays_are_decoded_from_connected_connectors_only(tmp_path):
    drm = tmp_path / "class" / "drm"
    write(drm / "card0-eDP-1" / "edid", make_edid())
    write(drm / "card0-HDMI-A-1" / "edid", b"")
    write(drm / "card0" / "dev", "226:0")
    displays, reason = machine.read_displays(str(tmp_path))
    assert reason is None
    assert [(d.connector, d.diagonal_inches, d.preferred_width) for d in displays] == [("eDP-1", 14.0, 1920)]


def test_no_drm_is_null_with_a_reason(tmp_path):
    assert machine.read_displays(str(tmp_path)) == (None, "no /sys/class/drm (no graphics driver loaded)")


def test_this_machine_is_read_without_crashing_and_every_null_has_a_reason():
    m = machine.read_machine()
    assert m.cpu is not None and m.cpu.threads
    assert m.memory is not None and m.memory.total_bytes
    for key in ("dmi", "batteries", "gpus", "nics", "displays"):
        if getattr(m, key) is None:
            assert m.missing.get(key), key
