"""The live image, proven by booting it: the ISO as a USB stick in a TCG virtual machine
with virtual NVMe, SATA and USB disks, under SeaBIOS, OVMF and OVMF with Secure Boot."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from scenario import MiB, assert_valid, boot, by_serial, make_config
from vm import data_partition, digest_outside, mbr_partitions, mcopy_in, mcopy_out, mdir

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

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
    shutil.copyfile(iso, stick)
    before = digest_outside(stick, data)
    probe = tmp_path / "probe.txt"
    probe.write_text("written on the host\n")
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
    # Kernel 6.12 LTS (bookworm-security's linux-image-6.12-amd64), not bookworm's 6.1.
    assert re.search(r"^linux-image-6\.12\.\S+-amd64\t\S+\t\d+$", text, re.M)
    assert re.search(r"^python3-cryptography\t\S+\t\d+$", text, re.M)
    assert re.search(r"^firmware-iwlwifi\t\S+\t\d+$", text, re.M)
    assert f"ardoise-{__version__}-amd64.iso" == iso.name
    # Which Secure Boot keys accept the stick: both of shim's signers (docs/image.md).
    assert re.search(r"^kernel: 6\.12\.\S+-amd64$", text, re.M)
    assert re.search(r"^kernel_package: linux-image-6\.12\.\S+-amd64 6\.12\.\S+$", text, re.M)
    assert re.search(r"^kernel_signer: Debian Secure Boot Signer \S+ - linux$", text, re.M)
    signers = re.findall(r"^shim_signer: (.+)$", text, re.M)
    assert "Microsoft Corporation UEFI CA 2011" in signers and "Microsoft UEFI CA 2023" in signers, signers


def test_iso_fits_the_size_budget(live_image):
    iso, _, _ = live_image
    assert iso.stat().st_size <= 250 * 10**6, f"{iso.stat().st_size / 1e6:.0f} MB"


# --------------------------------------------------------------------------- boots
#
# Which boot proves what (all under TCG, the ISO as a USB stick on qemu-xhci):
# - SeaBIOS: the full job. NVMe + SATA + USB disks, collector online: every disk wiped
#   (no marker left, read on the host), NVMe purged by Format NVM, SATA cleared by
#   overwrite, every certificate at the collector and valid, stick untouched outside its
#   data partition, power-off on its own.
# - OVMF (UEFI): the same job on one small SATA disk, certificate delivered.
# - OVMF with Secure Boot enforced, no network: the signed chain boots, the agent wipes a
#   small NVMe disk, the certificate stays in the stick's spool, and `ardoise upload` run
#   on the host against the spool copied off the stick delivers it.


def test_bios_boot_wipes_every_disk_and_delivers_verified_certificates(live_image, tmp_path, collector):
    lot = "E2E-BIOS"
    run = boot(live_image, tmp_path, "bios",
                [("nvme", "NVME123", 64 * MiB), ("sata", "SATA456", 64 * MiB), ("usb", "USB789", 64 * MiB)],
                make_config(collector, collector.token(lot), lot))
    run.assert_unattended_and_clean("ardoise-image: firmware bios")
    certs = by_serial(collector.certificates(lot))
    assert set(certs) == {"NVME123", "SATA456", "USB789"}, sorted(certs)
    for cert in certs.values():
        assert_valid(collector, cert)
    nvme = certs["NVME123"]["payload"]["sanitization"]
    assert nvme["category"] == "Purge", nvme
    assert "format" in (nvme["method"] + " " + nvme["technique"]).lower(), nvme
    sata = certs["SATA456"]["payload"]["sanitization"]
    assert sata["category"] == "Clear", sata
    assert "overwrite" in (sata["method"] + " " + sata["technique"]).lower(), sata


def test_uefi_boot_wipes_a_disk_and_delivers_its_certificate(live_image, tmp_path, collector):
    lot = "E2E-UEFI"
    run = boot(live_image, tmp_path, "uefi", [("sata", "SATA601", 64 * MiB)],
                make_config(collector, collector.token(lot), lot))
    run.assert_unattended_and_clean("ardoise-image: firmware uefi, secure boot disabled")
    certs = by_serial(collector.certificates(lot))
    assert set(certs) == {"SATA601"}
    assert_valid(collector, certs["SATA601"])


def test_secure_boot_offline_run_spools_then_upload_delivers(live_image, tmp_path, collector):
    lot = "E2E-SB"
    token = collector.token(lot)
    run = boot(live_image, tmp_path, "secureboot", [("nvme", "NVME701", 64 * MiB)],
                make_config(collector, token, lot), network=False)
    run.assert_unattended_and_clean("ardoise-image: firmware uefi, secure boot enabled")
    assert collector.certificates(lot) == []
    # The stick comes back to the office: copy its state off the data partition and upload.
    state = tmp_path / "state"
    assert mcopy_out(run.stick, run.part, "/ardoise", state), mdir(run.stick, run.part)
    spooled = list((state / "spool" / "certificates").glob("*.json"))
    assert len(spooled) == 1, sorted(p.name for p in (state / "spool").rglob("*"))
    cfg = tmp_path / "office.yaml"
    cfg.write_text(f"lot: {lot}\nstate_dir: {state}\ncollector:\n  url: {collector.url}\n  token: {token}\n")
    r = subprocess.run([sys.executable, "-m", "agent", "upload", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    certs = by_serial(collector.certificates(lot))
    assert set(certs) == {"NVME701"}
    assert_valid(collector, certs["NVME701"])
