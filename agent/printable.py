"""Strings from hardware, configs and the network, made safe to show on a terminal.

A drive's serial or model is whatever its firmware says. Printed as is, an ESC sequence
in it can clear the screen, move the cursor or rewrite earlier lines (a forged "PASSED"),
and a bidi override (U+202E) can reverse what follows. Every control and format
character is shown as "?" instead; tabs become spaces.
"""

from __future__ import annotations

import unicodedata


def printable(value: str, *, keep_newlines: bool = False) -> str:
    """``value`` with control and format characters shown as "?"; ``keep_newlines`` for a
    message of several lines composed by the agent itself."""
    if value.isprintable():
        return value
    return "".join(
        ch if keep_newlines and ch == "\n" else " " if ch == "\t"
        else "?" if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") else ch
        for ch in value
    )
