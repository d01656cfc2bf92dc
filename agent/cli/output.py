"""How commands print: JSON on stdout for machines, human text to stderr or stdout."""

from __future__ import annotations

import json
import sys
from typing import Any

from agent.printable import printable
from agent.records import to_dict


def emit_json(obj: Any) -> None:
    json.dump(to_dict(obj), sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def say(message: str) -> None:
    """A human message: always stderr, so stdout stays machine-readable. Messages quote
    serials, key ids and names from files and the network: no terminal control gets through."""
    print(printable(message, keep_newlines=True), file=sys.stderr, flush=True)
