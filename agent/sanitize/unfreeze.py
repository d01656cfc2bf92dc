"""Unfreeze an ATA drive with a suspend-to-RAM cycle.

Most BIOSes send SECURITY FREEZE LOCK at boot so malware cannot set a password; a frozen
drive refuses SECURITY ERASE, SANITIZE and SET MAX. The freeze lasts until the drive is
power-cycled, and suspend-to-RAM cuts the drive's power while the BIOS (which would
freeze it again) does not run on resume. Technicians do exactly this by hand; we do it
with ``rtcwake -m mem -s N``, which arms the RTC to wake the machine after N seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent import commands
from agent.commands import CommandLog
from agent.errors import ToolError
from agent.sanitize import ata

DEFAULT_SECONDS = 5


@dataclass
class UnfreezeOutcome:
    attempted: bool
    unfrozen: bool
    info: ata.AtaInfo | None  # identify data read again after the attempt
    note: str


def unfreeze(device: str, *, enabled: bool = True, seconds: int = DEFAULT_SECONDS, log: CommandLog) -> UnfreezeOutcome:
    """Suspend and resume, then read the security state again."""
    if not enabled:
        return UnfreezeOutcome(False, False, None, "drive is frozen and unfreezing is disabled in the config")
    try:
        res = log.add(commands.run(["rtcwake", "-m", "mem", "-s", str(seconds)], timeout=seconds + 120))
    except ToolError as exc:
        return UnfreezeOutcome(True, False, None, f"suspend-to-RAM not possible: {exc}")
    if not res.ok:
        reason = (res.stderr.strip() or res.stdout.strip() or "no output").splitlines()[-1]
        return UnfreezeOutcome(True, False, None, f"suspend-to-RAM failed: {reason}")
    try:
        info = ata.read_identify(device, log)
    except ToolError as exc:
        return UnfreezeOutcome(True, False, None, f"drive did not answer after resume: {exc}")
    if info.security.frozen:
        return UnfreezeOutcome(True, False, info, "drive still frozen after a suspend-to-RAM cycle")
    return UnfreezeOutcome(True, True, info, f"unfrozen by a {seconds} s suspend-to-RAM cycle")
