"""Classification and identity of recorded devices (tests/fixtures/udev/<device>/).

Each folder holds the device's udev properties, the sysfs attributes discover reads, and
the expected result. A new real-world device is one new folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.discover import udev
from agent.discover.probe import disk_from_properties
from agent.discover.protect import DeviceFacts, decide
from agent.discover.system import SystemState
from agent.records import Media, Transport, to_dict

UDEV = Path(__file__).parent.parent / "fixtures" / "udev"
DEVICES = sorted(p.name for p in UDEV.iterdir() if p.is_dir())


def _load(device: str) -> tuple[dict, dict, dict]:
    folder = UDEV / device
    return tuple(json.loads((folder / f"{k}.json").read_text()) for k in ("properties", "sysfs", "expected"))


def test_every_recorded_device_folder_is_complete():
    assert len(DEVICES) >= 10
    for device in DEVICES:
        for k in ("properties", "sysfs", "expected"):
            assert (UDEV / device / f"{k}.json").exists(), (device, k)


@pytest.mark.parametrize("device", DEVICES)
def test_recorded_device_is_classified_and_identified_as_expected(device):
    props, attrs, expected = _load(device)
    name = props["DEVNAME"].rsplit("/", 1)[-1]
    disk = to_dict(disk_from_properties(name, props, attrs))
    for key, value in expected.items():
        if key in ("target", "reasons"):
            continue
        assert disk[key] == value, f"{device}: {key}"


@pytest.mark.parametrize("device", DEVICES)
def test_recorded_device_found_by_enumeration_gets_the_expected_decision(device):
    props, attrs, expected = _load(device)
    name = props["DEVNAME"].rsplit("/", 1)[-1]
    disk = disk_from_properties(name, props, attrs)
    facts = DeviceFacts(
        name=name,
        devnode=disk.path,
        transport=disk.transport,
        properties=props,
        size_bytes=disk.size_bytes,
        read_only=disk.read_only,
        force_ro=disk.force_ro,
        serials=[s for s in (disk.serial, disk.wwn) if s],
    )
    target, reasons = decide(facts, SystemState(), explicit=False)
    assert target is expected["target"], (device, reasons)
    if "reasons" in expected:
        assert reasons == expected["reasons"]


def test_usb_enclosure_of_an_nvme_drive_is_usb_not_nvme():
    props = {
        "DEVNAME": "/dev/sdf",
        "DEVTYPE": "disk",
        "ID_BUS": "usb",
        "ID_USB_DRIVER": "uas",
        "ID_PATH": "pci-0000:00:14.0-usb-0:3:1.0-scsi-0:0:0:0",
        "ID_USB_VENDOR_ID": "0bda",
        "ID_USB_MODEL_ID": "9210",
    }
    assert udev.device_get_transport(props) == Transport.USB


def test_transport_is_told_from_the_kernel_devpath_when_udev_has_no_id_properties():
    def t(devpath, name):
        return udev.device_get_transport({"DEVPATH": devpath, "DEVNAME": f"/dev/{name}"})

    assert t("/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda", "sda") == Transport.SATA
    assert t("/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host6/target6:0:0/6:0:0:0/block/sdb", "sdb") == (
        Transport.USB
    )
    assert t("/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1", "nvme0n1") == Transport.NVME
    assert t("/devices/pci0000:00/0000:00:14.5/mmc_host/mmc0/mmc0:aaaa/block/mmcblk0", "mmcblk0") == Transport.MMC
    assert t("/devices/pci0000:00/0000:01:00.0/host0/port-0:0/end_device-0:0/target0:0:0/0:0:0:0/block/sdc", "sdc") == (
        Transport.SAS
    )


def test_ata_rotation_rate_wins_over_the_kernel_rotational_flag():
    props = {"DEVNAME": "/dev/sda", "ID_BUS": "ata", "ID_ATA_ROTATION_RATE_RPM": "0"}
    assert udev.device_get_media(props, Transport.SATA, rotational=True) == Media.SSD
    props["ID_ATA_ROTATION_RATE_RPM"] = "5400"
    assert udev.device_get_media(props, Transport.SATA, rotational=False) == Media.HDD


def test_media_is_unknown_when_nothing_tells_it():
    assert udev.device_get_media({"DEVNAME": "/dev/sda"}, Transport.SCSI, rotational=None) == Media.UNKNOWN


def test_serial_falls_back_from_short_to_full_id_serial():
    assert udev.device_get_serial({"ID_SERIAL_SHORT": "ABC", "ID_SERIAL": "Model_ABC"}) == "ABC"
    assert udev.device_get_serial({"ID_SERIAL": "Model_ABC"}) == "Model_ABC"
    assert udev.device_get_serial({"ID_SERIAL_RAW": "  RAW1  ", "ID_SERIAL_SHORT": "X"}) == "RAW1"
    assert udev.device_get_serial({}) is None


def test_model_is_decoded_from_the_escaped_udev_property():
    assert udev.device_get_model({"ID_MODEL_ENC": "WDC\\x20WD10EZEX\\x20\\x20", "ID_MODEL": "WDC_WD10EZEX"}) == (
        "WDC WD10EZEX"
    )


def test_partitions_and_stacked_volumes_are_recognised():
    assert udev.device_is_partition({"DEVTYPE": "partition"})
    assert not udev.device_is_disk({"DEVTYPE": "partition"})
    assert udev.device_is_stacked({"DEVNAME": "/dev/dm-0", "DM_NAME": "vg-root"})
    assert udev.device_is_stacked({"DEVNAME": "/dev/md127", "MD_LEVEL": "raid1"})
    assert not udev.device_is_stacked({"DEVNAME": "/dev/sda"})


def test_recorded_disk_whose_serial_is_excluded_by_config_is_protected():
    props, attrs, _ = _load("sata-hdd-wdc-wd10ezex")
    disk = disk_from_properties("sdb", props, attrs)
    facts = DeviceFacts(
        name="sdb",
        devnode=disk.path,
        transport=disk.transport,
        properties=props,
        size_bytes=disk.size_bytes,
        serials=[s for s in (disk.serial, disk.wwn, props.get("ID_SERIAL")) if s],
    )
    assert decide(facts, SystemState(), explicit=True, exclude_serials=["WD-WCC6Y1234567"]) == (
        False,
        ["serial WD-WCC6Y1234567 is excluded by config"],
    )
    assert decide(facts, SystemState(), explicit=True, exclude_serials=["WD-OTHER"])[0] is True


@pytest.mark.parametrize(
    "encoded, decoded",
    [
        # Escaped UTF-8 bytes are one character each, not one per byte ("CafÃ©").
        ("Caf\\xc3\\xa9\\x20SSD\\x20\\x20", "Café SSD"),
        # Characters udev kept literally, next to escapes.
        ("Disque\\x20d\\xc3\\xa9j\\xc3\\xa0\\x20vu\\x20", "Disque déjà vu"),
        # A byte that is not UTF-8 is shown as the escape it was, not guessed as Latin-1.
        ("Bad\\xe9Byte", "Bad\\xe9Byte"),
        # Control bytes are kept as the drive sent them (surfaces escape them), not dropped.
        ("Evil\\x1b[2JModel", "Evil\x1b[2JModel"),
        ("A\\x00B", "A\x00B"),
    ],
)
def test_escaped_udev_strings_are_decoded_as_utf8_bytes(encoded, decoded):
    props, _, _ = _load("usb-stick-sandisk-cruzer-blade")
    props = {**props, "ID_MODEL_ENC": encoded, "ID_VENDOR_ENC": encoded}
    assert udev.device_get_model(props) == decoded
    assert udev.device_get_vendor(props) == decoded
