"""`ardoise key show`: the station's public key and key id, for enrolling at a collector."""

from __future__ import annotations

import os
from pathlib import Path

from agent.cli.output import emit_json, say
from agent.errors import UsageError
from agent.i18n import T_, _


def add_state_dir_options(p) -> None:
    p.add_argument("--state-dir", metavar="DIR", help=_("where the station key lives (default: $ARDOISE_STATE_DIR, else the config's state_dir)"))
    p.add_argument("--config", metavar="FILE", help=_("config file to read state_dir from"))


def resolve_state_dir(args) -> Path:
    """--state-dir, else $ARDOISE_STATE_DIR, else the config's ``state_dir``."""
    if getattr(args, "state_dir", None):
        return Path(args.state_dir)
    env = os.environ.get("ARDOISE_STATE_DIR")
    if env:
        return Path(env)
    from agent.config import load_config

    return Path(load_config(getattr(args, "config", None)).state_dir)


def register(sub) -> None:
    p = sub.add_parser("key", help=_("show the station's signing key (public half and key id)"),
                       description=_("The station key signs every certificate. It is created on first use in the state directory."))
    ksub = p.add_subparsers(dest="key_command", metavar="ACTION")
    ksub.required = True
    show = ksub.add_parser("show", help=_("print the public key (PEM) and its key id; creates the key on first use"))
    show.add_argument("--json", action="store_true", help=_("print {key_id, public_key, path} as JSON"))
    add_state_dir_options(show)
    show.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: (_ for _ in ()).throw(UsageError(T_("say 'ardoise key show'"))))


def run_show(args) -> int:
    from agent.certify.keys import PRIVATE_KEY_FILE, StationKey

    state = resolve_state_dir(args)
    existed = (state / PRIVATE_KEY_FILE).exists()
    key = StationKey.load_or_create(state)
    if not existed:
        say(_("created a new station key in {dir}").format(dir=state))
    if args.json:
        emit_json({"key_id": key.key_id, "public_key": key.public_pem, "path": str(key.path)})
    else:
        print(_("key id: {id}").format(id=key.key_id))
        print(key.public_pem, end="")
    return 0
