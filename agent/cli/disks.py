"""`ardoise disks [--json] [DEV...]`: every whole disk, whether it may be written, and why."""

from __future__ import annotations

import sys

from agent import discover, i18n
from agent.cli.output import emit_json, printable
from agent.i18n import _
from agent.records import Disk


def register(sub) -> None:
    p = sub.add_parser(
        "disks",
        help=_("list whole disks, which are targets and why"),
        description=_("List whole disks with transport, media, identity, and the target decision with its reasons."),
    )
    p.add_argument("devices", nargs="*", metavar="DEV", help=_("only these devices (named explicitly: a loop device may be a target)"))
    p.add_argument("--json", action="store_true", help=_("JSON list on stdout"))
    p.add_argument("--config", metavar="FILE", help=_("config file (for exclude_serials); default: the ARDOISE partition's"))
    p.add_argument("--allow-file", action="store_true", help=_("accept regular files as DEV (demos, tests)"))
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
    """Decimal units, as drive labels print them (a "1 TB" drive is 1000204886016 bytes), in
    the reader's notation (1,0 To)."""
    return i18n.current().size(n)


def print_table(disks: list[Disk]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in (_("DEVICE"), _("TRANSPORT"), _("MEDIA"), _("SIZE"), _("MODEL"), _("SERIAL"), _("TARGET"), _("WHY")):
        table.add_column(col, overflow="fold")
    for d in disks:
        # Text, not markup: a model or serial like "[red]" or "[/]" is shown as typed, and
        # its control characters escaped.
        cells = [d.path, d.transport.value, d.media.value, human_size(d.size_bytes), d.model or "-", d.serial or "-"]
        table.add_row(
            *(Text(printable(c)) for c in cells),
            Text(_("yes"), style="green") if d.target else Text(_("no"), style="red"),
            Text(printable("; ".join(i18n.localize(r) for r in d.reasons))),
        )
    # A pipe has no width: do not fold reasons into a 80-column column of single words.
    width = None if sys.stdout.isatty() else 200
    Console(file=sys.stdout, width=width).print(table)
