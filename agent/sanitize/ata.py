"""ATA firmware purge: ``hdparm -I`` parsed into a typed record, ATA SANITIZE, and
SECURITY ERASE UNIT with a per-run password.

Why the password dance: SECURITY ERASE UNIT is only accepted when security is enabled,
which needs a user password. If power is lost mid-erase the drive stays locked with that
password, so the password is written to the journal *before* it is set, and the next run
unlocks and disables security with it (``recover_locked``). A constant password would
let anyone who knows Ardoise unlock a drive someone else interrupted; a random one per
run cannot be guessed and is still recoverable from the station's own journal.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from agent.atomic import atomic_write
from agent import commands
from agent.commands import CommandLog, CommandResult
from agent.errors import SanitizeError, ToolOutputError, ToolTimeout

sleep: Callable[[float], None] = time.sleep
clock: Callable[[], float] = time.monotonic

# hdparm refuses the destructive sanitize sub-commands without this flag.
_I_KNOW = "--yes-i-know-what-i-am-doing"

SANITIZE_FLAGS = {
    "crypto": "--sanitize-crypto-scramble",
    "block": "--sanitize-block-erase",
}


@dataclass
class AtaSecurity:
    supported: bool = False
    enabled: bool = False
    locked: bool = False
    frozen: bool = False
    count_expired: bool = False
    enhanced_supported: bool = False
    erase_minutes: int | None = None
    enhanced_erase_minutes: int | None = None
    level: str | None = None  # "high" | "maximum" when enabled


@dataclass
class AtaSanitizeCaps:
    supported: bool = False
    crypto: bool = False
    block: bool = False
    overwrite: bool = False


@dataclass
class AtaInfo:
    """The parts of IDENTIFY DEVICE (``hdparm -I``) the sanitize path decides on."""

    device: str
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    rotational: bool | None = None  # None when the drive does not report its rotation rate
    lba48_sectors: int | None = None
    hpa_feature: bool = False
    dco_feature: bool = False
    security: AtaSecurity = field(default_factory=AtaSecurity)
    sanitize: AtaSanitizeCaps = field(default_factory=AtaSanitizeCaps)

    @property
    def is_flash(self) -> bool:
        return self.rotational is False


def _minutes(text: str | None) -> int | None:
    if text is None:
        return None
    m = re.match(r"(\d+)min", text)
    return int(m.group(1)) if m else None


def parse_identify(text: str, device: str = "") -> AtaInfo:
    """Parse ``hdparm -I`` output. Raises ToolOutputError when it is not ATA identify data."""
    if "ATA device" not in text and "Commands/features" not in text:
        raise ToolOutputError(f"hdparm -I {device}: output is not ATA IDENTIFY data")
    info = AtaInfo(device=device)

    def field_of(label: str) -> str | None:
        m = re.search(rf"^\s*{re.escape(label)}:\s*(.*?)\s*$", text, re.M)
        return m.group(1) if m else None

    info.model = field_of("Model Number")
    info.serial = field_of("Serial Number")
    info.firmware = field_of("Firmware Revision")
    rate = field_of("Nominal Media Rotation Rate")
    if rate is not None:
        info.rotational = "Solid State" not in rate
    m = re.search(r"LBA48\s+user addressable sectors:\s*(\d+)", text)
    if m:
        info.lba48_sectors = int(m.group(1))

    features = _section(text, "Commands/features")
    info.hpa_feature = any("Host Protected Area feature set" in ln for ln in features)
    info.dco_feature = any("Device Configuration Overlay feature set" in ln for ln in features)
    info.sanitize = AtaSanitizeCaps(
        supported=any("SANITIZE feature set" in ln for ln in features),
        crypto=any("CRYPTO_SCRAMBLE_EXT command" in ln for ln in features),
        block=any("BLOCK_ERASE_EXT command" in ln for ln in features),
        overwrite=any("OVERWRITE_EXT command" in ln for ln in features),
    )

    sec = AtaSecurity()
    for raw in _section(text, "Security"):
        line = raw.strip()
        negated = line.startswith("not")
        word = line[3:].strip() if negated else line
        if word == "supported":
            sec.supported = not negated
        elif word == "enabled":
            sec.enabled = not negated
        elif word == "locked":
            sec.locked = not negated
        elif word == "frozen":
            sec.frozen = not negated
        elif word.startswith("expired"):
            sec.count_expired = not negated
        elif word.startswith("supported: enhanced erase"):
            sec.enhanced_supported = not negated
        elif word.startswith("Security level"):
            sec.level = word.split()[-1]
        elif "SECURITY ERASE UNIT" in word:
            m1 = re.search(r"(\S+) for SECURITY ERASE UNIT", word)
            m2 = re.search(r"(\S+) for ENHANCED SECURITY ERASE UNIT", word)
            sec.erase_minutes = _minutes(m1.group(1) if m1 else None)
            sec.enhanced_erase_minutes = _minutes(m2.group(1) if m2 else None)
    info.security = sec
    return info


def _section(text: str, title: str) -> list[str]:
    """The indented lines under a top-level ``Title:`` heading of hdparm -I."""
    lines = text.splitlines()
    out: list[str] = []
    inside = False
    for line in lines:
        if re.match(rf"^{re.escape(title)}:", line):
            inside = True
            continue
        if inside:
            if line and not line[0].isspace():
                break
            out.append(line)
    return out


def read_identify(device: str, log: CommandLog | None = None) -> AtaInfo:
    result = commands.run(["hdparm", "-I", device], check=True)
    if log is not None:
        log.add(result)
    return parse_identify(result.stdout, device)


# hdparm --Istdout: the 256 IDENTIFY words, eight per line as 4-digit hex, in host order
# (hdparm >= 9.56). Lines before them (the device name, old hdparm's settings) are skipped,
# as hdparm's own --Istdin does.
_WORD_LINE = re.compile(r"^\s*((?:[0-9a-fA-F]{4}\s+){7}[0-9a-fA-F]{4})\s*$")


def parse_identify_words(text: str, device: str = "") -> list[int]:
    """``hdparm --Istdout DEV`` -> the 256 IDENTIFY DEVICE words.

    Why the raw words: ``hdparm -I`` (9.65, Debian 12) never prints word 48, the Trusted
    Computing feature set, so a self-encrypting SATA drive can only be recognised from them.
    Raises ToolOutputError when the output is not 256 words, or when the drive's integrity
    word (255: signature A5h, then a checksum making the 512 bytes sum to 0) says it is corrupt."""
    words: list[int] = []
    for line in text.splitlines():
        m = _WORD_LINE.match(line)
        if m:
            words.extend(int(w, 16) for w in m.group(1).split())
    if len(words) != 256:
        raise ToolOutputError(f"hdparm --Istdout {device}: {len(words)} IDENTIFY words, not 256")
    if words[255] & 0xFF == 0xA5 and sum((w & 0xFF) + (w >> 8) for w in words) % 256:
        raise ToolOutputError(f"hdparm --Istdout {device}: IDENTIFY checksum does not match (corrupt transfer)")
    return words


def read_identify_words(device: str, log: CommandLog | None = None) -> list[int]:
    result = commands.run(["hdparm", "--Istdout", device], check=True)
    if log is not None:
        log.add(result)
    return parse_identify_words(result.stdout, device)


# --------------------------------------------------------------------------- SANITIZE


@dataclass
class AtaSanitizeStatus:
    state: str  # "SD0".."SD4"
    progress_percent: int | None = None
    completed_without_error: bool = False

    @property
    def in_progress(self) -> bool:
        return self.state == "SD2"

    @property
    def frozen(self) -> bool:
        return self.state == "SD1"

    @property
    def failed(self) -> bool:
        return self.state == "SD3"


def parse_sanitize_status(text: str) -> AtaSanitizeStatus:
    m = re.search(r"State:\s*(SD\d)", text)
    if not m:
        raise ToolOutputError("hdparm --sanitize-status: no 'State: SDn' line")
    status = AtaSanitizeStatus(state=m.group(1))
    p = re.search(r"Progress:\s*0x[0-9a-fA-F]+\s*\((\d+)%\)", text)
    if p:
        status.progress_percent = int(p.group(1))
    status.completed_without_error = "Completed Without Error" in text or status.state == "SD4"
    return status


def sanitize(
    device: str,
    action: str,
    *,
    timeout: float,
    log: CommandLog,
    poll_interval: float = 5.0,
    progress: Callable[[float], None] | None = None,
) -> AtaSanitizeStatus:
    """ATA SANITIZE (crypto scramble, block erase or overwrite), polled with --sanitize-status."""
    if action == "overwrite":
        # One pass of a zero pattern (hdparm's 32-bit OVERWRITE pattern), so read-back
        # verification can expect zeros. The pass count must be explicit: 0, hdparm's
        # default, means sixteen passes in ACS (a day on a large drive).
        argv = ["hdparm", _I_KNOW, "--sanitize-overwrite-passes", "1", "--sanitize-overwrite", "hex:00000000", device]
    elif action in SANITIZE_FLAGS:
        argv = ["hdparm", _I_KNOW, SANITIZE_FLAGS[action], device]
    else:
        raise SanitizeError(f"unknown ATA sanitize action {action!r}")
    result = log.add(commands.run(argv, timeout=120))
    _require_ok(result, f"ATA SANITIZE {action}")
    deadline = clock() + timeout
    while True:
        res = log.add(commands.run(["hdparm", "--sanitize-status", device], timeout=60))
        _require_ok(res, "hdparm --sanitize-status")
        status = parse_sanitize_status(res.stdout)
        if progress is not None:
            progress(float(status.progress_percent or 0) if status.in_progress else 100.0)
        if status.failed:
            raise SanitizeError(f"ATA SANITIZE {action} failed on {device} (state SD3)")
        if status.frozen:
            raise SanitizeError(f"ATA SANITIZE {action} refused on {device}: sanitize frozen (SD1)")
        if not status.in_progress:
            if status.completed_without_error:
                return status
            raise SanitizeError(f"ATA SANITIZE {action} on {device} ended without a success report")
        if clock() >= deadline:
            raise ToolTimeout(f"ATA SANITIZE {action} on {device} still running after {timeout:g} s")
        sleep(poll_interval)


# --------------------------------------------------------------------------- SECURITY ERASE


def new_password() -> str:
    """A per-run password: 16 hex characters fit hdparm's 32-byte password field."""
    return secrets.token_hex(8)


