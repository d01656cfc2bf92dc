"""What the technician sees: a full-screen rich TUI on tty1, or plain log lines on stderr.

The pipeline only updates a ``RunView`` (a thread-safe model of the screen). Two displays
read it: ``LiveDisplay`` redraws the whole screen a few times a second when stdout is a
terminal, ``LogDisplay`` prints one line per state change (and progress at a slow pace) to
stderr for the systemd journal and for tests. So the wipe threads never block on drawing.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import io
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

import segno
from rich import box
from rich.columns import Columns
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from agent import humanize, i18n
from agent import outcome as outcome_table
from agent.i18n import N_, NC_, _, pgettext
from agent.printable import printable

log = logging.getLogger("ardoise.run")

# Row states, in pipeline order; the last four are final.
WAITING, PLANNING, WIPING, VERIFYING, CERTIFYING = "waiting", "planning", "wiping", "verifying", "certifying"
PASSED, FAILED, INTERRUPTED, PROTECTED, SKIPPED = "passed", "failed", "interrupted", "protected", "skipped"
FINAL_STATES = (PASSED, FAILED, INTERRUPTED, PROTECTED, SKIPPED)
# Machine states (codes of agent.records.StorageState).
MACHINE_UNREACHABLE, MACHINE_NO_DISK = "storage_unreachable", "no_disk_found"

_STATE_STYLE = {
    WAITING: "dim",
    PLANNING: "cyan",
    WIPING: "yellow",
    VERIFYING: "magenta",
    CERTIFYING: "blue",
    PASSED: "bold green",
    FAILED: "bold red",
    INTERRUPTED: "bold red",
    PROTECTED: "dim",
    SKIPPED: "dim",
}


@dataclass
class MachineSummary:
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    cpu: str | None = None
    ram: str | None = None
    battery: str | None = None
    verdict: str | None = None  # the machine verdict in words, as shown
    verdict_code: str | None = None  # its code (outcome.MachineCode): reuse / repair / recycle / attention
    report_id: str | None = None
    qr_data: str | None = None  # the report's page at the collector, else its id and digest


@dataclass
class DiskRow:
    device: str
    model: str | None = None
    serial: str | None = None
    size_bytes: int = 0
    smart: str | None = None  # SMART verdict: good / warning / failing / unknown
    method: str | None = None
    phase: str | None = None
    pass_index: int | None = None
    pass_count: int | None = None
    bytes_done: int = 0
    bytes_total: int = 0
    throughput_bps: float = 0.0
    eta_s: float | None = None
    state: str = WAITING
    detail: str | None = None  # why protected / the error / the category reached
    certificate_id: str | None = None
    advice: str | None = None  # what to do with the drive at the end

    @property
    def fraction(self) -> float:
        return min(1.0, self.bytes_done / self.bytes_total) if self.bytes_total else 0.0


@dataclass
class RunView:
    """Thread-safe model of the screen. Every mutator notifies the listeners."""

    machine: MachineSummary = field(default_factory=MachineSummary)
    rows: dict[str, DiskRow] = field(default_factory=dict)
    collector: str = i18n.T_("none (certificates stay on the stick)")
    spooled: int = 0
    delivered: int = 0
    message: str = N_("starting")
    finished: bool = False
    finish_note: str | None = None
    # The machine's own state, beside the disks': "storage_unreachable" (FAILED) or
    # "no_disk_found", with the reason in words; None when its storage is fine.
    machine_state: str | None = None
    machine_reason: str | None = None
    alert_note: str | None = None  # shown in red above everything (NOT DELIVERED)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._listeners: list[Callable[[str, "RunView", dict], None]] = []

    def listen(self, fn: Callable[[str, "RunView", dict], None]) -> None:
        self._listeners.append(fn)

    def _notify(self, event: str, **info: Any) -> None:
        for fn in list(self._listeners):
            try:
                fn(event, self, info)
            except Exception:  # noqa: BLE001 - a display bug must not stop a wipe
                log.debug("display listener failed", exc_info=True)

    def snapshot(self) -> "RunView":
        with self._lock:
            snap = RunView(
                machine=copy.copy(self.machine),
                rows={k: copy.copy(v) for k, v in self.rows.items()},
                collector=self.collector,
                spooled=self.spooled,
                delivered=self.delivered,
                message=self.message,
                finished=self.finished,
                finish_note=self.finish_note,
                machine_state=self.machine_state,
                machine_reason=self.machine_reason,
                alert_note=self.alert_note,
            )
        return snap

    # ---------------------------------------------------------------- mutators

    def set_machine(self, machine: MachineSummary) -> None:
        machine = _clean(machine)
        with self._lock:
            self.machine = machine
        self._notify("machine")

    def set_machine_state(self, state: str, reason: str | None) -> None:
        with self._lock:
            self.machine_state, self.machine_reason = state, reason
        self._notify("machine_state")

    def add_disk(self, row: DiskRow) -> None:
        row = _clean(row)
        with self._lock:
            self.rows[row.device] = row
        self._notify("state", device=row.device)

    def update(self, device: str, **fields: Any) -> None:
        """Change a row; ``state`` changes are announced, progress is not (too chatty)."""
        with self._lock:
            row = self.rows.get(device)
            if row is None:
                row = self.rows[device] = DiskRow(device)
            before = row.state
            for k, v in fields.items():
                setattr(row, k, printable(v) if isinstance(v, str) else v)
            changed = row.state != before or "detail" in fields
        self._notify("state" if changed else "progress", device=device)

    def set_delivery(self, *, collector: str | None = None, spooled: int | None = None, delivered: int | None = None) -> None:
        with self._lock:
            if collector is not None:
                self.collector = printable(collector)
            if spooled is not None:
                self.spooled = spooled
            if delivered is not None:
                self.delivered = delivered
        self._notify("delivery")

    def say(self, message: str) -> None:
        with self._lock:
            self.message = printable(message)
        self._notify("message")

    def alert(self, note: str | None) -> None:
        with self._lock:
            self.alert_note = printable(note) if note else None
        self._notify("alert")

    def finish(self, note: str | None = None) -> None:
        with self._lock:
            self.finished = True
            self.finish_note = printable(note) if note else note
        self._notify("finish")


def _clean(record):
    """A copy of a row or machine summary whose strings are safe on a terminal: what the
    view holds is what both displays (screen and plain lines) print."""
    return dataclasses.replace(record, **{f.name: printable(getattr(record, f.name)) for f in dataclasses.fields(record)
                                          if isinstance(getattr(record, f.name), str)})


# --------------------------------------------------------------------------- rendering
#
# Every string that comes from hardware, the config or the network is drawn as
# ``rich.text.Text``, never parsed as console markup: a serial "[/]" would raise
# MarkupError in the refresh thread (and stop the screen), and "[bold red]FAKE PASSED"
# must show as typed. Text also drops terminal control characters.


def human_bytes(n: float) -> str:
    """Three significant digits at most (500 GB, 16.0 GB, 8.00 MB): narrow columns."""
    return humanize.size(n)


# A 3-line block font for the final verdicts: readable from across the workbench.
_FONT = {
    "P": ["█▀█", "█▀▀", "▀  "],
    "A": ["▄▀▄", "█▀█", "▀ ▀"],
    "S": ["█▀▀", "▀▀█", "▀▀▀"],
    "E": ["█▀▀", "█▀▀", "▀▀▀"],
    "D": ["█▀▄", "█ █", "▀▀ "],
    "F": ["█▀▀", "█▀▀", "▀  "],
    "I": ["█", "█", "▀"],
    "L": ["█  ", "█  ", "▀▀▀"],
    "N": ["█▄ █", "█ ▀█", "▀  ▀"],
    "T": ["▀█▀", " █ ", " ▀ "],
    "R": ["█▀█", "█▀▄", "▀ ▀"],
    "U": ["█ █", "█ █", "▀▀▀"],
    "K": ["█ █", "██ ", "▀ ▀"],
    # French: EFFACÉ, ÉCHEC, INTERROMPU (three rows leave no room for an accent: É is drawn E)
    "C": ["█▀▀", "█  ", "▀▀▀"],
    "H": ["█ █", "█▀█", "▀ ▀"],
    "O": ["█▀█", "█ █", "▀▀▀"],
    "M": ["█▄ ▄█", "█ ▀ █", "▀   ▀"],
    " ": ["  ", "  ", "  "],
}
_UNACCENTED = str.maketrans("ÉÈÊËÀÂÎÏÔÛÙÇ", "EEEEAAIIOUUC")


def big_text(word: str) -> str:
    lines = ["", "", ""]
    for ch in word.upper().translate(_UNACCENTED):
        glyph = _FONT.get(ch, _FONT[" "])
        for i in range(3):
            lines[i] += glyph[i] + " "
    return "\n".join(line.rstrip() for line in lines)


@functools.lru_cache(maxsize=8)  # the final screen is redrawn twice a second with the same code
def qr_text(data: str) -> str:
    """A QR code drawn with half blocks, two modules per character cell vertically."""
    out = io.StringIO()
    segno.make(data, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue().rstrip("\n")


# The final verdict of a drive, in block letters on the screen; the plain log keeps the
# English word (RESULT lines are grepped by scripts and read in the journal).
_VERDICT_WORDS = {PASSED: NC_("verdict", "PASSED"), INTERRUPTED: NC_("verdict", "INTERRUPTED"),
                  FAILED: NC_("verdict", "FAILED")}


def _verdict_word(row: DiskRow) -> str:
    return _VERDICT_WORDS[row.state if row.state in (PASSED, INTERRUPTED) else FAILED]


def _verdict_label(row: DiskRow) -> str:
    return pgettext("verdict", _verdict_word(row))


# A row's state as the screen says it (the code stays in the records and the plain log).
_STATE_WORDS = {WAITING: NC_("disk state", "waiting"), PLANNING: NC_("disk state", "planning"),
                WIPING: NC_("disk state", "wiping"), VERIFYING: NC_("disk state", "verifying"),
                CERTIFYING: NC_("disk state", "certifying"), PASSED: NC_("disk state", "passed"),
                FAILED: NC_("disk state", "failed"), INTERRUPTED: NC_("disk state", "interrupted"),
                PROTECTED: NC_("disk state", "protected"), SKIPPED: NC_("disk state", "skipped")}


def state_label(state: str) -> str:
    return pgettext("disk state", _STATE_WORDS[state]) if state in _STATE_WORDS else state


# SMART verdict words as the screen shows them.
_SMART_WORDS = {"good": NC_("SMART verdict", "good"), "warning": NC_("SMART verdict", "warning"),
                "worn": NC_("SMART verdict", "worn"), "failing": NC_("SMART verdict", "failing"),
                "unknown": NC_("SMART verdict", "unknown")}


def smart_label(word: str | None) -> str:
    return pgettext("SMART verdict", _SMART_WORDS[word]) if word in _SMART_WORDS else (word or "-")


def _verdict_style(row: DiskRow) -> str:
    return "bold green" if row.state == PASSED else "bold red"


def _header(v: RunView) -> RenderableType:
    m = v.machine
    name = " ".join(x for x in (m.vendor, m.model) if x) or _("unknown machine")
    grid = Table.grid(padding=(0, 2))
    # The labels keep their width (French ones are longer); a long verdict is what gets cut.
    labels = (_("Machine"), _("Verdict")) + (() if v.finished else (_("CPU / RAM"), _("Battery")))
    grid.add_column(style="bold", no_wrap=True, min_width=max(Text(x).cell_len for x in labels))
    grid.add_column(no_wrap=True, overflow="ellipsis")
    grid.add_row(Text(_("Machine")), Text(_("{name}   serial {serial}").format(name=name, serial=m.serial or "-")))
    if not v.finished:
        # The final screen needs its rows for the verdicts and the QR code; the report has the rest.
        grid.add_row(Text(_("CPU / RAM")), Text("{cpu}   {ram}".format(cpu=m.cpu or "-", ram=m.ram or "-")))
        grid.add_row(Text(_("Battery")), Text(m.battery or _("none")))
    verdict_style = {"reuse": "bold green", "recycle": "bold red"}.get(m.verdict_code or "", "bold yellow")
    grid.add_row(Text(_("Verdict")), Text(m.verdict or _("auditing..."), style=verdict_style))
    subtitle = None if v.finished else Text(_(v.message))
    return Panel(grid, title="Ardoise", subtitle=subtitle, border_style="blue")


def _footer(v: RunView, width: int) -> RenderableType:
    """The collector's status and the certificate counts: on one line when both fit, else
    on two, so an "unreachable" is never cut off on an 80-column tty1."""
    collector = Text.assemble((_("Collector: "), "bold"), i18n.localize(v.collector), no_wrap=True, overflow="ellipsis")
    counts = Text.assemble((_("Certificates: "), "bold"),
                           _("{spooled} on the stick, {delivered} delivered").format(spooled=v.spooled,
                                                                                      delivered=v.delivered),
                           no_wrap=True, overflow="ellipsis")
    if collector.cell_len + 2 + counts.cell_len > width:
        return Group(collector, counts)
    grid = Table.grid(expand=True)
    grid.add_column(ratio=1, no_wrap=True)
    grid.add_column(no_wrap=True, justify="right")
    grid.add_row(collector, counts)
    return grid


# ------------------------------------------------------------------ the disk table


def _progress_line(row: DiskRow) -> Text:
    return Text("{percent} · {eta}".format(percent=humanize.percent(row.fraction), eta=humanize.eta(row.eta_s)))


def _state_text(row: DiskRow, *, with_detail: bool = True) -> Text:
    word = state_label(row.state)
    state = Text(word.upper() if row.state in FINAL_STATES else word, style=_STATE_STYLE.get(row.state, ""))
    if with_detail and row.detail:
        state.append(" ")
        state.append(row.detail, style="red" if row.state in (FAILED, INTERRUPTED) else "dim")
    return state


def _moving(row: DiskRow) -> bool:
    return row.state in (WIPING, VERIFYING)


def _disk_table(rows: list[DiskRow], *, lines: bool) -> Table:
    """Two lines per disk: device and serial, size and SMART, method and pass, a bar with
    its percentage and ETA, the state and speed."""
    t = Table(expand=True, header_style="bold", show_lines=lines, box=box.SQUARE if lines else box.SIMPLE_HEAD,
              show_edge=lines)
    t.add_column(_("Disk"), no_wrap=True, overflow="ellipsis", ratio=3)
    t.add_column(_("Size"), no_wrap=True, width=7)
    t.add_column(_("Method"), overflow="ellipsis", no_wrap=True, ratio=2)
    t.add_column(_("Progress"), no_wrap=True, overflow="ellipsis", ratio=4)
    t.add_column(_("State"), overflow="ellipsis", no_wrap=True, ratio=3)
    for row in rows:
        smart_style = {"good": "green", "failing": "bold red", "worn": "yellow"}.get(row.smart or "", "")
        size_smart = Text(human_bytes(row.size_bytes) if row.size_bytes else "-")
        size_smart.append("\n")
        size_smart.append(smart_label(row.smart), style=smart_style)
        # "overwrite:" is implied by a pass count; the column is narrow on tty1.
        method = Text(i18n.current().method_short(row.method))
        method.append("\n")
        if row.pass_count:
            method.append(_("pass {index}/{count}").format(index=row.pass_index, count=row.pass_count))
        progress: RenderableType
        if _moving(row):
            progress = Table.grid(expand=True)
            progress.add_column(no_wrap=True, overflow="ellipsis")
            progress.add_row(ProgressBar(total=1.0, completed=row.fraction))
            progress.add_row(_progress_line(row))
        else:
            progress = Text(humanize.percent(1.0) if row.state == PASSED else "-")
        state = _state_text(row, with_detail=False)
        state.append("\n")
        if _moving(row) and row.throughput_bps:
            state.append(humanize.rate(row.throughput_bps))
        elif row.detail:
            state.append(row.detail, style="red" if row.state in (FAILED, INTERRUPTED) else "dim")
        who = Text(row.device)
        who.append("\n")
        who.append(row.serial or row.model or "-", style="dim")
        t.add_row(who, size_smart, method, progress, state)
    if not rows:
        t.add_row(Text(_("no disk found yet")), "", "", "", "")
    return t


def _compact_table(rows: list[DiskRow]) -> Table:
    """One line per disk, for more disks than the screen has rows for."""
    t = Table(expand=True, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    t.add_column(_("Disk"), no_wrap=True, overflow="ellipsis", ratio=3)
    t.add_column(_("Size"), no_wrap=True, width=7)
    t.add_column(_("Progress"), no_wrap=True, overflow="ellipsis", ratio=4)
    t.add_column(_("State"), no_wrap=True, overflow="ellipsis", ratio=3)
    for row in rows:
        who = Text(row.device)
        who.append(" ")
        who.append(row.serial or row.model or "", style="dim")
        progress = _progress_line(row) if _moving(row) else Text(humanize.percent(1.0) if row.state == PASSED else "-")
        state = _state_text(row, with_detail=not _moving(row))
        if _moving(row) and row.throughput_bps:
            state.append(" {rate}".format(rate=humanize.rate(row.throughput_bps)))
        t.add_row(who, Text(human_bytes(row.size_bytes) if row.size_bytes else "-"), progress, state)
    return t


def _page(items: list, per_page: int, page: int) -> tuple[list, int, int]:
    """The slice shown now, its number and the page count: long lists turn over by themselves."""
    per_page = max(1, per_page)
    pages = max(1, -(-len(items) // per_page))
    n = page % pages
    return items[n * per_page:(n + 1) * per_page], n + 1, pages


def _page_note(first: int, shown: int, total: int, page: int, pages: int) -> Text:
    return Text(_("disks {first}–{last} of {total} · page {page}/{pages}").format(
        first=first, last=first + shown - 1, total=total, page=page, pages=pages), style="dim", no_wrap=True,
        overflow="ellipsis")


# ------------------------------------------------------------------ the final screen


def _verdict_panel(row: DiskRow, width: int) -> Panel:
    """Seven lines: the verdict in block letters, the drive and its certificate, the advice."""
    ok = row.state == PASSED
    lines = [Text(big_text(_verdict_label(row)), style=_verdict_style(row), justify="center", no_wrap=True, overflow="crop")]
    who = Text("{device}  {serial}".format(device=row.device, serial=row.serial or row.model or "").strip(),
               style="bold", no_wrap=True, overflow="ellipsis", justify="center")
    who.append("  ")
    who.append(_("cert {id}").format(id=row.certificate_id[:8]) if row.certificate_id else _("no certificate"))
    lines.append(who)
    # What to do is never cut: it wraps inside the panel (the layout checks the height).
    lines.append(Text(row.advice or "", style="bold" if ok else "bold reverse red", overflow="fold",
                      justify="center"))
    if row.detail:
        lines.append(Text(row.detail, no_wrap=True, overflow="ellipsis", justify="center", style="dim"))
    return Panel(Group(*lines), border_style="green" if ok else "red", width=width)


def _badge(row: DiskRow) -> Text:
    # A span, not the Text's base style: what is appended after the badge stays plain.
    badge = Text()
    badge.append(" {word} ".format(word=_verdict_label(row)), style=_verdict_style(row) + " reverse")
    return badge


def _verdict_lines(row: DiskRow) -> Text:
    """Two lines: the verdict, the drive and its certificate; then what to do, in full."""
    line = _badge(row)
    line.append(" ")
    _append_drive(line, row)
    line.append("\n ")
    line.append(row.advice or "", style="bold")
    if row.detail:
        line.append(" — ")
        line.append(row.detail, style="dim")
    line.no_wrap, line.overflow = True, "ellipsis"
    return line


def _append_drive(line: Text, row: DiskRow) -> None:
    """The drive as every verdict line names it: device, serial (else model), certificate."""
    line.append(row.device, style="bold")
    if row.serial or row.model:
        line.append(" ")
        line.append(row.serial or row.model or "")
    if row.certificate_id:
        line.append("  " + _("cert {id}").format(id=row.certificate_id[:8]), style="dim")


def _grouped_lines(rows: list[DiskRow]) -> list[tuple[Text, Text]]:
    """One line per drive under its verdict and advice, said once per group: what to do
    stays whole however narrow the column. Returns (group heading, drive line) pairs."""
    out = []
    for row in rows:
        heading = _badge(row)
        heading.append(" ")
        heading.append(row.advice or "", style="bold")  # wraps rather than lose its end
        line = Text("  ")
        _append_drive(line, row)
        line.no_wrap, line.overflow = True, "ellipsis"
        out.append((heading, line))
    return out


def _grouped(pairs: list[tuple[Text, Text]]) -> list[Text]:
    lines: list[Text] = []
    last = None
    for heading, line in pairs:
        if heading.plain != last:
            lines.append(heading)
            last = heading.plain
        lines.append(line)
    return lines


def _final_rows(v: RunView) -> list[DiskRow]:
    # The drives the technician must act on come first: they are what the screen is for.
    rows = [r for r in v.rows.values() if r.state not in (PROTECTED, SKIPPED)]
    return sorted(rows, key=lambda r: (r.state == PASSED, _verdict_word(r), r.advice or ""))


def _tally(rows: list[DiskRow]) -> Text:
    counts = {}
    for r in rows:
        counts[_verdict_word(r)] = counts.get(_verdict_word(r), 0) + 1
    out = Text()
    for word in ("FAILED", "INTERRUPTED", "PASSED"):
        if counts.get(word):
            if out:
                out.append(" · ")
            out.append(_("{count} {verdict}").format(count=counts[word], verdict=pgettext("verdict", word)),
                       style="bold green" if word == "PASSED" else "bold red")
    return out


# ------------------------------------------------------------------ fitting it all

PAGE_SECONDS = 5


def _height(console: Console, options: ConsoleOptions, renderable: RenderableType, width: int) -> int:
    return len(console.render_lines(renderable, options.update(width=width, height=None), pad=False))


class Screen:
    """The whole screen laid out for the console it is drawn on.

    Rows are chosen to fit: roomy two-line rows when there is space, one line per disk
    when there is not, then pages that turn every few seconds. The header and the footer
    (collector, certificates, what happens next) are always on screen.
    """

    def __init__(self, view: RunView, page: int = 0):
        self.v = view
        self.page = page

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        height = options.height or options.max_height
        header, footer = _header(self.v), _footer(self.v, width)
        room = height - _height(console, options, header, width) - _height(console, options, footer, width)
        middle = self._final(console, options, width, room) if self.v.finished else self._running(console, options, width, room)
        yield header
        yield middle
        yield footer

    def _first_fit(self, console, options, width: int, room: int, candidates) -> RenderableType | None:
        for make in candidates:
            r = make()
            if _height(console, options, r, width) <= room:
                return r
        return None

    def _running(self, console, options, width: int, room: int) -> RenderableType:
        rows = list(self.v.rows.values())
        n = len(rows)
        # Lines each layout needs at least: layouts that cannot fit are not drawn to find out
        # (the screen is redrawn twice a second on old laptops).
        fit = self._first_fit(console, options, width, room, [make for need, make in (
            (3 * n + 3, lambda: _disk_table(rows, lines=True)),
            (2 * n + 2, lambda: _disk_table(rows, lines=False)),
            (n + 2, lambda: _compact_table(rows)),
        ) if need <= room])
        if fit is not None:
            return fit
        chrome = _height(console, options, _compact_table(rows[:1]), width) - 1
        shown, page, pages = _page(rows, room - chrome - 1, self.page)
        first = rows.index(shown[0]) + 1
        return Group(_compact_table(shown), _page_note(first, len(shown), len(rows), page, pages))

    def _final(self, console, options, width: int, room: int) -> RenderableType:
        rows = _final_rows(self.v)
        # What happens next (power-off countdown, "Press Enter") heads the verdicts.
        note = Text(self.v.finish_note, style="bold reverse") if self.v.finish_note else None
        if self.v.alert_note:
            note = Text(self.v.alert_note, style="bold reverse red")

        # Hidden storage: the machine is FAILED whatever its visible disks did, and says why.
        banner = None
        if self.v.machine_state == MACHINE_UNREACHABLE:
            banner = Panel(Group(Text(" " + _("FAILED: this machine") + " ", style="bold reverse red"),
                                 Text(i18n.localize(self.v.machine_reason or ""), style="bold red")),
                           border_style="red")
        head = [x for x in (note, banner) if x is not None]

        def with_note(w: int, r: int, make) -> RenderableType | None:
            used = sum(_height(console, options, x, w) for x in head)
            content = make(w, r - used)
            if content is None:
                return None
            return Group(*head, content) if head else content

        def nothing(w: int, r: int) -> RenderableType:
            if self.v.machine_state == MACHINE_NO_DISK:
                word = _("NO DISK FOUND")
                return Group(Text(big_text(word), style="bold yellow", no_wrap=True, overflow="crop")
                             if all(c in _FONT for c in word.upper().translate(_UNACCENTED)) else
                             Text(word, style="bold reverse yellow"),
                             Text(i18n.localize(self.v.machine_reason or ""), style="yellow"))
            return Text(_("No disk was sanitized."), style="bold yellow")

        def panels(w: int, r: int) -> RenderableType | None:
            # Block letters need their width: INTERRUPTED is 38 columns, a panel 44.
            pw = max(44, max(len(big_text(_verdict_label(x)).splitlines()[0]) for x in rows) + 6)
            if w < pw:
                return None
            return Columns([_verdict_panel(x, pw) for x in rows])

        def two_lines(w: int, r: int) -> RenderableType:
            return Group(_tally(rows), *(_verdict_lines(x) for x in rows))

        def grouped(w: int, r: int) -> RenderableType:
            return Group(_tally(rows), *_grouped(_grouped_lines(rows)))

        def paged(w: int, r: int) -> RenderableType:
            # Each page repeats its group's heading: a drive line never shows without its advice.
            pairs = _grouped_lines(rows)
            pages: list[list[tuple[Text, Text]]] = [[]]
            for pair in pairs:
                if pages[-1] and _height(console, options, Group(*_grouped(pages[-1] + [pair])), w) > r - 2:
                    pages.append([])
                pages[-1].append(pair)
            n = self.page % len(pages)
            first = sum(len(p) for p in pages[:n]) + 1
            return Group(_tally(rows), *_grouped(pages[n]),
                         _page_note(first, len(pages[n]), len(rows), n + 1, len(pages)))

        candidates = (nothing,) if not rows else (panels, two_lines, grouped, paged)
        for make in candidates:
            body = self._with_qr(console, options, width, room, lambda w, r, make=make: with_note(w, r, make))
            if body is not None and (make is paged or _height(console, options, body, width) <= room):
                return body
        return body

    def _with_qr(self, console, options, width: int, room: int, verdicts_for) -> RenderableType | None:
        """The QR code beside the verdicts, not below: tty1 is often 80x25 and the code must
        stay on screen for the technician's phone."""
        report_id = self.v.machine.report_id
        code = qr_text(self.v.machine.qr_data or report_id) if report_id else ""
        qr_w = max((len(line) for line in code.splitlines()), default=0)
        if not report_id or qr_w + 40 > width or len(code.splitlines()) + 1 > room:
            return verdicts_for(width, room)
        verdicts = verdicts_for(width - qr_w - 1, room)
        if verdicts is None:
            return None
        qr = Text(code, no_wrap=True)
        qr.append("\n")
        qr.append(_("report {id}").format(id=report_id[:8]), style="dim")
        body = Table.grid(expand=True, padding=(0, 1, 0, 0))
        body.add_column(ratio=1)
        body.add_column(width=qr_w, no_wrap=True)
        body.add_row(verdicts, qr)
        return body


