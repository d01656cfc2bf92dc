"""Decoding the base block of a display's EDID (VESA E-EDID 1.3/1.4): who made the panel,
how big it is, and its preferred resolution. 128 bytes at fixed offsets; no library needed.
"""

from __future__ import annotations

import math

from agent.errors import ToolOutputError
from agent.records import DisplayInfo

HEADER = b"\x00\xff\xff\xff\xff\xff\xff\x00"
_DESCRIPTORS = (54, 72, 90, 108)


def _pnp_id(b: bytes) -> str:
    # Three 5-bit letters, 'A' = 1, packed big-endian into bytes 8-9.
    word = int.from_bytes(b, "big")
    return "".join(chr(((word >> shift) & 0x1F) + ord("A") - 1) for shift in (10, 5, 0))


def _descriptor_text(d: bytes) -> str:
    return d[5:18].split(b"\x0a", 1)[0].decode("cp437", "replace").strip()


def decode_edid(data: bytes, connector: str = "") -> DisplayInfo:
    """Raise ``ToolOutputError`` when ``data`` is not a valid EDID base block."""
    if len(data) < 128 or data[:8] != HEADER:
        raise ToolOutputError(f"{connector or 'EDID'}: not an EDID block (bad header or {len(data)} bytes)")
    block = data[:128]
    if sum(block) % 256 != 0:
        raise ToolOutputError(f"{connector or 'EDID'}: EDID checksum mismatch")
    info = DisplayInfo(connector=connector)
    info.manufacturer = _pnp_id(block[8:10])
    info.product_code = int.from_bytes(block[10:12], "little")
    serial_number = int.from_bytes(block[12:16], "little")
    info.serial = str(serial_number) if serial_number else None
    if block[17]:
        info.year = 1990 + block[17]
    width_cm, height_cm = block[21], block[22]
    width_mm = height_mm = 0
    # The first detailed timing descriptor is the preferred mode (EDID 1.3 §3.10.2).
    dtd = block[54:72]
    pixel_clock = int.from_bytes(dtd[0:2], "little") * 10_000
    if pixel_clock:
        h_active = dtd[2] | ((dtd[4] & 0xF0) << 4)
        h_blank = dtd[3] | ((dtd[4] & 0x0F) << 8)
        v_active = dtd[5] | ((dtd[7] & 0xF0) << 4)
        v_blank = dtd[6] | ((dtd[7] & 0x0F) << 8)
        info.preferred_width, info.preferred_height = h_active, v_active
        total = (h_active + h_blank) * (v_active + v_blank)
        if total:
            info.refresh_hz = round(pixel_clock / total, 2)
        width_mm = dtd[12] | ((dtd[14] & 0xF0) << 4)
        height_mm = dtd[13] | ((dtd[14] & 0x0F) << 8)
    for off in _DESCRIPTORS[1:] if pixel_clock else _DESCRIPTORS:
        d = block[off : off + 18]
        if d[0:3] == b"\0\0\0":
            if d[3] == 0xFC:
                info.name = _descriptor_text(d) or None
            elif d[3] == 0xFF and not info.serial:
                info.serial = _descriptor_text(d) or None
    if width_cm and height_cm:  # both zero means a projector or an undefined aspect ratio
        info.width_cm, info.height_cm = width_cm, height_cm
    # The timing descriptor gives millimetres; the basic block only whole centimetres.
    if width_mm and height_mm and (not width_cm or abs(width_mm / 10 - width_cm) < 2):
        info.diagonal_inches = round(math.hypot(width_mm, height_mm) / 25.4, 1)
    elif width_cm and height_cm:
        info.diagonal_inches = round(math.hypot(width_cm, height_cm) / 2.54, 1)
    return info
