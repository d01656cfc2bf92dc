"""SCSI/SAS firmware purge: SANITIZE (opcode 0x48) via sg3_utils.

Support is read from REPORT SUPPORTED OPERATION CODES (``sg_opcodes``), whose rows give
the opcode and service action: SBC-4 SANITIZE service actions are 01h overwrite,
02h block erase, 03h cryptographic erase, 1Fh exit failure mode (never sent).
``sg_sanitize --early`` starts the operation with IMMED set and returns; we poll REQUEST
SENSE (``sg_requests --progress``), which prints ``Progress indication: N% done`` while
the sanitize runs and nothing once it is over, then read the sense once more to catch
"SANITIZE COMMAND FAILED" (ASC 31h/ASCQ 03h).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable

from agent import commands
from agent.commands import CommandLog
from agent.errors import SanitizeError, ToolOutputError, ToolTimeout

sleep: Callable[[float], None] = time.sleep
clock: Callable[[], float] = time.monotonic

SANITIZE_OPCODE = 0x48
_SERVICE_ACTIONS = {0x1: "overwrite", 0x2: "block", 0x3: "crypto"}
SG_FLAGS = {"crypto": "--crypto", "block": "--block", "overwrite": "--overwrite"}


@dataclass
class ScsiSanitizeCaps:
    reported: bool  # REPORT SUPPORTED OPERATION CODES answered at all
    crypto: bool = False
    block: bool = False
    overwrite: bool = False

    def supports(self, action: str) -> bool:
        return bool(getattr(self, action, False))


def parse_opcodes(text: str) -> ScsiSanitizeCaps:
    """Rows look like `` 48         3       10    Sanitize, cryptographic erase``."""
    caps = ScsiSanitizeCaps(reported="Opcode" in text)
    for line in text.splitlines():
        m = re.match(r"^\s*([0-9a-fA-F]{2})\s+([0-9a-fA-F]{1,4})\s+\d+\s+\S", line)
        if not m or int(m.group(1), 16) != SANITIZE_OPCODE:
            continue
        action = _SERVICE_ACTIONS.get(int(m.group(2), 16))
        if action:
            setattr(caps, action, True)
    return caps


def read_caps(device: str, log: CommandLog | None = None) -> ScsiSanitizeCaps:
    result = commands.run(["sg_opcodes", device], timeout=60)
    if log is not None:
        log.add(result)
    if not result.ok:
        # Many devices do not implement REPORT SUPPORTED OPERATION CODES: unknown, so no
        # SANITIZE attempt (sending an unsupported opcode to a bridge can hang it).
        return ScsiSanitizeCaps(reported=False)
    if "Opcode" not in result.stdout:
        raise ToolOutputError(f"sg_opcodes {device}: no opcode table in the output")
    return parse_opcodes(result.stdout)


_PROGRESS = re.compile(r"Progress indication:\s*([\d.]+)%")


def sanitize(
    device: str,
    action: str,
    *,
    timeout: float,
    log: CommandLog,
    poll_interval: float = 30.0,
    progress: Callable[[float], None] | None = None,
) -> None:
    flag = SG_FLAGS.get(action)
    if flag is None:
        raise SanitizeError(f"unknown SCSI sanitize action {action!r}")
    argv = ["sg_sanitize", "--quick", "--early", flag]
    if action == "overwrite":
        argv.append("--zero")
    res = log.add(commands.run([*argv, device], timeout=120))
    if not res.ok:
        reason = (res.stderr.strip() or res.stdout.strip() or "no output").splitlines()[-1]
        raise SanitizeError(f"SCSI SANITIZE {action} refused by {device}: {reason}")
    deadline = clock() + timeout
    while True:
        poll = log.add(commands.run(["sg_requests", "--progress", device], timeout=60))
        m = _PROGRESS.search(poll.stdout)
        if m is None:
            break
        if progress is not None:
            progress(float(m.group(1)))
        if clock() >= deadline:
            raise ToolTimeout(f"SCSI SANITIZE {action} on {device} still at {m.group(1)}% after {timeout:g} s")
        sleep(poll_interval)
    final = log.add(commands.run(["sg_requests", device], timeout=60))
    sense = (final.stdout + final.stderr).lower()
    if "sanitize command failed" in sense:
        raise SanitizeError(f"SCSI SANITIZE {action} failed on {device} (sense: sanitize command failed)")
    if progress is not None:
        progress(100.0)


def sanitize_timeout(size_bytes: int, action: str) -> float:
    """SCSI drives give no estimate we can read portably: bound by size. Overwrite runs at
    media speed (assume 50 MB/s worst case); crypto and block erase are far quicker."""
    rate = 50e6 if action == "overwrite" else 500e6
    return 1800.0 + size_bytes / rate
