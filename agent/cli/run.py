"""`ardoise run`: not built yet."""

from __future__ import annotations

from agent.errors import UsageError


def register(sub) -> None:
    p = sub.add_parser("run", help="(not built yet)")
    p.set_defaults(func=run)


def run(args) -> int:
    raise UsageError("'ardoise run' is not available in this build yet")
