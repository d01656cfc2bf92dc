"""The live image, proven by booting it: the ISO as a USB stick in a TCG virtual machine
with virtual NVMe, SATA and USB disks, under SeaBIOS, OVMF and OVMF with Secure Boot."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from collector import Collector
from vm import (BootResult, Machine, VirtualDisk, data_partition, digest_outside, make_stick, mbr_partitions,
                mcopy_in, mcopy_out, mdir)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

MiB = 1 << 20
# Budget per boot under TCG, generous because CI machines are shared; the agent must be
# ready long before (target 30 s) and a boot with its wipe takes a few minutes.
BOOT_TIMEOUT = 1500
DIAGNOSTICS = Path("/var/tmp/ardoise-e2e")



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
    assert re.search(r"^linux-image-6\.1\.\S+-amd64\t\S+\t\d+$", text, re.M)
    assert re.search(r"^python3-cryptography\t\S+\t\d+$", text, re.M)
    assert re.search(r"^firmware-iwlwifi\t\S+\t\d+$", text, re.M)
    assert f"ardoise-{__version__}-amd64.iso" == iso.name


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


def make_config(collector: Collector | None, token: str | None, lot: str) -> str:
    text = (
        "# written by tests/e2e before the boot\n"
        f"lot: {lot}\n"
        "operator:\n  name: E2E Technician\n  organization: Ardoise CI\n  location: QEMU\n"
        "on_finish: poweroff\n"
        "finish_display_seconds: 1\n"
    )
    if collector is not None:
        text += f"collector:\n  url: {collector.guest_url}\n  token: {token}\n"
    return text


@pytest.fixture
def collector(tmp_path):
    c = Collector(tmp_path).start()
    yield c
    c.stop()


def _disks(tmp_path, specs):
    disks = []
    for kind, serial, size in specs:
        d = VirtualDisk(tmp_path / f"{serial}.img", kind, serial, size)
        d.create(tmp_path)
        disks.append(d)
    return disks


@dataclass
class Run:
    result: BootResult
    stick: Path
    part: object
    before: str
    disks: list

    def assert_unattended_and_clean(self, firmware_line: str) -> None:
        serial, tail = self.result.serial, self.result.serial[-3000:]
        assert "ardoise-image: agent ready" in serial, f"agent never started:\n{tail}"
        assert firmware_line in serial, f"expected {firmware_line!r}:\n{tail}"
        if not self.result.powered_off:
            pytest.fail(f"no power-off by itself within {self.result.seconds:.0f} s "
                        f"(qemu rc={self.result.returncode}); serial tail:\n{tail}")
        # The live system wrote nothing to the stick outside its data partition.
        assert digest_outside(self.stick, self.part) == self.before
        for d in self.disks:
            left = d.marker_count()
            assert left == 0, f"{d.kind} disk {d.serial}: {left} planted marker(s) survived"


def _boot(live_image, tmp_path, firmware, specs, config_text, *, network=True) -> Run:
    iso, _, _ = live_image
    stick = make_stick(iso, tmp_path / "stick.img", config_text)
    part = data_partition(stick)
    before = digest_outside(stick, part)
    disks = _disks(tmp_path, specs)
    machine = Machine(tmp_path, firmware=firmware, network=network)
    result = machine.boot(stick, disks, timeout=BOOT_TIMEOUT)
    keep_diagnostics(firmware, result, stick, part)
    print(f"{firmware}: agent ready after {result.ready_after} s, run {result.seconds:.0f} s")
    return Run(result, stick, part, before, disks)


def keep_diagnostics(firmware: str, result: BootResult, stick: Path, part) -> None:
    """Serial log and the stick's data partition (agent logs, spool), kept outside pytest's
    rotating temp dirs for whoever reads a failure."""
    out = DIAGNOSTICS / firmware
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / "serial.log").write_text(result.serial)
    (out / "timing.txt").write_text(f"ready_after={result.ready_after} seconds={result.seconds:.1f} "
                                    f"returncode={result.returncode}\n")
    mcopy_out(stick, part, "/", out / "data")


def _by_serial(certs: list[dict]) -> dict[str, dict]:
    return {c["payload"]["media"]["serial"]: c for c in certs}


def _assert_valid(collector: Collector, cert: dict) -> None:
    assert cert["verification"]["valid"], cert["verification"]
    verdict = collector.verify(cert["envelope"])
    assert verdict["valid"], verdict["reasons"]
    assert cert["payload"]["sanitization"]["outcome"] == "success", cert["payload"]["sanitization"]


def test_bios_boot_wipes_every_disk_and_delivers_verified_certificates(live_image, tmp_path, collector):
    lot = "E2E-BIOS"
    run = _boot(live_image, tmp_path, "bios",
                [("nvme", "NVME123", 64 * MiB), ("sata", "SATA456", 64 * MiB), ("usb", "USB789", 64 * MiB)],
                make_config(collector, collector.token(lot), lot))
    run.assert_unattended_and_clean("ardoise-image: firmware bios")
    certs = _by_serial(collector.certificates(lot))
    assert set(certs) == {"NVME123", "SATA456", "USB789"}, sorted(certs)
    for cert in certs.values():
        _assert_valid(collector, cert)
    nvme = certs["NVME123"]["payload"]["sanitization"]
    assert nvme["category"] == "Purge", nvme
    assert "format" in (nvme["method"] + " " + nvme["technique"]).lower(), nvme
    sata = certs["SATA456"]["payload"]["sanitization"]
    assert sata["category"] == "Clear", sata
    assert "overwrite" in (sata["method"] + " " + sata["technique"]).lower(), sata


def test_uefi_boot_wipes_a_disk_and_delivers_its_certificate(live_image, tmp_path, collector):
    lot = "E2E-UEFI"
    run = _boot(live_image, tmp_path, "uefi", [("sata", "SATA601", 64 * MiB)],
                make_config(collector, collector.token(lot), lot))
    run.assert_unattended_and_clean("ardoise-image: firmware uefi, secure boot disabled")
    certs = _by_serial(collector.certificates(lot))
    assert set(certs) == {"SATA601"}
    _assert_valid(collector, certs["SATA601"])


def test_secure_boot_offline_run_spools_then_upload_delivers(live_image, tmp_path, collector):
    lot = "E2E-SB"
    token = collector.token(lot)
    run = _boot(live_image, tmp_path, "secureboot", [("nvme", "NVME701", 64 * MiB)],
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
    certs = _by_serial(collector.certificates(lot))
    assert set(certs) == {"NVME701"}
    _assert_valid(collector, certs["NVME701"])
