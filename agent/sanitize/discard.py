"""Secure discard for eMMC and SD cards (``blkdiscard --secure``).

Flash cards have no purge command Linux can reach through a USB reader, but eMMC and SD
attached to an MMC host may honour a secure discard (MMC SECURE ERASE/TRIM), which asks
the controller to erase the physical blocks, spare blocks included. It is run after the
overwrite, as a best effort: the certificate still says Clear, because a secure discard
cannot be verified by reading back (NIST SP 800-88 Rev. 1, Table A-3, flash media).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent import commands
from agent.commands import CommandLog, CommandResult
from agent.errors import ToolError
from agent.records import Disk, Transport

SYS_BLOCK = Path("/sys/block")


@dataclass
class DiscardCaps:
    discard: bool  # the queue accepts discards at all
    secure_candidate: bool  # an MMC-attached device, where secure discard may be honoured
    reason: str


def capability(disk: Disk, sys_block: Path = SYS_BLOCK) -> DiscardCaps:
    queue = sys_block / disk.name / "queue"
    try:
        max_bytes = int((queue / "discard_max_bytes").read_text().strip() or 0)
    except (OSError, ValueError):
        max_bytes = 0
    if max_bytes <= 0:
        return DiscardCaps(False, False, "the device accepts no discard (discard_max_bytes is 0)")
    # The kernel exposes no sysfs flag for secure erase support; it answers EOPNOTSUPP to
    # BLKSECDISCARD when the host lacks it. Only MMC hosts ever set it, so only try there.
    if disk.transport == Transport.MMC:
        return DiscardCaps(True, True, "MMC device that accepts discards: secure discard will be tried")
    return DiscardCaps(True, False, "secure discard is only offered by MMC hosts")


def secure_discard(device: str, log: CommandLog) -> CommandResult | None:
    """Run ``blkdiscard --secure``; None if the tool could not run at all."""
    try:
        return log.add(commands.run(["blkdiscard", "--secure", device], timeout=3600))
    except ToolError:
        return None
