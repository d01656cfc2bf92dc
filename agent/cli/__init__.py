"""``ardoise`` command line. Each sub-command lives in its own module of this package and
exposes ``register(subparsers)``, which adds its parser and sets ``func(args) -> int``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from agent import __version__, i18n
from agent.cli.output import PrintableFormatter, say
from agent.errors import ArdoiseError
from agent.i18n import _

# Order is the order of --help; each name is a module of this package.
COMMANDS = ("disks", "audit", "plan", "wipe", "run", "verify", "upload", "key")

log = logging.getLogger("ardoise")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ardoise",
        description=_("Audit a computer, sanitize its disks per NIST SP 800-88, and sign erasure certificates."),
    )
    parser.add_argument("--version", action="version", version=f"ardoise {__version__}",
                        help=_("show program's version number and exit"))
    parser.add_argument("-v", "--verbose", action="count", default=0, help=_("more log output on stderr"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"agent.cli.{name}")
        module.register(sub)
    return parser



def main(argv: list[str] | None = None) -> int:
    # The language of every message, help included: the boot menu's kernel word, else the
    # locale (LANG=fr_FR.UTF-8). A config's ``language`` key, once read, overrides it.
    i18n.use_language(i18n.from_environment())
    i18n.translate_argparse()
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    try:
        return int(args.func(args) or 0)
    except ArdoiseError as exc:
        say(f"ardoise: {exc.localized()}")  # may quote a serial or a config value: say() defuses controls
        return exc.exit_code
    except KeyboardInterrupt:
        print("ardoise: " + _("interrupted"), file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout closed early (``| head``): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("ARDOISE_DEBUG"):
            raise
        log.debug("internal error", exc_info=True)
        say("ardoise: " + _("internal error: {error} (set ARDOISE_DEBUG=1 for details)").format(
            error=f"{type(exc).__name__}: {exc}"))
        return 70