def render(v: RunView, *, page: int | None = None) -> RenderableType:
    """The screen for ``v`` now; ``page`` (default: from the clock) picks the page shown
    when the disks do not all fit."""
    if page is None:
        page = int(time.monotonic() // PAGE_SECONDS)
    return Screen(v.snapshot(), page)


def advice_for(outcome: str, smart: str | None, media_errors: bool = False) -> str:
    """What the technician does with the drive: the outcome table's line (agent/outcome.py)."""
    return outcome_table.advice(outcome_table.decide(outcome, None, smart, media_errors))


# --------------------------------------------------------------------------- displays


def _safe_render(view: RunView) -> RenderableType:
    """The refresh thread must outlive any drawing bug: an exception there stops the screen
    for good and ends ``ardoise run`` with an internal error while disks are being wiped."""
    try:
        return render(view)
    except Exception as exc:  # noqa: BLE001
        log.debug("screen not drawn", exc_info=True)
        return Text(_("screen error: {error}; the run goes on (see the log)").format(error=exc))


class LiveDisplay:
    """Full-screen redraw on the terminal (tty1 in the live image)."""

    def __init__(self, view: RunView, console: Console | None = None, refresh_per_second: float = 2):
        self.view = view
        self.console = console or Console()
        self.live = Live(
            get_renderable=lambda: _safe_render(view),
            console=self.console,
            screen=True,
            auto_refresh=True,
            refresh_per_second=refresh_per_second,
            redirect_stderr=False,
        )

    def start(self) -> "LiveDisplay":
        self.live.start()
        return self

    def stop(self) -> None:
        self.live.stop()
        # Leave the final state on the normal screen too, for after the alternate one ends.
        self.console.print(render(self.view))


class LogDisplay:
    """Plain lines on stderr: state changes at once, progress at most every ``every`` s."""

    def __init__(self, view: RunView, stream: TextIO | None = None, every: float = 30.0):
        self.stream = stream or sys.stderr
        self.every = every
        self._last: dict[str, float] = {}
        self._results_said = False
        self._delivery_said: tuple | None = None
        view.listen(self._on_event)

    def start(self) -> "LogDisplay":
        return self

    def stop(self) -> None:
        pass

    def _line(self, text: str) -> None:
        # One write per line: disks report from their own threads, and print()'s separate
        # write of the newline let two lines run together on the console.
        self.stream.write(f"ardoise: {text}\n")
        self.stream.flush()

    def _on_event(self, event: str, view: RunView, info: dict) -> None:
        if event == "machine":
            m = view.machine
            line = _("machine {vendor} {model} serial {serial}; verdict {verdict}").format(
                vendor=m.vendor or "?", model=m.model or "?", serial=m.serial or "?", verdict=m.verdict or "?")
            if m.report_id:
                line += "; " + _("report {id}").format(id=m.report_id)
            self._line(line)
        elif event == "state":
            row = view.rows[info["device"]]
            extra = f" ({row.detail})" if row.detail else ""
            method = f" {i18n.current().method(row.method)}" if row.method and row.state not in (PROTECTED, SKIPPED) else ""
            self._line(f"{_who(row)}: {state_label(row.state)}{method}{extra}")
            if row.state in (PASSED, FAILED, INTERRUPTED) and row.advice:
                self._line(f"{_who(row)}: {state_label(row.state).upper()}: {row.advice}")
        elif event == "progress":
            device = info["device"]
            row = view.rows[device]
            if row.state not in (WIPING, VERIFYING) or not row.bytes_total:
                return  # a SMART verdict or method arriving is not progress
            now = time.monotonic()
            if now - self._last.get(device, 0.0) < self.every:
                return
            self._last[device] = now
            self._line(_("{device}: {phase} pass {index}/{count} {percent} {rate} {eta}").format(
                device=device, phase=i18n.current().phase(row.phase) if row.phase else state_label(row.state),
                index=row.pass_index or "-", count=row.pass_count or "-", percent=humanize.percent(row.fraction),
                rate=humanize.rate(row.throughput_bps), eta=humanize.eta(row.eta_s)))
        elif event == "delivery":
            # Every sweep announces; the journal gets a line only when the status or the
            # delivered count changed (each certificate on the stick has its own RESULT line).
            said = (view.collector, view.delivered)
            if said != self._delivery_said:
                self._delivery_said = said
                self._line(_("collector: {status}; spooled {spooled}, delivered {delivered}").format(
                    status=i18n.localize(view.collector), spooled=view.spooled, delivered=view.delivered))
        elif event == "message":
            self._line(_(view.message))
        elif event == "machine_state":
            state = {MACHINE_UNREACHABLE: _("storage not reachable"), MACHINE_NO_DISK: _("no disk found")}
            self._line(_("machine: {state}: {reason}").format(state=state.get(view.machine_state, view.machine_state),
                                                              reason=i18n.localize(view.machine_reason or "")))
        elif event == "alert":
            if view.alert_note:
                self._line(view.alert_note)
        elif event == "finish":
            # A netbooted machine holding undelivered files shows its final screen twice.
            results, self._results_said = not self._results_said, True
            verdict = {MACHINE_UNREACHABLE: pgettext("verdict", "FAILED"), MACHINE_NO_DISK: _("NO DISK FOUND")}
            if results and view.machine_state in verdict:
                self._line(_("RESULT {who}: {verdict}; {advice}").format(
                    who=_("machine"), verdict=verdict[view.machine_state],
                    advice=i18n.localize(view.machine_reason or "")))
            for row in view.rows.values() if results else ():
                if row.state not in (PROTECTED, SKIPPED):
                    self._line(_("RESULT {who}: {verdict}; {advice}").format(
                        who=_who(row), verdict=state_label(row.state).upper(), advice=row.advice or ""))
            if view.finish_note:
                self._line(view.finish_note)


def _who(row: DiskRow) -> str:
    return f"{row.device} ({row.serial})" if row.serial else row.device


def make_display(view: RunView, *, tty: bool | None = None):
    """The TUI when stdout is a terminal, plain stderr lines otherwise."""
    if tty is None:
        tty = sys.stdout.isatty()
    return LiveDisplay(view) if tty else LogDisplay(view)
