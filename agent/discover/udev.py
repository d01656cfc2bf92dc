"""Pure predicates over a block device's udev properties, in the manner of blivet's udev.py.

Each function takes the property dict (``DEVNAME``, ``DEVPATH``, ``ID_BUS``, ...) plus, when
needed, a few sysfs facts, and answers one question. No function here touches the system,
so every rule is tested on recorded property sets of real devices
(tests/fixtures/udev/*.json).

``DEVPATH`` comes from the kernel itself, so the transport can be told even when udevd is
not running and the ``ID_*`` properties are missing.
"""

from __future__ import annotations

import re
from typing import Mapping

from agent.records import Media, Transport

Props = Mapping[str, str]


def device_name(props: Props) -> str:
    return props.get("DEVNAME", "").rsplit("/", 1)[-1]


def device_is_disk(props: Props) -> bool:
    return props.get("SUBSYSTEM", "block") == "block" and props.get("DEVTYPE") == "disk"


def device_is_partition(props: Props) -> bool:
    return props.get("DEVTYPE") == "partition"


def device_is_loop(props: Props) -> bool:
    return device_name(props).startswith("loop") or props.get("MAJOR") == "7"


def device_is_ram(props: Props) -> bool:
    """RAM disks (brd, major 1) and compressed RAM (zram): never hold data worth a certificate."""
    name = device_name(props)
    return name.startswith(("ram", "zram")) or props.get("MAJOR") == "1"


def device_is_stacked(props: Props) -> bool:
    """device-mapper and md volumes: logical devices built on top of real disks."""
    name = device_name(props)
    return name.startswith(("dm-", "md")) or "DM_NAME" in props or "MD_LEVEL" in props


def device_is_optical(props: Props) -> bool:
    return (
        props.get("ID_CDROM") == "1"
        or props.get("ID_TYPE") == "cd"
        or props.get("MAJOR") == "11"
        or device_name(props).startswith("sr")
    )


def device_get_serial(props: Props, transport: Transport | None = None) -> str | None:
    """The drive's serial. blivet's fallback order: the raw serial, then the short one, then
    ID_SERIAL (which udev builds as VENDOR_MODEL_SERIAL when nothing better exists).

    SAS is the exception: udev's ID_SERIAL_SHORT there is the LU's NAA identifier, and the
    serial printed on the label is the unit serial number page (ID_SCSI_SERIAL).
    """
    keys = ("ID_SERIAL_RAW", "ID_SERIAL_SHORT", "ID_SERIAL")
    if transport == Transport.SAS:
        keys = ("ID_SCSI_SERIAL", *keys)
    for key in keys:
        value = props.get(key, "").strip()
        if value:
            return value
    return None


def device_get_wwn(props: Props) -> str | None:
    for key in ("ID_WWN_WITH_EXTENSION", "ID_WWN"):
        value = props.get(key, "").strip()
        if value:
            return value
    return None


def decode_enc(value: str) -> str:
    r"""udev's ``*_ENC`` properties escape unsafe bytes as ``\xNN``; ID_MODEL has them as ``_``.

    The escapes are *bytes*, usually pieces of UTF-8 ("Caf\xc3\xa9" is "Café"), next to
    characters udev left as they were: the whole value is turned back into bytes, then
    decoded as UTF-8. A byte that is not UTF-8 (a Latin-1 firmware string) stays visible as
    ``\xNN`` rather than becoming a guessed character. A NUL or other control byte is kept
    as the drive sent it: the certificate records it, and every surface escapes it."""
    raw = bytearray()
    pos = 0
    for m in re.finditer(r"\\x([0-9a-fA-F]{2})", value):
        raw += value[pos:m.start()].encode("utf-8", "surrogatepass")
        raw.append(int(m.group(1), 16))
        pos = m.end()
    raw += value[pos:].encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace")


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    return value or None


def device_get_model(props: Props) -> str | None:
    if props.get("ID_MODEL_ENC"):
        return _clean(decode_enc(props["ID_MODEL_ENC"]))
    if props.get("ID_MODEL"):
        return _clean(props["ID_MODEL"].replace("_", " "))
    return _clean(props.get("ID_NAME"))  # MMC/SD: udev copies the card's name attribute here


