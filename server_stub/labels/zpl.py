"""Labels as ZPL II for Zebra printers (203 dpi, 8 dots a millimetre), one ^XA…^XZ
format per machine.

Everything printed comes from firmware strings and uploads: a model name holding "^XZ" or
"~JR" would otherwise end the format or reset the printer (tilde commands run wherever
the printer reads them). Every field is therefore sent with ^FH and the bytes ZPL gives a
meaning to (^ ~ _ \\ and control characters) as _XX hex escapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import segno

from server_stub.errors import Malformed
from server_stub.labels import words
from server_stub.labels.data import Erasure, LabelData
from server_stub.labels.pdf import blocks_of
from server_stub.labels.sizes import LabelSize

DOTS_PER_MM = 8  # 203 dpi
# Font 0 (CG Triumvirate Bold Condensed) at height h: an average character is under 0.55 h
# wide; 0.6 h keeps a line of capitals inside its ^FB box.
CHAR_WIDTH = 0.6
_SPECIAL = {"^", "~", "_", "\\"}


def escape(text: str) -> str:
    """``text`` as ^FH field data: ZPL's command and escape bytes as _XX, never raw."""
    out = []
    for ch in text:
        if ch in _SPECIAL or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("".join(f"_{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True)
class _Frame:
    width: int
    height: int
    margin: int
    qr_dots: int  # the side the QR code may take
    title_h: int
    text_h: int
    landscape: bool


_FRAMES = {
    "4x6": _Frame(812, 1218, 48, 400, 64, 46, landscape=False),
    "50x30": _Frame(400, 240, 12, 136, 22, 16, landscape=True),
}


def _wrap(words: list[str], per_line: int) -> list[str]:
    """Greedy word wrap by character count, as the printer wraps a ^FB block (a word longer
    than a line is cut, where the printer would run it past the edge)."""
    lines: list[str] = []
    current = ""
    for w in words:
        while len(w) > per_line:
            if current:
                lines.append(current)
                current = ""
            lines.append(w[:per_line])
            w = w[per_line:]
        candidate = f"{current} {w}" if current else w
        if len(candidate) <= per_line:
            current = candidate
        else:
            lines.append(current)
            current = w
    return lines + [current] if current else lines or [""]


def _fit(text: str, h: int, width: int, max_lines: int) -> tuple[str, int]:
    """The text as the lines it takes in ``width`` dots (at most ``max_lines``, the last
    one cut with "..." when it does not fit), and how many lines that is."""
    per_line = max(4, int(width / (CHAR_WIDTH * h)))
    lines = _wrap(text.split(), per_line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:per_line - 3].rstrip() + "..."
    # Joined by spaces, the printer wraps them again at the same places.
    return " ".join(lines), len(lines)


def _fits(text: str, h: int, width: int, max_lines: int) -> bool:
    per_line = max(4, int(width / (CHAR_WIDTH * h)))
    words = text.split()
    return all(len(w) <= per_line for w in words) and len(_wrap(words, per_line)) <= max_lines


def _text(x: int, y: int, text: str, h: int, width: int, max_lines: int, *, inverse: bool = False) -> tuple[str, int]:
    """One ^FB field; the type shrinks (down to 60 %) before a word is cut or a line lost."""
    smallest = max(14, int(h * 0.6))
    while h > smallest and not _fits(text, h, width, max_lines):
        h -= 2
    shown, lines = _fit(text, h, width, max_lines)
    field = (f"^FO{x},{y}^A0N,{h},{h}^FB{width},{max_lines},0,L,0^FH_^FD{escape(shown)}^FS")
    if inverse:  # a black bar, and the text over it reversed (^FR)
        field = f"^FO{x},{y}^GB{width},{lines * h + 4},{lines * h + 4}^FS" + field.replace("^A0N", "^FR^A0N", 1)
    return field, y + lines * h + 6


def _qr(x: int, y: int, url: str, side: int) -> str:
    modules = segno.make_qr(url, error="m").symbol_size(border=0)[0]
    magnification = max(1, min(10, side // modules))
    return f"^FO{x},{y}^BQN,2,{magnification}^FH_^FDMA,{escape(url)}^FS"


def _one(d: LabelData, f: _Frame, language: str) -> str:
    groups = blocks_of(d, language)
    out = ["^XA", "^CI28", f"^PW{f.width}", f"^LL{f.height}", "^LH0,0"]
    m = f.margin
    if f.landscape:
        out.append(_qr(m, m, d.url, f.qr_dots))
        x, width = m + f.qr_dots + 8, f.width - f.qr_dots - 2 * m - 8
        field, y = _text(x, m, groups["title"][0].text, f.title_h, width, 2)
        out.append(field)
        cpu, ram, storage, battery = groups["specs"][:4]  # no room for the serial: the QR code leads to it
        for b, lines in ((cpu, 2), (ram, 1), (storage, 2), (battery, 1)):
            field, y = _text(x, y, b.text, f.text_h, width, lines)
            out.append(field)
        y = max(y, m + f.qr_dots + 4)
        verdict, date = groups["verdict"]
        field, y = _text(m, y, verdict.text, f.text_h + 4, f.width - 2 * m, 1, inverse=d.erasure != Erasure.ERASED)
        out.append(field)
        field, y = _text(m, y, date.text, f.text_h, f.width - 2 * m, 1)
        out.append(field)
    else:
        field, y = _text(m, m, groups["title"][0].text, f.title_h, f.width - 2 * m, 2)
        out.append(field)
        top = y + 10
        out.append(_qr(m, top, d.url, f.qr_dots))
        x, width = m + f.qr_dots + 24, f.width - f.qr_dots - 2 * m - 24
        verdict, date = groups["verdict"]
        # The verdict in the specifications' type: at the title's, "NIST Purge" would not fit beside the QR code.
        field, y2 = _text(x, top + 16, verdict.text, f.text_h, width, 4, inverse=d.erasure != Erasure.ERASED)
        out.append(field)
        field, _ = _text(x, y2 + 8, date.text, f.text_h, width, 2)
        out.append(field)
        y = top + f.qr_dots + 24
        for b in groups["specs"]:
            field, y = _text(m, y, b.text, f.text_h, f.width - 2 * m, b.max_lines)
            out.append(field)
    out.append("^XZ")
    return "\n".join(out) + "\n"


def label_zpl(labels: Iterable[LabelData], size: LabelSize, language: str = "fr") -> str:
    words.check_language(language)
    frame = _FRAMES.get(size.code)
    if frame is None:
        raise Malformed(f"ZPL is offered for {', '.join(_FRAMES)} labels; print {size.code} as PDF")
    return "".join(_one(d, frame, language) for d in labels)
