"""The live image, proven by booting it: the ISO as a USB stick in a TCG virtual machine
with virtual NVMe, SATA and USB disks, under SeaBIOS, OVMF and OVMF with Secure Boot."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from vm import Machine, VirtualDisk, data_partition, digest_outside, make_stick, mdir, mbr_partitions

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

MiB = 1 << 20
# Budget per boot under TCG; the agent must be ready long before (target 30 s).
BOOT_TIMEOUT = 420

CONFIG = """\
# written by tests/e2e before the boot
on_finish: poweroff
"""


# --------------------------------------------------------------------------- the image itself


def test_image_is_hybrid_with_esp_and_writable_ardoise_data_partition(live_image, tmp_path):
    iso, _, _ = live_image
    parts = mbr_partitions(iso)
    assert [p.type for p in parts][-2:] == [0xEF, 0x0C], parts
    data = data_partition(iso)
    assert data.size >= 60 * MiB
    assert data.end <= iso.stat().st_size
    label = subprocess.run(["mlabel", "-s", "-i", f"{iso}@@{data.start}", "::"],
                           capture_output=True, text=True, env={"MTOOLS_SKIP_CHECK": "1"}).stdout
    assert "ARDOISE" in label
    listing = mdir(iso, data)
    assert "ardoise.yaml" in listing
    # Writable: a file copied in lands inside the partition and nothing else changes.
    stick = tmp_path / "stick.img"
    before = None
    import shutil
    shutil.copyfile(iso, stick)
    before = digest_outside(stick, data)
    probe = tmp_path / "probe.txt"
    probe.write_text("written on the host\n")
    from vm import mcopy_in
    mcopy_in(stick, data, probe, "/probe.txt")
    assert "probe.txt" in mdir(stick, data)
    assert digest_outside(stick, data) == before


def test_esp_boots_through_debians_signed_shim_and_grub(live_image, tmp_path):
    iso, manifest, _ = live_image
    esp = [p for p in mbr_partitions(iso) if p.type == 0xEF][0]
    for name in ("BOOTX64.EFI", "grubx64.efi", "mmx64.efi"):
        out = tmp_path / name
        subprocess.run(["mcopy", "-i", f"{iso}@@{esp.start}", f"::/EFI/BOOT/{name}", str(out)],
                       check=True, env={"MTOOLS_SKIP_CHECK": "1"})
    shim = (tmp_path / "BOOTX64.EFI").read_bytes()
    grub = (tmp_path / "grubx64.efi").read_bytes()
    # Authenticode signatures embed the signer's certificate chain.
    assert b"Microsoft Corporation UEFI CA" in shim
    assert b"Debian Secure Boot" in grub
    text = manifest.read_text()
    assert re.search(r"^bootloader: shim-signed \S+", text, re.M)
    assert re.search(r"^bootloader: grub-efi-amd64-signed \S+", text, re.M)


def test_manifest_records_agent_and_package_versions(live_image):
    iso, manifest, _ = live_image
    from agent import __version__

    text = manifest.read_text()
    assert f"agent_version: {__version__}" in text
    assert re.search(r"^linux-image-6\.1\.\S+-amd64\t\S+\t\d+$", text, re.M)
    assert re.search(r"^python3-cryptography\t\S+\t\d+$", text, re.M)
    assert re.search(r"^firmware-iwlwifi\t\S+\t\d+$", text, re.M)
    assert f"ardoise-{__version__}-amd64.iso" == iso.name


def test_iso_fits_the_size_budget(live_image):
    iso, _, _ = live_image
    assert iso.stat().st_size <= 250 * 10**6, f"{iso.stat().st_size / 1e6:.0f} MB"


# --------------------------------------------------------------------------- boots


def _disks(tmp_path, specs):
    disks = []
    for kind, serial, size in specs:
        d = VirtualDisk(tmp_path / f"{serial}.img", kind, serial, size)
        d.create(tmp_path)
        disks.append(d)
    return disks


def _boot(live_image, tmp_path, firmware, specs, *, network=True):
    iso, _, _ = live_image
    stick = make_stick(iso, tmp_path / "stick.img", CONFIG)
    part = data_partition(stick)
    before = digest_outside(stick, part)
    disks = _disks(tmp_path, specs)
    machine = Machine(tmp_path, firmware=firmware, network=network)
    result = machine.boot(stick, disks, timeout=BOOT_TIMEOUT)
    (Path("/var/tmp") / f"ardoise-e2e-serial-{firmware}.log").write_text(result.serial)
    return result, stick, part, before, disks


def _agent_disks_json(serial: str) -> list[dict]:
    """The stand-in session prints `ardoise disks --json` on the serial console."""
    start = serial.find("[", serial.find("ardoise-image: agent ready"))
    m = re.search(r"ardoise-image: agent finished", serial)
    assert start > 0 and m, "no disk listing on the serial console"
    return serial[start : m.start()]


def _assert_common(result, stick, part, before, disks):
    tail = result.serial[-3000:]
    assert "ardoise-image: agent ready" in result.serial, f"agent never started:\n{tail}"
    assert result.powered_off, f"VM did not power off by itself (rc={result.returncode}):\n{tail}"
    # The live system wrote nothing to the stick outside its data partition.
    assert digest_outside(stick, part) == before
    listing = _agent_disks_json(result.serial)
    for d in disks:
        assert d.serial in listing, f"agent did not see {d.kind} disk {d.serial}"


def test_bios_boot_starts_the_agent_on_its_own_and_powers_off(live_image, tmp_path):
    result, stick, part, before, disks = _boot(
        live_image, tmp_path, "bios",
        [("nvme", "NVME123", 128 * MiB), ("sata", "SATA456", 128 * MiB), ("usb", "USB789", 64 * MiB)])
    _assert_common(result, stick, part, before, disks)
    assert "ardoise-image: firmware bios" in result.serial


def test_uefi_boot_starts_the_agent_on_its_own_and_powers_off(live_image, tmp_path):
    result, stick, part, before, disks = _boot(live_image, tmp_path, "uefi", [("sata", "SATA601", 64 * MiB)])
    _assert_common(result, stick, part, before, disks)
    assert "ardoise-image: firmware uefi, secure boot disabled" in result.serial


def test_secure_boot_enforced_boots_the_signed_chain(live_image, tmp_path):
    result, stick, part, before, disks = _boot(live_image, tmp_path, "secureboot", [("nvme", "NVME701", 64 * MiB)],
                                               network=False)
    _assert_common(result, stick, part, before, disks)
    assert "ardoise-image: firmware uefi, secure boot enabled" in result.serial
