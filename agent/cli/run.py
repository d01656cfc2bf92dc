"""`ardoise run [--config FILE] [--watch]`: unattended audit, sanitize, certify, deliver."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from agent import i18n, tui
from agent.config import load_config
from agent.i18n import _


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help=_("unattended: audit, sanitize every target disk, certify, spool and deliver"),
        description=_(
            "Unattended run: discover the target disks, audit the machine once, then sanitize, "
            "verify and certify every target disk in parallel. Certificates are written to the "
            "spool on the state directory first, then sent to the collector if one is configured. "
            "On a terminal a full-screen view is shown; otherwise plain lines go to stderr. "
            "Exit 0 only if every target disk was certified successful."
        ),
    )
    p.add_argument("--config", metavar="FILE", help=_("config file (default: ardoise.yaml on the ARDOISE partition)"))
    p.add_argument(
        "--watch",
        action="store_true",
        help=_("shelf mode: keep running and sanitize drives as they are inserted (stop with Ctrl-C or SIGTERM)"),
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from agent.run import run_unattended

    config = load_config(args.config)
    i18n.use_config(config)
    view = tui.RunView()
    tty = sys.stdout.isatty()
    display = tui.make_display(view, tty=tty)
    if tty and not sys.stderr.isatty():
        # The live image: the TUI owns tty1, stderr goes to the journal and the serial
        # console, which get the same story as plain lines.
        tui.LogDisplay(view)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    quiet = []
    if tty and sys.stderr.isatty():
        # Log lines on the same terminal would tear the full-screen view; the run log is
        # kept in the spool.
        for h in logging.getLogger().handlers:
            quiet.append((h, h.level))
            h.setLevel(logging.CRITICAL)
    display.start()
    try:
        summary = run_unattended(
            config,
            watch=args.watch,
            view=view,
            stop=stop,
            wait_for_key=(lambda: _wait_for_enter(stop)) if tty else None,
        )
    finally:
        display.stop()
        for h, level in quiet:
            h.setLevel(level)
        for s, handler in previous.items():
            signal.signal(s, handler)
    return summary.exit_code


def _wait_for_enter(stop: threading.Event) -> None:
    """Keep the final screen until Enter (or a signal): the technician reads it."""
    t = threading.Thread(target=sys.stdin.readline, daemon=True)
    t.start()
    while t.is_alive() and not stop.wait(0.5):
        pass
