"""eMMC: what the chip offers (EXT_CSD) and the steps its policy takes, as pure decisions.

Why a module of its own: an eMMC is more than ``mmcblkN``. It has two hardware boot
partitions (``mmcblkNboot0/1``, read-only by default through ``force_ro``) that hold data
too, and an RPMB the host cannot address as a block device. Its user area can be
discarded whole and then physically purged of unmapped blocks by eMMC Sanitize
(JEDEC JESD84-B51 §6.6.10, CMD6 SANITIZE_START), which ``mmc sanitize`` (Debian's
mmc-utils) sends - where EXT_CSD SEC_FEATURE_SUPPORT bit 6 (SEC_SANITIZE) says so.

The category stays Clear (see docs/policy.md, "eMMC and SD"): NIST SP 800-88 Rev. 1 gives
embedded flash no Purge short of destruction, and a read-back sees only the logical view,
so the agent can check that no data is readable, not that the cells were purged.

Parsed from recorded ``mmc extcsd read`` outputs (tests/fixtures/mmc/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_KB128 = 128 * 1024
# "Secure Feature support [SEC_FEATURE_SUPPORT: 0x55]" and "RPMB Size [RPMB_SIZE_MULT]: 0x04"
_FIELD = re.compile(r"\[([A-Z][A-Z0-9_]+)(?::\s*|\]:\s*)(0x[0-9a-fA-F]+)\]?")

# SEC_FEATURE_SUPPORT bits (EXT_CSD[231]).
SECURE_ER_EN = 1 << 0  # secure erase and secure trim
SEC_BD_BLK_EN = 1 << 2  # secure purge of bad blocks
SEC_GB_CL_EN = 1 << 4  # garbage collection on secure erase/trim: nothing left in old copies
SEC_SANITIZE = 1 << 6  # the Sanitize operation


@dataclass
class ExtCsd:
    fields: dict[str, int] = field(default_factory=dict)

    def get(self, name: str) -> int | None:
        return self.fields.get(name)

    @property
    def sanitize_supported(self) -> bool:
        return bool((self.get("SEC_FEATURE_SUPPORT") or 0) & SEC_SANITIZE)

    @property
    def secure_trim_supported(self) -> bool:
        v = self.get("SEC_FEATURE_SUPPORT") or 0
        return bool(v & SECURE_ER_EN and v & SEC_GB_CL_EN)

    @property
    def boot_partition_bytes(self) -> int:
        return (self.get("BOOT_SIZE_MULTI") or 0) * _KB128

    @property
    def rpmb_bytes(self) -> int:
        return (self.get("RPMB_SIZE_MULT") or 0) * _KB128

    @property
    def user_area_bytes(self) -> int | None:
        sectors = self.get("SEC_COUNT")
        return sectors * 512 if sectors else None


def parse_extcsd(text: str) -> ExtCsd:
    """``mmc extcsd read DEV`` -> the named registers it printed (first value wins)."""
    out: dict[str, int] = {}
    for name, value in _FIELD.findall(text):
        out.setdefault(name, int(value, 16))
    return ExtCsd(out)


@dataclass
class EmmcPart:
    name: str  # mmcblk0, mmcblk0boot0, mmcblk0rpmb
    role: str  # "user", "boot", "rpmb"
    target: bool
    reason: str


def parts_of(card: str, names: list[str]) -> list[EmmcPart]:
    """The user area, the boot partitions and the RPMB of ``card`` among block names."""
    out = []
    for name in names:
        if name == card:
            out.append(EmmcPart(name, "user", True, "the user area"))
        elif re.fullmatch(rf"{re.escape(card)}boot[01]", name):
            out.append(EmmcPart(name, "boot", True, "hardware boot partition: made writable through force_ro, "
                                "overwritten and verified, then read-only again"))
        elif name == f"{card}rpmb":
            out.append(EmmcPart(name, "rpmb", False, "RPMB: authenticated writes only (a key the host does not "
                                "have); not addressable, reported as not sanitized"))
    return out


def lsblk_names(text: str) -> list[str]:
    """Whole-disk names of a plain ``lsblk`` listing (the tree drawing stripped)."""
    names = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 6 and parts[5] == "disk":
            names.append(parts[0].lstrip("├─└│ "))
    return names


@dataclass
class EmmcStep:
    method: str
    reason: str


def user_area_steps(ext: ExtCsd) -> list[EmmcStep]:
    """The policy for an eMMC user area: discard all, Sanitize where offered, read back."""
    steps = [EmmcStep("blkdiscard", "discard of the whole user area: every block unmapped")]
    if ext.sanitize_supported:
        steps.append(EmmcStep("mmc-sanitize", "EXT_CSD SEC_FEATURE_SUPPORT bit 6: eMMC Sanitize purges the "
                              "unmapped blocks, including old copies the wear levelling kept"))
    else:
        steps.append(EmmcStep("overwrite", "no eMMC Sanitize (SEC_FEATURE_SUPPORT bit 6 clear): overwrite, so old "
                              "copies in unmapped blocks are not reached"))
    steps.append(EmmcStep("verify", "read-back of the whole user area"))
    return steps
