"""`ardoise wipe`: not built yet."""

from __future__ import annotations

from agent.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser("wipe", help="(not built yet)")
    p.set_defaults(func=run)


def run(args) -> int:
    raise UsageError("'ardoise wipe' is not available in this build yet")
