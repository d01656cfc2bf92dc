"""Parsing ``dmidecode`` text output: SMBIOS structures as (type, title, fields).

dmidecode has no JSON output; its text format is stable since 2.x: a ``Handle 0x..., DMI
type N, M bytes`` line, a title line, then tab-indented ``Key: Value`` lines (list values
are indented twice and are ignored here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.records import DmiInfo, MemoryModule

_HANDLE = re.compile(r"^Handle 0x[0-9A-Fa-f]+, DMI type (\d+), \d+ bytes")

# Strings that firmware writers leave in unfilled SMBIOS fields: they identify nothing.
PLACEHOLDERS = {
    "",
    "not specified",
    "not available",
    "not provided",
    "none",
    "unknown",
    "to be filled by o.e.m.",
    "to be filled by oem",
    "default string",
    "system product name",
    "system manufacturer",
    "system version",
    "system serial number",
    "base board serial number",
    "chassis serial number",
    "0123456789",
    "123456789",
    "o.e.m.",
    "oem",
    "no asset information",
}


def clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    return None if value.lower() in PLACEHOLDERS else value


@dataclass
class Structure:
    type: int
    title: str = ""
    fields: dict[str, str] = field(default_factory=dict)


def parse(text: str) -> list[Structure]:
    structures: list[Structure] = []
    current: Structure | None = None
    expect_title = False
    for line in text.splitlines():
        m = _HANDLE.match(line)
        if m:
            current = Structure(type=int(m.group(1)))
            structures.append(current)
            expect_title = True
            continue
        if current is None:
            continue
        if expect_title:
            current.title = line.strip()
            expect_title = False
            continue
        if line.startswith("\t") and not line.startswith("\t\t") and ":" in line:
            key, _, value = line.strip().partition(":")
            current.fields[key.strip()] = value.strip()
        elif not line.strip():
            current = None
    return structures


def _size_bytes(text: str | None) -> int | None:
    """'8 GB', '8192 MB', '16384 kB'; None for 'No Module Installed' / 'Not Installed'."""
    m = re.match(r"(\d+)\s*(kB|KB|MB|GB|TB)", text or "")
    if not m:
        return None
    return int(m.group(1)) << {"kB": 10, "KB": 10, "MB": 20, "GB": 30, "TB": 40}[m.group(2)]


def _speed(text: str | None) -> int | None:
    # dmidecode >= 3.3 prints MT/s, older ones MHz for the same number (SMBIOS stores MT/s).
    m = re.match(r"(\d+)\s*(MT/s|MHz)", text or "")
    return int(m.group(1)) if m else None


def memory_modules(structures: list[Structure]) -> list[MemoryModule]:
    """Every memory slot (type 17), populated or not (size None)."""
    modules = []
    for s in structures:
        if s.type != 17:
            continue
        f = s.fields
        modules.append(
            MemoryModule(
                slot=clean(f.get("Locator")),
                bank=clean(f.get("Bank Locator")),
                size_bytes=_size_bytes(f.get("Size")),
                type=clean(f.get("Type")),
                speed_mts=_speed(f.get("Speed")),
                configured_speed_mts=_speed(f.get("Configured Memory Speed") or f.get("Configured Clock Speed")),
                form_factor=clean(f.get("Form Factor")),
                manufacturer=clean(f.get("Manufacturer")),
                part_number=clean(f.get("Part Number")),
                serial=clean(f.get("Serial Number")),
            )
        )
    return modules


def dmi_info(structures: list[Structure]) -> DmiInfo | None:
    by_type: dict[int, dict[str, str]] = {}
    for s in structures:
        by_type.setdefault(s.type, s.fields)
    if not any(t in by_type for t in (0, 1, 2, 3)):
        return None
    bios, system, board, chassis = (by_type.get(t, {}) for t in (0, 1, 2, 3))
    return DmiInfo(
        system_vendor=clean(system.get("Manufacturer")),
        system_product=clean(system.get("Product Name")),
        system_version=clean(system.get("Version")),
        system_serial=clean(system.get("Serial Number")),
        system_uuid=clean(system.get("UUID")),
        system_sku=clean(system.get("SKU Number")),
        system_family=clean(system.get("Family")),
        chassis_type=clean(chassis.get("Type")),
        chassis_vendor=clean(chassis.get("Manufacturer")),
        chassis_serial=clean(chassis.get("Serial Number")),
        bios_vendor=clean(bios.get("Vendor")),
        bios_version=clean(bios.get("Version")),
        bios_date=clean(bios.get("Release Date")),
        board_vendor=clean(board.get("Manufacturer")),
        board_name=clean(board.get("Product Name")),
        board_version=clean(board.get("Version")),
        board_serial=clean(board.get("Serial Number")),
        source="dmidecode",
    )
