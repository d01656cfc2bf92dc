"""The workshop's seat table: which seat (place on the table) each laptop's MAC sits at."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from agent.errors import ConfigError

_MAC = re.compile(r"^[0-9a-f]{2}([-:][0-9a-f]{2}){5}$")
_SEAT = re.compile(r"^[A-Za-z0-9._-]{1,16}$")  # it goes on a kernel command line


def normalize_mac(text: str) -> str | None:
    """``aa-bb-cc-dd-ee-ff`` (iPXE's ``hexhyp``) from any usual spelling; None if not a MAC."""
    mac = text.strip().lower()
    return mac.replace(":", "-") if _MAC.match(mac) else None


def read_seats(path: Path) -> dict[str, str]:
    """``MAC,seat`` lines (a header line and ``#`` comments allowed) -> {mac: seat}."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the seat table {path}: {getattr(exc, 'strerror', None) or exc}") from None
    seats: dict[str, str] = {}
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if lineno == 1 and row[0].strip().lower() == "mac":
            continue
        if len(row) != 2:
            raise ConfigError(f"{path}:{lineno}: expected MAC,seat (got {len(row)} fields)")
        mac, seat = normalize_mac(row[0]), row[1].strip()
        if mac is None:
            raise ConfigError(f"{path}:{lineno}: {row[0].strip()!r} is not a MAC address")
        if not _SEAT.match(seat):
            raise ConfigError(f"{path}:{lineno}: seat {seat!r} must be 1 to 16 letters, digits, '.', '_' or '-'")
        if mac in seats:
            raise ConfigError(f"{path}:{lineno}: MAC {mac} is already seat {seats[mac]}")
        seats[mac] = seat
    return seats
