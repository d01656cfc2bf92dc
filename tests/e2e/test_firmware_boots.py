"""The firmware a decade of donated laptops carries: 32-bit UEFI (Bay Trail netbooks and
tablets) and Secure Boot variable stores after Microsoft's 2023 key rotation.

Which boot proves what:
- 32-bit OVMF: the amd64 image boots in EFI mixed mode through BOOTIA32.EFI, Secure Boot
  off, and does the whole job (test_storage_in_vm.py, with a RAID volume and an SD card).
- Secure Boot with only the 2023 CAs enrolled: shim's second signature (Microsoft UEFI CA
  2023) is accepted, the signed chain reaches the agent, which finds no disk: NO DISK FOUND.
- Secure Boot with the 2011 UEFI CA revoked in dbx, with the 2011 CAs alone and with the
  2011 and 2023 CAs both trusted: the firmware refuses shim, though it also carries a 2023
  signature, because a revoked signer forbids the image. What the technician does then is
  in docs/image.md.
The refused stores stop as soon as the firmware has answered.
"""

from __future__ import annotations

import pytest

from scenario import boot, keep_diagnostics, make_config, spooled_audit
from vm import GuestTimeout, Machine, data_partition, make_stick

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

# GRUB prints its menu on the serial console: seeing it means the firmware ran shim.
GRUB_MENU = "audit, sanitize, certify"


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


def test_secure_boot_with_only_the_2023_keys_boots_and_a_machine_with_no_disk_says_no_disk_found(live_image,
                                                                                                  tmp_path):
    # One boot for two questions: shim's 2023 signature is accepted, and a machine with no
    # disk at all (issue 15) ends NO DISK FOUND on the console and in the signed audit
    # report, never PASSED.
    run = boot(live_image, tmp_path, "secureboot-2023", [], make_config(None, None, "E2E-NODISK"), network=False)
    run.assert_unattended_and_clean("ardoise-image: firmware uefi, secure boot enabled")
    serial = run.result.serial
    assert "RESULT machine: NO DISK FOUND" in serial, serial[-3000:]
    assert "PASSED" not in serial.split("agent ready", 1)[-1]
    audit = spooled_audit(run, tmp_path)
    assert audit["storage"]["state"] == "no_disk_found", audit["storage"]


@pytest.mark.parametrize("firmware", ["secureboot-dbx2011", "secureboot-both-dbx2011"])
def test_secure_boot_with_the_2011_uefi_ca_revoked_in_dbx_refuses_the_stick(live_image, tmp_path, firmware):
    # Refused even with the 2023 CA trusted: EDK2 forbids an image any of whose signers
    # is in dbx. docs/image.md says what the technician does.
    serial = _boot_until_answer(live_image, tmp_path, firmware, timeout=600)
    assert "Access Denied" in serial, serial[-3000:]
    assert GRUB_MENU not in serial, "shim was accepted with its 2011 signer revoked: update docs/image.md"
    assert "ardoise-image" not in serial
