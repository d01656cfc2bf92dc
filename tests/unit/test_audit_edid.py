"""EDID decoding on synthesized base blocks (built here byte by byte, per VESA E-EDID 1.4)."""

from __future__ import annotations

import pytest

from agent.audit.edid import decode_edid
from agent.errors import ToolOutputError


def make_edid(
    *,
    pnp="LGD",
    product=0x0469,
    serial=0,
    year=2017,
    size_cm=(31, 17),
    size_mm=(309, 174),
    clock_10khz=13850,
    h=(1920, 160),
    v=(1080, 31),
    name="LP140WF6",
) -> bytes:
    b = bytearray(128)
    b[0:8] = b"\x00\xff\xff\xff\xff\xff\xff\x00"
    word = 0
    for ch in pnp:
        word = (word << 5) | (ord(ch) - ord("A") + 1)
    b[8:10] = word.to_bytes(2, "big")
    b[10:12] = product.to_bytes(2, "little")
    b[12:16] = serial.to_bytes(4, "little")
    b[17] = year - 1990
    b[18], b[19] = 1, 4
    b[21], b[22] = size_cm
    d = bytearray(18)
    if clock_10khz:
        d[0:2] = clock_10khz.to_bytes(2, "little")
        d[2], d[3], d[4] = h[0] & 0xFF, h[1] & 0xFF, ((h[0] >> 8) << 4) | (h[1] >> 8)
        d[5], d[6], d[7] = v[0] & 0xFF, v[1] & 0xFF, ((v[0] >> 8) << 4) | (v[1] >> 8)
        d[12], d[13], d[14] = size_mm[0] & 0xFF, size_mm[1] & 0xFF, ((size_mm[0] >> 8) << 4) | (size_mm[1] >> 8)
    b[54:72] = d
    name_desc = bytearray(18)
    name_desc[3] = 0xFC
    name_desc[5:18] = (name.encode() + b"\n").ljust(13, b" ")
    b[72:90] = name_desc
    b[127] = (256 - sum(b[:127]) % 256) % 256
    return bytes(b)


def test_laptop_panel_size_resolution_and_name_are_decoded():
    info = decode_edid(make_edid(), "eDP-1")
    assert info.connector == "eDP-1"
    assert (info.manufacturer, info.product_code, info.name, info.year) == ("LGD", 0x0469, "LP140WF6", 2017)
    assert (info.preferred_width, info.preferred_height) == (1920, 1080)
    assert info.refresh_hz == pytest.approx(59.93, abs=0.01)
    assert (info.width_cm, info.height_cm) == (31, 17)
    assert info.diagonal_inches == 14.0


def test_size_falls_back_to_centimetres_without_a_timing_descriptor():
    info = decode_edid(make_edid(clock_10khz=0, size_cm=(53, 30)))
    assert info.preferred_width is None
    assert info.diagonal_inches == pytest.approx(24.0, abs=0.1)


def test_4k_modes_use_the_high_nibbles():
    info = decode_edid(make_edid(clock_10khz=59400, h=(3840, 560), v=(2160, 90), size_mm=(597, 336), size_cm=(60, 34)))
    assert (info.preferred_width, info.preferred_height) == (3840, 2160)
    assert info.refresh_hz == pytest.approx(60.0, abs=0.01)
    assert info.diagonal_inches == 27.0


def test_projector_without_a_size_has_no_diagonal():
    info = decode_edid(make_edid(size_cm=(0, 0), size_mm=(0, 0)))
    assert info.diagonal_inches is None and info.width_cm is None


def test_bad_checksum_is_refused_with_a_reason():
    data = bytearray(make_edid())
    data[100] ^= 0xFF
    with pytest.raises(ToolOutputError, match="HDMI-A-1: EDID checksum mismatch"):
        decode_edid(bytes(data), "HDMI-A-1")


@pytest.mark.parametrize("data", [b"", b"\x00" * 128, b"\x00\xff\xff\xff\xff\xff\xff\x00" + b"\x00" * 10])
def test_garbage_is_not_an_edid(data):
    with pytest.raises(ToolOutputError):
        decode_edid(data)
