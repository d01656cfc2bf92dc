"""NVMe firmware purge: capabilities from Identify Controller, Sanitize, Format NVM.

Everything goes through ``nvme`` (nvme-cli) via the command gateway. Field meanings are
from the NVMe Base Specification 2.0, Identify Controller data structure:
- OACS bit 1: the controller supports Format NVM.
- FNA bit 0: a format applies to all namespaces; bit 2: cryptographic erase is
  supported as part of a format (SES=2).
- SANICAP bit 0: Crypto Erase sanitize; bit 1: Block Erase; bit 2: Overwrite.
Sanitize actions (SANACT): 1 = exit failure mode, 2 = block erase, 3 = overwrite,
4 = crypto erase. We only ever send 2 or 4: 1 does not erase anything, it only lets a
controller whose previous sanitize failed leave the failure state, and 3 (overwrite) is
deprecated for flash by IEEE 2883 because it wears the media for no gain over block erase.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable

from agent import commands
from agent.commands import CommandLog
from agent.errors import SanitizeError, ToolError, ToolOutputError, ToolTimeout

# SANACT values we are allowed to send. Never 1 (exit failure mode).
SANACT = {"crypto": 4, "block": 2}
_FORBIDDEN_SANACT = {1}

# Estimated-time fields equal to this mean "no estimate" (NVMe 2.0, Sanitize Status log).
_NO_ESTIMATE = 0xFFFFFFFF

# Sanitize Status (SSTAT bits 2:0).
SSTAT_NEVER = 0
SSTAT_SUCCESS = 1
SSTAT_IN_PROGRESS = 2
SSTAT_FAILED = 3
SSTAT_SUCCESS_NO_DEALLOC = 4

# Injected by tests so polling loops run instantly and deterministically.
sleep: Callable[[float], None] = time.sleep
clock: Callable[[], float] = time.monotonic


@dataclass
class NvmeCaps:
    """What one controller says it can do, from ``nvme id-ctrl -o json``."""

    controller: str  # /dev/nvme0
    model: str | None = None
    serial: str | None = None
    oacs: int = 0
    fna: int = 0
    sanicap: int = 0
    namespaces: int = 1  # NN: namespaces the controller supports (not necessarily attached)

    @property
    def format_supported(self) -> bool:
        return bool(self.oacs & 0x2)

    @property
    def format_crypto(self) -> bool:
        return self.format_supported and bool(self.fna & 0x4)

    @property
    def format_all_namespaces(self) -> bool:
        return bool(self.fna & 0x1)

    @property
    def sanitize_crypto(self) -> bool:
        return bool(self.sanicap & 0x1)

    @property
    def sanitize_block(self) -> bool:
        return bool(self.sanicap & 0x2)

    @property
    def sanitize_overwrite(self) -> bool:
        return bool(self.sanicap & 0x4)

    def describe(self) -> str:
        return f"oacs 0x{self.oacs:x}, fna 0x{self.fna:x}, sanicap 0x{self.sanicap:x}"


@dataclass
class SanitizeLog:
    """The Sanitize Status log page (log id 0x81)."""

    sprog: int  # progress numerator over 65536; 65535 when idle
    status: int  # SSTAT bits 2:0
    global_erased: bool | None = None
    # Estimated seconds per action (None when the controller gives no estimate).
    estimates: dict[str, int | None] = field(default_factory=dict)

    @property
    def percent(self) -> float:
        return round(100.0 * self.sprog / 65536, 1)

    @property
    def in_progress(self) -> bool:
        return self.status == SSTAT_IN_PROGRESS

    @property
    def succeeded(self) -> bool:
        return self.status in (SSTAT_SUCCESS, SSTAT_SUCCESS_NO_DEALLOC)

    @property
    def failed(self) -> bool:
        return self.status == SSTAT_FAILED


def controller_of(path: str) -> str:
    """/dev/nvme0n1 -> /dev/nvme0: sanitize and identify talk to the controller."""
    m = re.fullmatch(r"(/dev/nvme\d+)(n\d+)?", path)
    if not m:
        raise SanitizeError(f"{path} is not an NVMe namespace or controller device")
    return m.group(1)


def nsid_of(path: str) -> int | None:
    m = re.fullmatch(r"/dev/nvme\d+n(\d+)", path)
    return int(m.group(1)) if m else None


def parse_id_ctrl(data: object, controller: str) -> NvmeCaps:
    if not isinstance(data, dict) or "oacs" not in data:
        raise ToolOutputError(f"nvme id-ctrl {controller}: no 'oacs' field in the JSON output")

    def num(key: str) -> int:
        value = data.get(key, 0)
        return int(value) if isinstance(value, (int, float)) else int(str(value), 0)

    return NvmeCaps(
        controller=controller,
        model=str(data.get("mn", "")).strip() or None,
        serial=str(data.get("sn", "")).strip() or None,
        oacs=num("oacs"),
        fna=num("fna"),
        sanicap=num("sanicap"),
        namespaces=num("nn") or 1,
    )


def read_caps(controller: str, log: CommandLog | None = None) -> NvmeCaps:
    result = commands.run(["nvme", "id-ctrl", controller, "-o", "json"], check=True)
    if log is not None:
        log.add(result)
    return parse_id_ctrl(result.json(), controller)


def parse_sanitize_log(data: object) -> SanitizeLog:
    """Parse ``nvme sanitize-log -o json``.

    nvme-cli 2.x nests the page under the device name and renders SSTAT as an object whose
    status string reads "(N) text"; 2.3 (Debian 12) even uses the text as the key. Older
    releases print SSTAT as a plain integer. Accept all of them.
    """
    if isinstance(data, dict) and "sprog" not in data:
        nested = [v for v in data.values() if isinstance(v, dict) and "sprog" in v]
        if len(nested) == 1:
            data = nested[0]
    if not isinstance(data, dict) or "sprog" not in data or "sstat" not in data:
        raise ToolOutputError("nvme sanitize-log: no sprog/sstat in the JSON output")
    sstat = data["sstat"]
    global_erased = None
    if isinstance(sstat, dict):
        global_erased = bool(sstat.get("global_erased")) if "global_erased" in sstat else None
        status = None
        for value in sstat.values():
            m = re.match(r"\s*\((\d+)\)", str(value))
            if m:
                status = int(m.group(1))
                break
        if status is None:
            raise ToolOutputError("nvme sanitize-log: SSTAT has no '(N) status' entry")
    else:
        raw = int(sstat)
        status = raw & 0x7
        global_erased = bool(raw & 0x100)

    def estimate(key: str) -> int | None:
        value = data.get(key)
        if value is None or int(value) == _NO_ESTIMATE:
            return None
        return int(value)

    return SanitizeLog(
        sprog=int(data["sprog"]),
        status=status,
        global_erased=global_erased,
        estimates={
            "crypto": estimate("time_crypto_erase"),
            "block": estimate("time_block_erase"),
            "overwrite": estimate("time_over_write"),
        },
    )


def read_sanitize_log(controller: str, log: CommandLog | None = None) -> SanitizeLog:
    result = commands.run(["nvme", "sanitize-log", controller, "-o", "json"], check=True)
    if log is not None:
        log.add(result)
    return parse_sanitize_log(result.json())


def list_namespaces(controller: str, log: CommandLog | None = None) -> list[int]:
    """Active namespace ids (``nvme list-ns``); a format must reach every one of them."""
    result = commands.run(["nvme", "list-ns", controller, "-o", "json"], check=True)
    if log is not None:
        log.add(result)
    data = result.json()
    ids: list[int] = []
    if isinstance(data, dict):
        for entry in data.get("nsid_list", []):
            if isinstance(entry, dict) and "nsid" in entry:
                ids.append(int(entry["nsid"]))
    if not ids:
        raise ToolOutputError(f"nvme list-ns {controller}: no active namespace listed")
    return ids


def sanitize_timeout(estimate_s: int | None, size_bytes: int) -> float:
    """How long to wait for a sanitize: the drive's own estimate (Sanitize Status log) with
    margin, else a bound from the size (200 MB/s, slower than any block erase we know)."""
    if estimate_s:
        return estimate_s * 2.0 + 120.0
    return 600.0 + size_bytes / 200e6


def format_timeout(size_bytes: int) -> float:
    """Format with SES=1 may write the whole namespace on some drives: 100 MB/s floor."""
    return 900.0 + size_bytes / 100e6


def sanitize(
    controller: str,
    action: str,
    *,
    timeout: float,
    log: CommandLog,
    poll_interval: float = 5.0,
    progress: Callable[[float], None] | None = None,
) -> SanitizeLog:
    """Start a sanitize and poll the log until it completes.

    Raises ``SanitizeError`` if the controller refuses or reports failure, ``ToolTimeout``
    if it is still running after ``timeout`` seconds.
    """
    sanact = SANACT.get(action)
    if sanact is None or sanact in _FORBIDDEN_SANACT:
        raise SanitizeError(f"refusing NVMe sanitize action {action!r}: only crypto (4) or block (2)")
    result = log.add(
        commands.run(["nvme", "sanitize", controller, f"--sanact={sanact}"], timeout=120)
    )
    if not result.ok:
        reason = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        # A sanitize interrupted by a power loss resumes by itself when the controller
        # powers up, and the controller refuses a new one meanwhile: wait for that one.
        try:
            running = read_sanitize_log(controller, log).in_progress
        except ToolError:
            running = False
        if not running:
            raise SanitizeError(f"nvme sanitize {action} refused by {controller}: {reason}")
    deadline = clock() + timeout
    while True:
        state = read_sanitize_log(controller, log)
        if progress is not None:
            progress(100.0 if not state.in_progress else state.percent)
        if state.failed:
            raise SanitizeError(f"nvme sanitize {action} failed on {controller} (sanitize log SSTAT 3)")
        if not state.in_progress:
            if state.succeeded:
                return state
            raise SanitizeError(
                f"nvme sanitize {action} on {controller}: sanitize log reports status {state.status}, not success"
            )
        if clock() >= deadline:
            raise ToolTimeout(
                f"nvme sanitize {action} on {controller} still at {state.percent}% after {timeout:g} s"
            )
        sleep(poll_interval)


def format_namespace(
    controller: str, nsid: int, ses: int, *, timeout: float, log: CommandLog
) -> None:
    """Format NVM with a Secure Erase Setting: 2 = cryptographic erase, 1 = user data erase."""
    if ses not in (1, 2):
        raise SanitizeError(f"refusing nvme format with SES={ses}: only 1 or 2 erase data")
    argv = ["nvme", "format", controller, f"--namespace-id={nsid}", f"--ses={ses}", "--force"]
    try:
        result = log.add(commands.run(argv, timeout=timeout))
    except ToolTimeout:
        raise
    except ToolError as exc:
        raise SanitizeError(f"nvme format SES={ses} could not run: {exc}") from None
    if not result.ok:
        reason = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        raise SanitizeError(f"nvme format SES={ses} of namespace {nsid} refused: {reason}")