def device_get_vendor(props: Props) -> str | None:
    if props.get("ID_VENDOR_ENC"):
        return _clean(decode_enc(props["ID_VENDOR_ENC"]))
    if props.get("ID_VENDOR"):
        return _clean(props["ID_VENDOR"].replace("_", " "))
    return None


def device_get_firmware(props: Props) -> str | None:
    return _clean(props.get("ID_REVISION"))


def device_get_transport(props: Props) -> Transport:
    """The bus that carries commands to the drive. USB is checked first: a SATA or NVMe
    drive in a USB enclosure must be treated as USB (commands go through a bridge)."""
    name = device_name(props)
    bus = props.get("ID_BUS", "")
    path = props.get("ID_PATH", "")
    devpath = props.get("DEVPATH", "")
    if device_is_loop(props):
        return Transport.LOOP
    if device_is_ram(props):
        return Transport.RAM
    if bus == "usb" or props.get("ID_USB_DRIVER") or "-usb-" in path or "/usb" in devpath:
        return Transport.USB
    if bus == "nvme" or name.startswith("nvme") or "-nvme-" in path or "/nvme/" in devpath:
        return Transport.NVME
    if name.startswith("mmcblk") or "/mmc_host/" in devpath or bus == "mmc":
        return Transport.MMC
    if "/virtio" in devpath or name.startswith("vd"):
        return Transport.VIRTIO
    if "-sas-" in path or "/end_device-" in devpath or "/sas_" in devpath:
        return Transport.SAS
    if bus == "ata" or props.get("ID_ATA") == "1" or "-ata-" in path or re.search(r"/ata\d+/", devpath):
        return Transport.SATA
    if bus == "scsi" or "/host" in devpath:
        return Transport.SCSI
    return Transport.UNKNOWN


def _rpm(props: Props) -> int | None:
    try:
        return int(props["ID_ATA_ROTATION_RATE_RPM"])
    except (KeyError, ValueError):
        return None


def device_get_media(
    props: Props, transport: Transport, *, rotational: bool | None = None, removable: bool = False
) -> Media:
    """What kind of storage holds the bits, which decides how it can be sanitized.

    The kernel's rotational flag is a hint, not a fact: it defaults to 1 for SCSI disks
    whose VPD page B1 is absent (most USB bridges, QEMU's virtio disk), so the ATA
    rotation rate, when udev read it, wins over it.
    """
    if device_is_optical(props):
        return Media.OPTICAL
    if transport in (Transport.LOOP, Transport.RAM, Transport.FILE, Transport.VIRTIO):
        return Media.VIRTUAL
    if transport == Transport.NVME:
        return Media.NVME
    if transport == Transport.MMC or props.get("ID_DRIVE_FLASH_SD") == "1" or props.get("ID_DRIVE_THUMB") == "1":
        return Media.FLASH
    rpm = _rpm(props)
    if rpm is not None:
        return Media.SSD if rpm == 0 else Media.HDD
    if transport == Transport.USB and removable:
        return Media.FLASH  # USB sticks set the removable bit; enclosures of real disks do not
    if rotational is True:
        return Media.HDD
    if rotational is False:
        return Media.SSD
    return Media.UNKNOWN


def device_get_usb_ids(props: Props) -> tuple[str | None, str | None, str | None]:
    """(vendor id, product id, name) of the USB device in front of the drive."""
    vendor = props.get("ID_USB_VENDOR_ID") or (props.get("ID_VENDOR_ID") if props.get("ID_BUS") == "usb" else None)
    product = props.get("ID_USB_MODEL_ID") or (props.get("ID_MODEL_ID") if props.get("ID_BUS") == "usb" else None)
    name_parts = [
        _clean((props.get("ID_USB_VENDOR") or "").replace("_", " ")),
        _clean((props.get("ID_USB_MODEL") or "").replace("_", " ")),
    ]
    name = " ".join(p for p in name_parts if p) or None
    return vendor, product, name


def fs_label(props: Props) -> tuple[str | None, str | None]:
    """(filesystem type, label) as udev's blkid builtin recorded them."""
    label = props.get("ID_FS_LABEL_ENC")
    label = decode_enc(label) if label else props.get("ID_FS_LABEL")
    return props.get("ID_FS_TYPE") or None, (label.strip() if label else None)
