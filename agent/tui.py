"""What the technician sees: a full-screen rich TUI on tty1, or plain log lines on stderr.

The pipeline only updates a ``RunView`` (a thread-safe model of the screen). Two displays
read it: ``LiveDisplay`` redraws the whole screen a few times a second when stdout is a
terminal, ``LogDisplay`` prints one line per state change (and progress at a slow pace) to
stderr for the systemd journal and for tests. So the wipe threads never block on drawing.
"""

from __future__ import annotations

import copy
import io
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

import segno
from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

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
    verdict: str | None = None  # reuse / recycle ...
    report_id: str | None = None


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
    collector: str = "none (certificates stay on the stick)"
    spooled: int = 0
    delivered: int = 0
    message: str = "starting"
    finished: bool = False
    finish_note: str | None = None
    # The machine's own state, beside the disks': "storage_unreachable" (FAILED) or
    # "no_disk_found", with the reason in words; None when its storage is fine.
    machine_state: str | None = None
    machine_reason: str | None = None

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
            )
        return snap

    # ---------------------------------------------------------------- mutators

    def set_machine(self, machine: MachineSummary) -> None:
        with self._lock:
            self.machine = machine
        self._notify("machine")

    def set_machine_state(self, state: str, reason: str | None) -> None:
        with self._lock:
            self.machine_state, self.machine_reason = state, reason
        self._notify("machine_state")

    def add_disk(self, row: DiskRow) -> None:
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
                setattr(row, k, v)
            changed = row.state != before or "detail" in fields
        self._notify("state" if changed else "progress", device=device)

    def set_delivery(self, *, collector: str | None = None, spooled: int | None = None, delivered: int | None = None) -> None:
        with self._lock:
            if collector is not None:
                self.collector = collector
            if spooled is not None:
                self.spooled = spooled
            if delivered is not None:
                self.delivered = delivered
        self._notify("delivery")

    def say(self, message: str) -> None:
        with self._lock:
            self.message = message
        self._notify("message")

    def finish(self, note: str | None = None) -> None:
        with self._lock:
            self.finished = True
            self.finish_note = note
        self._notify("finish")


# --------------------------------------------------------------------------- rendering


