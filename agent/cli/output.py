"""How commands print: JSON on stdout for machines, human text to stderr or stdout.

Every human line goes through ``printable``: serials, models, DMI strings, key ids and
certificate fields come from hardware, files or the network, and a terminal obeys the
escape sequences in them (clear the screen, rewrite a line to read "valid", set the window
title...). JSON output needs nothing: ``json.dump`` escapes control characters itself.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

from agent.printable import printable  # noqa: F401  (also imported from here by the CLI)
from agent.records import to_dict



def emit_json(obj: Any) -> None:
    json.dump(to_dict(obj), sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def say(message: str) -> None:
    """A human message: always stderr, so stdout stays machine-readable."""
    print(printable(message), file=sys.stderr, flush=True)


def show(line: str = "", file: TextIO | None = None) -> None:
    """One human line on stdout (or ``file``); a line break inside it is shown escaped."""
    print(printable(line), file=file or sys.stdout, flush=True)


class PrintableFormatter(logging.Formatter):
    """Log lines on the terminal escape control characters too (a logged serial is as
    hostile as a printed one); a traceback keeps its line breaks."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.msg, record.args
        record.msg, record.args = printable(record.getMessage()), None
        try:
            return super().format(record)
        finally:
            record.msg, record.args = saved
