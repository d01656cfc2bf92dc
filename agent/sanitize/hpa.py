"""Hidden areas of ATA drives: Host Protected Area (HPA) and Device Configuration Overlay.

An HPA or a DCO hides the end of the disk from the operating system, so an overwrite
through the block device never reaches it (NIST SP 800-88 Rev. 1 §2.5 warns that such
areas must be addressed). We read the visible and native sizes with ``hdparm -N`` and the
DCO's real maximum with ``hdparm --dco-identify``, and reset to native max before
sanitizing when the config allows it (``hpa_reset``, on by default). If a hidden area
remains, the result says so and the disk is not reported sanitized.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent import commands
from agent.commands import CommandLog
from agent.errors import ToolError
from agent.records import HiddenAreas

_I_KNOW = "--yes-i-know-what-i-am-doing"


@dataclass
class MaxSectors:
    visible: int
    native: int

    @property
    def hpa_enabled(self) -> bool:
        return self.visible < self.native


def parse_max_sectors(text: str) -> MaxSectors | None:
    """`` max sectors   = 976771055/976773168, HPA is enabled``."""
    m = re.search(r"max sectors\s*=\s*(\d+)/(\d+)", text)
    if not m:
        return None
    return MaxSectors(visible=int(m.group(1)), native=int(m.group(2)))


def parse_dco_real_max(text: str) -> int | None:
    """``Real max sectors: 976773168`` from ``hdparm --dco-identify``."""
    m = re.search(r"Real max sectors:\s*(\d+)", text)
    return int(m.group(1)) if m else None


def read_max_sectors(device: str, log: CommandLog | None = None) -> MaxSectors | None:
    try:
        res = commands.run(["hdparm", "-N", device], timeout=60)
    except ToolError:
        return None
    if log is not None:
        log.add(res)
    return parse_max_sectors(res.stdout) if res.ok else None


def read_dco_max(device: str, log: CommandLog | None = None) -> int | None:
    try:
        res = commands.run(["hdparm", "--dco-identify", device], timeout=60)
    except ToolError:
        return None
    if log is not None:
        log.add(res)
    return parse_dco_real_max(res.stdout) if res.ok else None


def detect(device: str, log: CommandLog | None = None) -> HiddenAreas:
    """Before-state of the hidden areas (nothing changed yet)."""
    hpa = read_max_sectors(device, log)
    dco_max = read_dco_max(device, log)
    areas = HiddenAreas()
    if hpa is not None:
        areas.visible_sectors_before = hpa.visible
        areas.native_max_sectors = hpa.native
    if dco_max is not None:
        native = areas.native_max_sectors
        areas.dco_restricted = native is not None and dco_max > native
        if areas.native_max_sectors is None or dco_max > areas.native_max_sectors:
            areas.native_max_sectors = dco_max
    if hpa is None and dco_max is None:
        areas.note = "hidden areas not readable (hdparm -N and --dco-identify gave no answer)"
    return areas


def has_hidden_area(areas: HiddenAreas) -> bool:
    return bool(
        areas.visible_sectors_before is not None
        and areas.native_max_sectors is not None
        and areas.visible_sectors_before < areas.native_max_sectors
    )


def reset(device: str, areas: HiddenAreas, *, allowed: bool, log: CommandLog) -> HiddenAreas:
    """Remove HPA and DCO restrictions so the whole native capacity gets sanitized.

    Fills ``visible_sectors_after`` and ``removed``; ``note`` says what is left hidden.
    """
    if not has_hidden_area(areas):
        areas.visible_sectors_after = areas.visible_sectors_before
        areas.removed = None if areas.visible_sectors_before is None else True
        return areas
    hidden = areas.native_max_sectors - areas.visible_sectors_before  # type: ignore[operator]
    if not allowed:
        areas.visible_sectors_after = areas.visible_sectors_before
        areas.removed = False
        areas.note = f"{hidden} hidden sectors left in place (hpa_reset is off): not sanitized"
        return areas
    if areas.dco_restricted:
        # DCO RESTORE lifts the overlay (and any features it disabled); it needs the
        # drive not frozen, like SET MAX.
        log.add(commands.run(["hdparm", _I_KNOW, "--dco-restore", device], timeout=60))
    # "p" makes the new max permanent across power cycles (SET MAX ADDRESS volatile=0),
    # so the drive leaves the station with its full capacity visible.
    log.add(commands.run(["hdparm", _I_KNOW, "-N", f"p{areas.native_max_sectors}", device], timeout=60))
    after = read_max_sectors(device, log)
    areas.visible_sectors_after = after.visible if after else None
    areas.removed = bool(after and after.visible >= (areas.native_max_sectors or 0))
    if not areas.removed:
        left = (areas.native_max_sectors or 0) - (after.visible if after else areas.visible_sectors_before or 0)
        areas.note = f"{left} hidden sectors could not be made visible: not sanitized"
    return areas
