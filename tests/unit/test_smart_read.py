"""read_smart through the command gateway, with recorded smartctl outputs keyed by argv."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.audit import smart
from agent.records import Disk, DiskVerdict, Transport, UsbBridge

FIX = Path(__file__).parent.parent / "fixtures"


def sata(path="/dev/sda") -> Disk:
    return Disk(path=path, name=path.rsplit("/", 1)[-1], transport=Transport.SATA)


def test_exit_bitmask_is_decoded_bit_by_bit():
    assert smart.decode_exit_status(0) == []
    bits = smart.decode_exit_status(216)
    assert [b.split(":")[0] for b in bits] == ["bit 3", "bit 4", "bit 6", "bit 7"]
    assert bits[0] == "bit 3: SMART status check returned DISK FAILING"


def test_sata_disk_is_queried_without_device_type(fake_commands):
    fake_commands.add(["smartctl", "-x", "--json", "/dev/sda"], fixture="smartctl/smart-ata.json")
    s = smart.read_smart(sata())
    assert s.health.verdict == DiskVerdict.GOOD
    assert s.argv == ["smartctl", "-x", "--json", "/dev/sda"]
    assert s.raw is None  # kept only when asked


def test_nvme_disk_is_queried_with_d_nvme(fake_commands):
    fake_commands.add(["smartctl", "-x", "--json", "-d", "nvme", "/dev/nvme0n1"], fixture="smartctl/smart-nvme-failed.json")
    s = smart.read_smart(Disk(path="/dev/nvme0n1", name="nvme0n1", transport=Transport.NVME), keep_raw=True)
    assert s.health.verdict == DiskVerdict.WORN
    assert s.device_type == "nvme"
    assert s.raw["nvme_smart_health_information_log"]["media_errors"] == 7


def test_sata_drive_behind_a_usb_bridge_is_queried_with_d_sat(fake_commands):
    fake_commands.add(
        ["smartctl", "-x", "--json", "-d", "sat", "/dev/sdc"], returncode=216, fixture="smartctl/smart-fail2.json"
    )
    disk = Disk(path="/dev/sdc", name="sdc", transport=Transport.USB, usb_bridge=UsbBridge("152d", "0578"))
    s = smart.read_smart(disk)
    assert s.health.verdict == DiskVerdict.FAILING
    assert s.device_type == "sat"


def test_nvme_drive_behind_a_realtek_bridge_uses_its_pass_through():
    disk = Disk(path="/dev/sdd", name="sdd", transport=Transport.USB, usb_bridge=UsbBridge("0bda", "9210"))
    assert smart.smartctl_argv(disk) == ["smartctl", "-x", "--json", "-d", "sntrealtek", "/dev/sdd"]


def test_open_failure_exit_2_is_unknown_with_the_reason(fake_commands):
    fake_commands.add(["smartctl", "-x", "--json", "/dev/sda"], returncode=2, fixture="smartctl/smart-fail.json")
    s = smart.read_smart(sata())
    assert s.query_failed
    assert s.health.verdict == DiskVerdict.UNKNOWN
    assert "device open failed" in s.health.reasons[0]


def test_garbage_output_is_unknown_with_the_reason(fake_commands):
    fake_commands.add(["smartctl", "-x", "--json", "/dev/sda"], "Segmentation fault\n\x00\x01", returncode=139)
    s = smart.read_smart(sata())
    assert s.health.verdict == DiskVerdict.UNKNOWN
    assert s.health.reasons == ["smartctl printed output that is not JSON (Expecting value at line 1) (exit 139)"]


def test_truncated_json_is_unknown_not_a_crash(fake_commands):
    text = (FIX / "smartctl" / "smart-ata.json").read_text()[:500]
    fake_commands.add(["smartctl", "-x", "--json", "/dev/sda"], text)
    assert smart.read_smart(sata()).health.verdict == DiskVerdict.UNKNOWN


def test_missing_smartctl_is_unknown_with_the_reason(fake_commands):
    fake_commands.missing_tools.add("smartctl")
    s = smart.read_smart(sata())
    assert s.health.verdict == DiskVerdict.UNKNOWN
    assert s.health.reasons == ["smartctl is not installed"]


@pytest.mark.parametrize("transport", [Transport.LOOP, Transport.VIRTIO, Transport.FILE, Transport.MMC])
def test_devices_without_smart_are_not_queried(fake_commands, transport):
    s = smart.read_smart(Disk(path="/dev/x", name="x", transport=transport))
    assert fake_commands.calls == []
    assert s.health.verdict == DiskVerdict.UNKNOWN
    assert "no SMART" in s.health.reasons[0]


def test_audit_records_whether_the_usb_bridge_passes_commands_through(fake_commands):
    from agent.audit import audit_disks

    fake_commands.add(
        ["smartctl", "-x", "--json", "-d", "sat", "/dev/sdc"], returncode=216, fixture="smartctl/smart-fail2.json"
    )
    fake_commands.add(["smartctl", "-x", "--json", "-d", "sat", "/dev/sdd"], returncode=2, fixture="smartctl/smart-fail.json")
    good = Disk(path="/dev/sdc", name="sdc", transport=Transport.USB, usb_bridge=UsbBridge("152d", "0578"))
    bad = Disk(path="/dev/sdd", name="sdd", transport=Transport.USB, usb_bridge=UsbBridge("05e3", "0749"))
    audit_disks([good, bad])
    assert good.usb_bridge.passthrough is True
    assert bad.usb_bridge.passthrough is False


def test_bridge_passthrough_stays_unknown_without_smartctl(fake_commands):
    from agent.audit import audit_disks

    fake_commands.missing_tools.add("smartctl")
    disk = Disk(path="/dev/sdc", name="sdc", transport=Transport.USB, usb_bridge=UsbBridge("152d", "0578"))
    audit_disks([disk])
    assert disk.usb_bridge.passthrough is None
