"""`ardoise disks [--json] [DEV...]`: every whole disk, whether it may be written, and why."""

from __future__ import annotations

import sys

from agent import discover
from agent.cli.output import emit_json
from agent.records import Disk


def register(sub) -> None:
    p = sub.add_parser(
        "disks",
        help="list whole disks, which are targets and why",
        description="List whole disks with transport, media, identity, and the target decision with its reasons.",
    )
    p.add_argument("devices", nargs="*", metavar="DEV", help="only these devices (named explicitly: a loop device may be a target)")
    p.add_argument("--json", action="store_true", help="JSON list on stdout")
    p.add_argument("--config", metavar="FILE", help="config file (for exclude_serials); default: the ARDOISE partition's")
    p.add_argument("--allow-file", action="store_true", help="accept regular files as DEV (demos, tests)")
    p.set_defaults(func=run)


def exclude_serials_from_config(path: str | None) -> list[str]:
    from agent.config import load_config

    return list(load_config(path).exclude_serials)


def run(args) -> int:
    exclude = exclude_serials_from_config(args.config)
    if args.devices:
        disks = [discover.disk_for_path(d, allow_file=args.allow_file, exclude_serials=exclude) for d in args.devices]
    else:
        disks = discover.list_disks(exclude_serials=exclude)
    if args.json:
        emit_json(disks)
    else:
        print_table(disks)
    return 0


def human_size(n: int) -> str:
    """Decimal units, as drive labels print them (a "1 TB" drive is 1000204886016 bytes)."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if size < 1000 or unit == "PB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def print_table(disks: list[Disk]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from agent.printable import printable

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("DEVICE", "TRANSPORT", "MEDIA", "SIZE", "MODEL", "SERIAL", "TARGET", "WHY"):
        table.add_column(col, overflow="fold")
    for d in disks:
        # Text, not markup: a model or serial reading "[/]" would raise, "[red]..." would paint;
        # Text also drops terminal control characters.
        table.add_row(
            Text(d.path),
            Text(d.transport.value),
            Text(d.media.value),
            Text(human_size(d.size_bytes)),
            Text(printable(d.model or "-")),
            Text(printable(d.serial or "-")),
            Text("yes", style="green") if d.target else Text("no", style="red"),
            Text(printable("; ".join(d.reasons))),
        )
    # A pipe has no width: do not fold reasons into a 80-column column of single words.
    width = None if sys.stdout.isatty() else 200
    Console(file=sys.stdout, width=width).print(table)
