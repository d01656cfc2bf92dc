"""The firmware a decade of donated laptops carries: 32-bit UEFI (Bay Trail netbooks and
tablets) and Secure Boot variable stores after Microsoft's 2023 key rotation.

Which boot proves what:
- 32-bit OVMF: the amd64 image boots in EFI mixed mode through BOOTIA32.EFI, Secure Boot
  off, and does the whole job: the disk wiped, its certificate at the collector.
- Secure Boot with only the 2023 CAs enrolled: shim's second signature (Microsoft UEFI CA
  2023) is accepted, the signed chain reaches the agent.
- Secure Boot with the 2011 UEFI CA revoked in dbx, with the 2011 CAs alone and with the
  2011 and 2023 CAs both trusted: the firmware refuses shim, though it also carries a 2023
  signature, because a revoked signer forbids the image. What the technician does then is
  in docs/image.md.
The store boots stop as soon as the answer is known: no wipe is needed to learn it.
"""

from __future__ import annotations

import pytest

from scenario import MiB, assert_valid, boot, by_serial, keep_diagnostics, make_config
from vm import GuestTimeout, Machine, data_partition, make_stick

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

# GRUB prints its menu on the serial console: seeing it means the firmware ran shim.
GRUB_MENU = "audit, sanitize, certify"


def test_32bit_uefi_boots_in_mixed_mode_and_wipes_a_disk(live_image, tmp_path, collector):
    lot = "E2E-UEFI32"
    run = boot(live_image, tmp_path, "uefi32", [("sata", "SATA321", 64 * MiB)],
               make_config(collector, collector.token(lot), lot))
    run.assert_unattended_and_clean("ardoise-image: uefi 32-bit (mixed mode)")
    assert "ardoise-image: firmware uefi, secure boot disabled" in run.result.serial
    certs = by_serial(collector.certificates(lot))
    assert set(certs) == {"SATA321"}
    assert_valid(collector, certs["SATA321"])


def _boot_until_answer(live_image, tmp_path, firmware: str, timeout: float):
    """Boot with no disk and no network until the agent starts (the chain was accepted)
    or the firmware refuses the stick; the serial log either way."""
    iso, _, _ = live_image
    stick = make_stick(iso, tmp_path / "stick.img", make_config(None, None, "E2E-SB-KEYS"))
    running = Machine(tmp_path, firmware=firmware, network=False).start(stick, [])
    try:
        # OVMF's boot manager names a refused image "Access Denied" on the console.
        running.wait_for(r"ardoise-image: agent ready|Access Denied", timeout)
    except GuestTimeout:
        pass
    finally:
        result = running.finish()
        keep_diagnostics(firmware, result, stick, data_partition(stick))
    return result.serial


def test_secure_boot_with_only_the_2023_keys_boots_through_shims_2023_signature(live_image, tmp_path):
    serial = _boot_until_answer(live_image, tmp_path, "secureboot-2023", timeout=900)
    assert "ardoise-image: firmware uefi, secure boot enabled" in serial, serial[-3000:]
    assert "ardoise-image: agent ready" in serial


@pytest.mark.parametrize("firmware", ["secureboot-dbx2011", "secureboot-both-dbx2011"])
def test_secure_boot_with_the_2011_uefi_ca_revoked_in_dbx_refuses_the_stick(live_image, tmp_path, firmware):
    # Refused even with the 2023 CA trusted: EDK2 forbids an image any of whose signers
    # is in dbx. docs/image.md says what the technician does.
    serial = _boot_until_answer(live_image, tmp_path, firmware, timeout=600)
    assert "Access Denied" in serial, serial[-3000:]
    assert GRUB_MENU not in serial, "shim was accepted with its 2011 signer revoked: update docs/image.md"
    assert "ardoise-image" not in serial
