"""Labels as PDF, one page per machine at the label's own size, for Brother QL and
desktop label printers (printed at 100 %, no scaling).

Text never leaves its box: each block is set at its size, wrapped to its line budget, and
the whole box is shrunk step by step until it fits; what still does not fit is cut with
"…" (a 60-character model name on a 50x30 mm label). ``layout`` returns every line with
its place, so the tests check the widths with the same font metrics that draw them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from fpdf import FPDF

from agent.certify import pdf as certificate_pdf
from server_stub.labels import words
from server_stub.labels.data import Erasure, LabelData
from server_stub.labels.sizes import LabelSize

_FONTS = Path("/usr/share/fonts/truetype/dejavu")
PT = 25.4 / 72  # mm per point
LEADING = 1.18
ELLIPSIS = "…"


@dataclass(frozen=True)
class Block:
    text: str
    size: float  # points, before shrinking
    max_lines: int
    bold: bool = False
    inverse: bool = False  # white on black: a machine NOT erased must stand out on the shelf


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Line:
    text: str
    x: float
    y: float  # top of the line
    width: float  # of its box: the text must fit in it
    size: float
    bold: bool
    inverse: bool


def new_pdf(size: LabelSize) -> tuple[FPDF, str]:
    pdf = FPDF(unit="mm", format=(size.width_mm, size.height_mm))
    pdf.set_margins(0, 0, 0)
    pdf.set_auto_page_break(False)
    pdf.c_margin = 0
    family = "helvetica"
    # DejaVu Sans Condensed: every character a model name may carry, narrow enough for 50 mm.
    regular, bold = _FONTS / "DejaVuSansCondensed.ttf", _FONTS / "DejaVuSansCondensed-Bold.ttf"
    if regular.exists() and bold.exists():
        pdf.add_font("dejavu", "", str(regular))
        pdf.add_font("dejavu", "B", str(bold))
        family = "dejavu"
    pdf.set_title("Ardoise labels")
    return pdf, family


def _printable(text: str, family: str) -> str:
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    if family != "dejavu":  # the core fonts know Latin-1 only
        text = text.replace(ELLIPSIS, "...").replace("·", "-")
        text = text.encode("latin-1", "replace").decode("latin-1")
    return text


_CHAR_WIDTHS: dict[tuple[str, str, str], float] = {}


def text_width(pdf: FPDF, text: str) -> float:
    """``pdf.get_string_width`` at the current font, from widths of single characters
    cached per font: fpdf2 adds them up the same way (no kerning) but costs 80 µs a call,
    and a lot's labels make hundreds of thousands of calls while shrinking to fit."""
    key_font = (pdf.font_family, pdf.font_style)
    total = 0.0
    for ch in text:
        w = _CHAR_WIDTHS.get((*key_font, ch))
        if w is None:
            w = _CHAR_WIDTHS[(*key_font, ch)] = pdf.get_string_width(ch) / pdf.font_size_pt
        total += w
    return total * pdf.font_size_pt


def _break_word(pdf: FPDF, word: str, width: float) -> list[str]:
    """A word wider than the box (a serial, a URL) is cut between characters."""
    pieces, current = [], ""
    for ch in word:
        if current and text_width(pdf, current + ch) > width:
            pieces.append(current)
            current = ch
        else:
            current += ch
    return pieces + [current] if current else pieces


def wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for w in text.split():
        candidate = f"{current} {w}" if current else w
        if text_width(pdf, candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        if text_width(pdf, w) <= width:
            current = w
        else:
            *full, current = _break_word(pdf, w, width)
            lines += full
    if current:
        lines.append(current)
    return lines or [""]


def _cut(pdf: FPDF, line: str, width: float) -> str:
    while line and text_width(pdf, line + ELLIPSIS) > width:
        line = line[:-1]
    return line.rstrip() + ELLIPSIS


# The smallest type a 203 dpi head prints legibly (1.8 mm capitals, 14 dots).
MIN_PT = 5.0


def layout(pdf: FPDF, family: str, box: Box, blocks: Iterable[Block], *, min_scale: float = 0.6) -> list[Line]:
    """The lines of ``blocks`` flowed top to bottom in ``box``, shrunk until they fit (never
    under MIN_PT: what does not fit then is cut, or left out at the bottom)."""
    blocks = [b for b in blocks if b.text]
    scale = 1.0
    while True:
        lines: list[Line] = []
        y = box.y
        cut = False
        for b in blocks:
            size = max(MIN_PT, b.size * scale)
            pdf.set_font(family, "B" if b.bold else "", size)
            text = _printable(b.text, family)
            wrapped = wrap(pdf, text, box.w)
            if len(wrapped) > b.max_lines:
                cut = True
                wrapped = wrapped[:b.max_lines]
                wrapped[-1] = _cut(pdf, wrapped[-1], box.w)
            for t in wrapped:
                lines.append(Line(t, box.x, y, box.w, size, b.bold, b.inverse))
                y += size * PT * LEADING
        # Smaller type before a cut: a whole model name in 6 pt beats half of it in 8 pt.
        if (y <= box.y + box.h and not cut) or scale <= min_scale:
            break
        scale = round(scale - 0.05, 2)
    # At the smallest size, lines that still fall below the box are left out, never drawn over its edge.
    return [ln for ln in lines if ln.y + ln.size * PT * LEADING <= box.y + box.h + 1e-6]


def draw_qr(pdf: FPDF, data: str, x: float, y: float, size: float) -> None:
    # Two modules of quiet zone inside the square: the label's own margin adds the rest.
    certificate_pdf.draw_qr(pdf, data, x, y, size, border=2)


def _draw(pdf: FPDF, family: str, lines: list[Line]) -> None:
    for ln in lines:
        pdf.set_font(family, "B" if ln.bold else "", ln.size)
        height = ln.size * PT * LEADING
        if ln.inverse:
            pdf.set_fill_color(0, 0, 0)
            # A little above the line: the accent of a capital (EFFACÉ) reaches its top.
            pdf.rect(ln.x, ln.y - 0.3, ln.width, height + 0.3, style="F")
            pdf.set_text_color(255, 255, 255)
        pdf.set_xy(ln.x, ln.y)
        pdf.cell(ln.width, height, ln.text)
        pdf.set_text_color(0, 0, 0)


def _spec(key: str, value: str, language: str) -> str:
    colon = "\u00a0: " if language == "fr" else ": "
    return f"{words.word(key, language)}{colon}{value}"


def blocks_of(d: LabelData, language: str) -> dict[str, list[Block]]:
    """The label's content in three groups: the title, the verdict, the specifications."""
    w = lambda k: words.word(k, language)  # noqa: E731
    erased = d.erasure == Erasure.ERASED
    return {
        "title": [Block(d.model or w("unknown"), 11, 2, bold=True)],
        "verdict": [Block(words.erasure_text(d.erasure, d.category, language), 9, 3, bold=True, inverse=not erased),
                    Block(f"{w('date')} {d.date or '—'}", 8, 2)],
        "specs": [Block(_spec("cpu", d.cpu or w("unknown"), language), 8, 2),
                  Block(_spec("ram", words.ram_text(d.ram_bytes, language), language), 8, 1),
                  Block(_spec("storage", words.storage_text(d.drives, language), language), 8, 2),
                  Block(_spec("battery", words.battery_text(d.battery_percents, language), language), 8, 2),
                  Block(_spec("serial", d.serial or w("unknown"), language), 7, 1)],
    }


@dataclass(frozen=True)
class Frame:
    """Where things go on one label size: the QR square and the three text boxes."""

    qr: Box
    title: Box
    verdict: Box
    specs: Box
    scale: float  # of the block sizes, for the label's size
    specs_scale: float  # the verdict and specifications start larger where there is room, and shrink to fit


def frame_of(size: LabelSize) -> Frame:
    W, H = size.width_mm, size.height_mm
    if size.code == "50x30":
        # Landscape: the QR code left, the machine right, the verdict across the bottom.
        m, q = 1.5, 17.0
        return Frame(qr=Box(m, m, q, q), title=Box(m + q + 1, m, W - q - 2 * m - 1, 6.5),
                     specs=Box(m + q + 1, m + 7, W - q - 2 * m - 1, q - 6.5),
                     verdict=Box(m, m + q + 0.8, W - 2 * m, H - q - 2 * m - 0.8), scale=0.62, specs_scale=0.62)
    # Portrait (62 mm tape, 4x6 in): the model on top, the QR code with the verdict beside
    # it, the specifications below in the largest type that fits.
    m = 3.0 if size.code == "62mm" else 6.0
    title_h = 0.12 * H
    q = 0.48 * W
    top = m + title_h + 1
    return Frame(qr=Box(m, top, q, q), title=Box(m, m, W - 2 * m, title_h),
                 verdict=Box(m + q + 2, top + 1, W - q - 2 * m - 2, q - 2),
                 specs=Box(m, top + q + 2, W - 2 * m, H - (top + q + 2) - m),
                 scale=1.1 if size.code == "62mm" else 2.2, specs_scale=1.6 if size.code == "62mm" else 3.0)


def _scaled(blocks: list[Block], scale: float) -> list[Block]:
    return [Block(b.text, b.size * scale, b.max_lines, b.bold, b.inverse) for b in blocks]


def label_lines(pdf: FPDF, family: str, d: LabelData, size: LabelSize, language: str) -> list[Line]:
    f = frame_of(size)
    groups = blocks_of(d, language)
    if size.code == "50x30":  # no room for the serial: the QR code leads to it
        groups["specs"] = groups["specs"][:-1]
    return [*layout(pdf, family, f.title, _scaled(groups["title"], f.scale)),
            *layout(pdf, family, f.verdict, _scaled(groups["verdict"], f.specs_scale), min_scale=0.4),
            *layout(pdf, family, f.specs, _scaled(groups["specs"], f.specs_scale), min_scale=0.4)]


def label_pdf(labels: Iterable[LabelData], size: LabelSize, language: str = "fr") -> bytes:
    words.check_language(language)
    pdf, family = new_pdf(size)
    f = frame_of(size)
    for d in labels:
        pdf.add_page()
        draw_qr(pdf, d.url, f.qr.x, f.qr.y, f.qr.w)
        _draw(pdf, family, label_lines(pdf, family, d, size, language))
    if pdf.page == 0:
        pdf.add_page()  # a PDF needs a page; the routes refuse an empty list before this
    return bytes(pdf.output())
