"""Strings from hardware, configs and the network, made safe to show on a terminal.

A drive's serial or model is whatever its firmware says. Printed as is, an ESC sequence
in it can clear the screen, move the cursor or rewrite earlier lines (a forged "PASSED"),
and a bidi override (U+202E) can reverse what follows. Every control and format
character is shown as "?" instead; tabs become spaces.
"""

from __future__ import annotations

import unicodedata


def printable(value: str) -> str:
    if value.isprintable():
        return value
    return "".join(
        " " if ch == "\t" else "?" if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") else ch
        for ch in value
    )
