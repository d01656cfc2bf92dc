"""Progress lines on stderr: bounded rate per device, plain text, the end always shown."""

from __future__ import annotations

import io

from agent.sanitize.progress import Progress, StderrPrinter


def event(device: str, done: int, total: int = 100) -> Progress:
    return Progress(device, "write", 0, 2, done, total, 1e9, 3.0, "zero")


def test_at_most_one_line_per_device_per_interval_but_the_end_is_always_printed():
    out = io.StringIO()
    printer = StderrPrinter(out, interval=3600, tty=False)
    for done in range(0, 100, 10):
        printer(event("/dev/sda", done))
        printer(event("/dev/sdb", done))
    printer(event("/dev/sda", 100))
    printer(event("/dev/sda", 100))  # the phase's end reported twice: printed once
    lines = out.getvalue().splitlines()
    assert [l.split(":")[0] for l in lines] == ["/dev/sda", "/dev/sdb", "/dev/sda"]
    assert "100.0%" in lines[-1] and "pass 1/2 zero" in lines[-1] and "eta 3s" in lines[-1]


def test_on_a_terminal_one_status_line_is_redrawn_for_all_devices():
    out = io.StringIO()
    printer = StderrPrinter(out, tty=True)
    printer(event("/dev/sda", 50))
    printer.close()
    text = out.getvalue()
    assert text.startswith("\r") and "sda w1/2  50%" in text and text.endswith("\n")
    assert text.count("\n") == 1
