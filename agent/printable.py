"""Strings from hardware, configs and the network, made safe to show on a terminal.

A drive's serial or model is whatever its firmware says. Printed as is, an ESC sequence
in it can clear the screen, move the cursor or rewrite earlier lines (a forged "PASSED"),
and a bidi override (U+202E) can reverse what follows. Every such character is shown as
a visible escape (``\\x1b``, ``\\u202e``) instead, so the technician sees that the
string holds one; the TUI, the plain log and every CLI line use this one function.
"""

from __future__ import annotations

import re

# C0 controls and DEL, C1 controls, the Unicode characters that reorder or break a line on
# screen (bidi overrides and isolates, line and paragraph separators), lone surrogates.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(ch: str) -> str:
    return ch.encode("unicode_escape", "backslashreplace").decode("ascii")


def printable(value: object, *, keep_newlines: bool = False) -> str:
    """``value`` with every control character shown as a visible escape; ``keep_newlines``
    for a message of several lines composed by the agent itself."""
    text = str(value)
    if text.isprintable():
        return text
    return _UNPRINTABLE.sub(lambda m: m.group() if keep_newlines and m.group() == "\n" else _escape(m.group()), text)
