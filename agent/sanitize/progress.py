"""Progress events of a wipe: what the TUI, the collector's live view and stderr show.

The engine calls a ``progress`` callable with a ``Progress`` record; ``Meter`` turns byte
counts into events at a bounded rate (a 16-disk shelf must not flood the collector), and
``StderrPrinter`` prints them as plain lines, at most one per device per second.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, TextIO

from agent import i18n
from agent.i18n import _


@dataclass
class Progress:
    device: str
    phase: str  # "write" | "verify" | "done"
    pass_index: int  # 0-based; for "verify", the pass being verified
    pass_count: int
    bytes_done: int  # in the current phase
    bytes_total: int  # of the current phase
    throughput_bps: float
    eta_s: float | None  # for the whole remaining job, all passes and verification
    pattern: str | None = None


ProgressCallback = Callable[[Progress], None]


class Meter:
    """Tracks one phase of one device and reports at most every ``interval`` seconds."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        device: str,
        phase: str,
        pass_index: int,
        pass_count: int,
        total: int,
        *,
        pattern: str | None = None,
        remaining_after: int = 0,
        interval: float = 0.5,
    ) -> None:
        self.callback = callback
        self.device, self.phase, self.pattern = device, phase, pattern
        self.pass_index, self.pass_count = pass_index, pass_count
        self.total = total
        # Bytes of the phases still to come after this one, for an ETA of the whole job.
        self.remaining_after = remaining_after
        self.interval = interval
        self.done = 0
        self.start = time.monotonic()
        self._last = 0.0

    def advance(self, nbytes: int) -> None:
        self.done += nbytes
        now = time.monotonic()
        if self.callback is not None and now - self._last >= self.interval:
            self._last = now
            self.callback(self.snapshot(now))

    def snapshot(self, now: float | None = None) -> Progress:
        elapsed = max((now or time.monotonic()) - self.start, 1e-9)
        rate = self.done / elapsed
        left = self.total - self.done + self.remaining_after
        eta = left / rate if rate > 0 else None
        return Progress(
            self.device, self.phase, self.pass_index, self.pass_count,
            self.done, self.total, rate, eta, self.pattern,
        )

    def finish(self) -> None:
        if self.callback is not None:
            self.callback(self.snapshot())


class StderrPrinter:
    """Progress on stderr. Not a terminal (a log, a pipe): plain lines, at most one per
    device per ``interval`` seconds. A terminal: one status line redrawn in place."""

    def __init__(self, stream: TextIO | None = None, interval: float = 1.0, *, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.tty = self.stream.isatty() if tty is None else tty
        self._last: dict[str, float] = {}
        self._printed: dict[str, tuple] = {}
        self._latest: dict[str, Progress] = {}
        self._drawn = 0.0
        self._lock = threading.Lock()

    def __call__(self, p: Progress) -> None:
        if self.tty:
            self._redraw(p)
            return
        now = time.monotonic()
        finished = p.bytes_done >= p.bytes_total
        key = (p.phase, p.pass_index, p.bytes_done)
        with self._lock:
            if not finished and now - self._last.get(p.device, float("-inf")) < self.interval:
                return
            if finished and self._printed.get(p.device) == key:
                return  # the last advance and the phase's end report the same 100 %
            self._last[p.device] = now
            self._printed[p.device] = key
            pct = 100.0 * p.bytes_done / p.bytes_total if p.bytes_total else 100.0
            eta = f"{p.eta_s:.0f}s" if p.eta_s is not None else "?"
            label = f" {p.pattern}" if p.pattern else ""
            lang = i18n.current()
            print(
                _("{device}: {phase} pass {index}/{count}{label} {percent}% {done}/{total} {speed}/s eta {eta}").format(
                    device=p.device, phase=lang.phase(p.phase), index=p.pass_index + 1, count=p.pass_count,
                    label=label, percent=lang.decimal(pct).rjust(5), done=lang.size(p.bytes_done, binary=True),
                    total=lang.size(p.bytes_total, binary=True), speed=lang.size(p.throughput_bps, binary=True),
                    eta=eta),
                file=self.stream,
                flush=True,
            )


    def _redraw(self, p: Progress) -> None:
        now = time.monotonic()
        with self._lock:
            self._latest[p.device] = p
            if now - self._drawn < 0.25:
                return
            self._drawn = now
            parts = []
            for d in self._latest.values():
                pct = 100.0 * d.bytes_done / d.bytes_total if d.bytes_total else 100.0
                parts.append(f"{d.device.rsplit('/', 1)[-1]} {d.phase[0]}{d.pass_index + 1}/{d.pass_count} {pct:3.0f}% {human_bytes(d.throughput_bps)}/s")
            line = " | ".join(parts)
            self.stream.write("\r\x1b[K" + line)
            self.stream.flush()

    def close(self) -> None:
        """End the in-place status line, so what follows starts on a line of its own."""
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