def human_bytes(n: float) -> str:
    """Three significant digits at most (500 GB, 16.0 GB, 8.00 MB): narrow columns."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            if unit == "B" or abs(n) >= 100:
                return f"{n:.0f} {unit}"
            return f"{n:.1f} {unit}" if abs(n) >= 10 else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.0f} TB"


def human_duration(s: float | None) -> str:
    if s is None or s < 0:
        return "-"
    s = int(s)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{sec:02d}s"


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
    "O": ["█▀█", "█ █", "▀▀▀"],
    "K": ["█ █", "██ ", "▀ ▀"],
    " ": ["  ", "  ", "  "],
}


def big_text(word: str) -> str:
    lines = ["", "", ""]
    for ch in word.upper():
        glyph = _FONT.get(ch, _FONT[" "])
        for i in range(3):
            lines[i] += glyph[i] + " "
    return "\n".join(line.rstrip() for line in lines)


def qr_text(data: str) -> str:
    """A QR code drawn with half blocks, two modules per character cell vertically."""
    out = io.StringIO()
    segno.make(data, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue().rstrip("\n")


def _header(v: RunView) -> RenderableType:
    m = v.machine
    name = " ".join(x for x in (m.vendor, m.model) if x) or "unknown machine"
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Machine", f"{name}   serial {m.serial or '-'}")
    grid.add_row("CPU / RAM", f"{m.cpu or '-'}   {m.ram or '-'}")
    grid.add_row("Battery", m.battery or "none")
    verdict_style = {"reuse": "bold green", "recycle": "bold red"}.get((m.verdict or "").split()[0] if m.verdict else "", "bold yellow")
    grid.add_row("Verdict", Text(m.verdict or "auditing...", style=verdict_style))
    # At the end the bottom border carries what happens next ("Powering off in 30 s").
    subtitle = Text(v.finish_note, style="bold") if v.finished and v.finish_note else Text(v.message)
    return Panel(grid, title="Ardoise", subtitle=subtitle, border_style="blue")


def _disk_table(v: RunView) -> Table:
    # Six columns of two lines each, so the table still reads on an 80-column tty1.
    t = Table(expand=True, header_style="bold", show_lines=True)
    t.add_column("Disk", no_wrap=True, overflow="ellipsis", ratio=2)
    t.add_column("Size", no_wrap=True, width=7)
    t.add_column("Method", overflow="ellipsis", no_wrap=True, ratio=2)
    t.add_column("Progress", no_wrap=True, width=10)
    t.add_column("Speed", no_wrap=True, justify="right", width=10)
    t.add_column("State", overflow="fold", ratio=3)
    for row in v.rows.values():
        smart_style = {"good": "green", "failing": "bold red", "worn": "yellow"}.get(row.smart or "", "")
        moving = row.state in (WIPING, VERIFYING)
        size_smart = Text(human_bytes(row.size_bytes) if row.size_bytes else "-")
        size_smart.append("\n" + (row.smart or "-"), style=smart_style)
        # "overwrite:" is implied by a pass count; the column is narrow on tty1.
        method = (row.method or "-").removeprefix("overwrite:") + (f"\npass {row.pass_index}/{row.pass_count}" if row.pass_count else "\n")
        progress: RenderableType
        if moving:
            progress = Group(ProgressBar(total=1.0, completed=row.fraction, width=10), Text(f"{row.fraction:.0%}"))
        else:
            progress = Text("100%" if row.state == PASSED else "-")
        speed = (
            f"{human_bytes(row.throughput_bps)}/s\n{human_duration(row.eta_s)}" if moving and row.throughput_bps else "-"
        )
        state = Text(row.state.upper() if row.state in FINAL_STATES else row.state, style=_STATE_STYLE.get(row.state, ""))
        if row.detail:
            state.append(f" {row.detail}", style="red" if row.state in (FAILED, INTERRUPTED) else "dim")
        t.add_row(f"{row.device}\n{row.serial or row.model or '-'}", size_smart, method, progress, speed, state)
    if not v.rows:
        t.add_row("no disk found yet", "", "", "", "", "")
    return t


def _footer(v: RunView) -> RenderableType:
    # One line whatever the width: a long collector status is cut, the counts never are.
    grid = Table.grid(expand=True)
    grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    grid.add_column(no_wrap=True, justify="right")
    grid.add_row(
        Text.assemble(("Collector: ", "bold"), v.collector),
        Text.assemble(("  Certificates: ", "bold"), f"{v.spooled} on the stick, {v.delivered} delivered"),
    )
    return grid


def _final(v: RunView) -> RenderableType:
    panels = []
    for row in v.rows.values():
        if row.state in (PROTECTED, SKIPPED):
            continue
        ok = row.state == PASSED
        word = "PASSED" if ok else ("INTERRUPTED" if row.state == INTERRUPTED else "FAILED")
        # Eight lines per disk, each cut to the panel's width: two disks and the QR code
        # fit on an 80x25 console.
        lines = [Text(big_text(word), style="bold green" if ok else "bold red", justify="center")]
        who = f"{row.device}  {row.serial or row.model or ''}".strip()
        cert = f"  cert {row.certificate_id[:8]}" if row.certificate_id else "  no certificate"
        lines.append(Text(who + cert, style="bold", no_wrap=True, overflow="ellipsis", justify="center"))
        lines.append(Text(row.detail or "", no_wrap=True, overflow="ellipsis", justify="center"))
        lines.append(Text(row.advice or "", style="bold" if ok else "bold reverse red", no_wrap=True,
                          overflow="ellipsis", justify="center"))
        body = Group(*lines)
        panels.append(Panel(body, border_style="green" if ok else "red", width=44))
    if v.machine_state == MACHINE_UNREACHABLE:
        # Hidden storage: the machine is FAILED whatever its visible disks did.
        panels.insert(0, Panel(Group(
            Text(big_text("FAILED"), style="bold red", justify="center"),
            Text("this machine", style="bold", justify="center"),
            Text(v.machine_reason or "", style="bold reverse red", justify="center"),
        ), border_style="red", width=44))
    if panels:
        verdicts: RenderableType = Columns(panels)
    elif v.machine_state == MACHINE_NO_DISK:
        verdicts = Group(Text(big_text("NO DISK FOUND"), style="bold yellow"),
                         Text(v.machine_reason or "", style="yellow"))
    else:
        verdicts = Text("No disk was sanitized.", style="bold yellow")
    if not v.machine.report_id:
        body: RenderableType = verdicts
    else:
        # The QR code beside the verdicts, not below: tty1 is often 80x25 and the code must
        # stay on screen for the technician's phone.
        code = qr_text(v.machine.report_id)
        qr = Text(code, no_wrap=True)
        qr.append(f"\nreport {v.machine.report_id[:8]}", style="dim")
        body = Table.grid(expand=True)
        body.add_column(ratio=1)
        body.add_column(width=max(len(line) for line in code.splitlines()), no_wrap=True)
        body.add_row(verdicts, qr)
    return body


def render(v: RunView) -> RenderableType:
    v = v.snapshot()
    middle = _final(v) if v.finished else _disk_table(v)
    return Group(_header(v), middle, _footer(v))


def advice_for(outcome: str, smart: str | None, purge_attempted: bool) -> str:
    """What the technician does with the drive once the screen says PASSED or FAILED."""
    if outcome == "interrupted":
        return "not sanitized: put it back to restart"
    if outcome == "success":
        return "ready for reuse" if smart in (None, "good", "unknown") else "sanitized, but worn: recycle the drive"
    if smart == "failing" or purge_attempted:
        return "remove and destroy (shred or drill)"
    return "remove: retry elsewhere or destroy"


# --------------------------------------------------------------------------- displays


class LiveDisplay:
    """Full-screen redraw on the terminal (tty1 in the live image)."""

    def __init__(self, view: RunView, console: Console | None = None, refresh_per_second: float = 2):
        self.view = view
        self.console = console or Console()
        self.live = Live(
            get_renderable=lambda: render(view),
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
            self._line(
                f"machine {m.vendor or '?'} {m.model or '?'} serial {m.serial or '?'}; verdict {m.verdict or '?'}"
                + (f"; report {m.report_id}" if m.report_id else "")
            )
        elif event == "state":
            row = view.rows[info["device"]]
            extra = f" ({row.detail})" if row.detail else ""
            method = f" {row.method}" if row.method and row.state not in (PROTECTED, SKIPPED) else ""
            self._line(f"{_who(row)}: {row.state}{method}{extra}")
            if row.state in (PASSED, FAILED, INTERRUPTED) and row.advice:
                self._line(f"{_who(row)}: {row.state.upper()}: {row.advice}")
        elif event == "progress":
            device = info["device"]
            row = view.rows[device]
            if row.state not in (WIPING, VERIFYING) or not row.bytes_total:
                return  # a SMART verdict or method arriving is not progress
            now = time.monotonic()
            if now - self._last.get(device, 0.0) < self.every:
                return
            self._last[device] = now
            self._line(
                f"{device}: {row.phase or row.state} pass {row.pass_index or '-'}/{row.pass_count or '-'} "
                f"{row.fraction:.0%} {human_bytes(row.throughput_bps)}/s eta {human_duration(row.eta_s)}"
            )
        elif event == "delivery":
            self._line(f"collector: {view.collector}; spooled {view.spooled}, delivered {view.delivered}")
        elif event == "message":
            self._line(view.message)
        elif event == "machine_state":
            self._line(f"machine: {view.machine_state}: {view.machine_reason or ''}")
        elif event == "finish":
            if view.machine_state == MACHINE_UNREACHABLE:
                self._line(f"RESULT machine: FAILED; {view.machine_reason or ''}")
            elif view.machine_state == MACHINE_NO_DISK:
                self._line(f"RESULT machine: NO DISK FOUND; {view.machine_reason or ''}")
            for row in view.rows.values():
                if row.state not in (PROTECTED, SKIPPED):
                    self._line(f"RESULT {_who(row)}: {row.state.upper()}; {row.advice or ''}")
            if view.finish_note:
                self._line(view.finish_note)


def _who(row: DiskRow) -> str:
    return f"{row.device} ({row.serial})" if row.serial else row.device


def make_display(view: RunView, *, tty: bool | None = None):
    """The TUI when stdout is a terminal, plain stderr lines otherwise."""
    if tty is None:
        tty = sys.stdout.isatty()
    return LiveDisplay(view) if tty else LogDisplay(view)