def erase_timeout(info: AtaInfo, enhanced: bool) -> float:
    """The drive's own estimate, doubled, plus slack; hdparm -I says e.g. '24min for ...'.
    Without an estimate: 2 h plus 1 h per 100 GB at 30 MB/s, the slowest HDD we expect."""
    minutes = info.security.enhanced_erase_minutes if enhanced else info.security.erase_minutes
    if minutes:
        return minutes * 60 * 2.0 + 600.0
    size = (info.lba48_sectors or 0) * 512
    return 7200.0 + size / 30e6


def set_password(device: str, password: str, log: CommandLog) -> None:
    res = log.add(
        commands.run(["hdparm", "--user-master", "u", "--security-set-pass", commands.Secret(password), device], timeout=60)
    )
    _require_ok(res, "ATA SECURITY SET PASSWORD")


def security_erase(
    device: str, password: str, *, enhanced: bool, timeout: float, log: CommandLog
) -> None:
    flag = "--security-erase-enhanced" if enhanced else "--security-erase"
    res = log.add(
        commands.run(["hdparm", "--user-master", "u", flag, commands.Secret(password), device], timeout=timeout)
    )
    _require_ok(res, f"ATA SECURITY ERASE UNIT ({'enhanced' if enhanced else 'normal'})")


def unlock(device: str, password: str, log: CommandLog) -> None:
    res = log.add(
        commands.run(["hdparm", "--user-master", "u", "--security-unlock", commands.Secret(password), device], timeout=60)
    )
    _require_ok(res, "ATA SECURITY UNLOCK")


def disable(device: str, password: str, log: CommandLog) -> None:
    res = log.add(
        commands.run(["hdparm", "--user-master", "u", "--security-disable", commands.Secret(password), device], timeout=60)
    )
    _require_ok(res, "ATA SECURITY DISABLE PASSWORD")


def _require_ok(result: CommandResult, what: str) -> None:
    if result.ok:
        return
    text = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()
    raise SanitizeError(f"{what} refused: {text[-1]}", argv=list(result.argv))


# --------------------------------------------------------------------------- password journal


class PasswordJournal:
    """Where the per-run ATA password is written *before* it is set on the drive.

    It sits in the station's journal directory next to the overwrite journal, one small
    file per drive identity, written atomically and fsynced, so it survives the power
    loss it exists for. It is removed once security is disabled again.
    """

    def __init__(self, state_dir) -> None:
        self.dir = Path(state_dir) / "journal"

    def _file(self, identity: str):
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", identity).strip("_")[:64]
        digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
        return self.dir / f"ata-password-{safe}-{digest}.json"

    def record(self, identity: str, device: str, password: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        target = self._file(identity)
        record = {"identity": identity, "device": device, "password": password}
        atomic_write(target, json.dumps(record).encode(), mode=0o600)

    def load(self, identity: str) -> str | None:
        try:
            data = json.loads(self._file(identity).read_text())
        except (OSError, ValueError):
            return None
        password = data.get("password") if isinstance(data, dict) else None
        return password if isinstance(password, str) else None

    def clear(self, identity: str) -> None:
        try:
            self._file(identity).unlink()
        except FileNotFoundError:
            pass
