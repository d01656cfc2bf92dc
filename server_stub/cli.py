"""``ardoise-collector``: serve the collector, or manage its tokens and stations.

    ardoise-collector [serve] [--host H] [--port P] [--db URL] [--tls-cert F --tls-key F] [--workers N]
    ardoise-collector migrate [--db URL]
    ardoise-collector token create [--lot LOT] [--ttl-hours H] [--db URL]
    ardoise-collector station list [--json] [--db URL]
    ardoise-collector station revoke STATION_ID [--db URL]
    ardoise-collector org create NAME --kind coordinator|workshop|donor
    ardoise-collector org list [--json]
    ardoise-collector user create EMAIL [--org ORG] [--role ROLE] [--name NAME]
    ardoise-collector user grant EMAIL --org ORG --role ROLE
    ardoise-collector user disable EMAIL
    ardoise-collector user list [--json]
    ardoise-collector lot create LOT --workshop ORG [--donor ORG] [--language fr|en] [--received DATE]
    ardoise-collector lot list [--json]

A password is never an argument (it would stay in the shell's history and in ps): ``user
create`` reads it from $ARDOISE_USER_PASSWORD, else from standard input when that is not a
terminal, else asks for it twice.
    ardoise-collector netboot --iso ISO --config ardoise.yaml [--host H] [--port P] [--seats FILE] [--db URL]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import secrets
import sys

from agent import __version__, i18n
from agent.errors import ArdoiseError, ConfigError, UsageError
from agent.i18n import T_, _, localize
from server_stub import settings as settings_mod
from server_stub.db import Database, migrate, redact

SUBCOMMANDS = ("serve", "migrate", "token", "station", "org", "user", "lot", "netboot")
PASSWORD_ENV = "ARDOISE_USER_PASSWORD"


def _db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL",
                   help=_("database: sqlite:///path/file.db (default: ./ardoise-collector.db, or "
                          "$ARDOISE_COLLECTOR_DB) or postgresql+psycopg://user:pass@host/dbname"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ardoise-collector",
                                     description=_("Receive, verify, store and show Ardoise erasure certificates."))
    parser.add_argument("--version", action="version", version=f"ardoise-collector {__version__}",
                        help=_("show program's version number and exit"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help=_("run the web service (the default command)"))
    _db_option(serve)
    serve.add_argument("--host", default="127.0.0.1", help=_("address to listen on (default 127.0.0.1)"))
    serve.add_argument("--port", type=int, default=8080, help=_("port (default 8080)"))
    serve.add_argument("--tls-cert", metavar="PEM", help=_("serve HTTPS with this certificate chain"))
    serve.add_argument("--tls-key", metavar="PEM", help=_("private key of --tls-cert"))
    serve.add_argument("--workers", type=int, default=1,
                       help=_("worker processes (default 1; one per core for heavy upload loads)"))
    serve.add_argument("--admin-password-file", metavar="FILE",
                       help=_("read the admin password from FILE (else $ARDOISE_ADMIN_PASSWORD; none: admin disabled)"))
    serve.add_argument("--require-login", action="store_true",
                       help=_("every page and query needs a login (a person's session or the admin's) even before "
                              "the first account exists, except the public verify page"))
    serve.add_argument("--admin-lockout", type=float, metavar="SECONDS",
                       help=_("how long too many wrong admin passwords lock an address or the account out "
                              "(default 900)"))
    serve.add_argument("--max-body", type=int, metavar="BYTES", help=_("upload size limit (default 1 MiB)"))
    serve.add_argument("--progress-timeout", type=float, metavar="SECONDS",
                       help=_("drop a drive from the live dashboard after this long without news (default 60)"))
    serve.add_argument("--verify-rate", type=float, metavar="PER_S",
                       help=_("public verify checks a second per client address (default 5, bursts of 20; "
                              "0: no limit)"))
    serve.add_argument("--receipt-key", metavar="PEM",
                       help=_("the collector's Ed25519 receipt key, created at first start "
                              "(default: beside the SQLite file, or ./ardoise-collector-receipt-key.pem)"))
    _co2_options(serve)
    serve.add_argument("--forwarded-allow-ips", metavar="IPS",
                       help=_("trust X-Forwarded-* from these reverse proxies (default 127.0.0.1)"))
    serve.add_argument("--sqlite-synchronous", choices=("normal", "full"),
                       help=_("normal (default): fast commits, an OS crash may lose the last ones; "
                              "full: every acknowledged upload is on disk (about 2 ms more each)"))
    serve.add_argument("--no-access-log", action="store_true", help=_("do not log every request"))
    serve.set_defaults(func=cmd_serve)

    mig = sub.add_parser("migrate", help=_("create or upgrade the database schema, then exit"))
    _db_option(mig)
    mig.set_defaults(func=cmd_migrate)

    token = sub.add_parser("token", help=_("enrollment tokens"))
    tsub = token.add_subparsers(dest="action", metavar="ACTION")
    tsub.required = True
    create = tsub.add_parser("create", help=_("print a new one-time enrollment token"))
    _db_option(create)
    create.add_argument("--lot", help=_("lot of the certificates the enrolled station will upload"))
    create.add_argument("--workshop", metavar="ORG",
                        help=_("workshop the station belongs to (name or id; optional when there is only one)"))
    create.add_argument("--ttl-hours", type=float, default=168.0, help=_("hours the token stays valid (default 168)"))
    create.add_argument("--json", action="store_true", help=_("print JSON"))
    create.set_defaults(func=cmd_token_create)

    station = sub.add_parser("station", help=_("enrolled stations"))
    ssub = station.add_subparsers(dest="action", metavar="ACTION")
    ssub.required = True
    ls = ssub.add_parser("list", help=_("list enrolled stations"))
    _db_option(ls)
    ls.add_argument("--json", action="store_true", help=_("print JSON"))
    ls.set_defaults(func=cmd_station_list)
    rv = ssub.add_parser("revoke", help=_("refuse further uploads from a station (its certificates stay)"))
    _db_option(rv)
    rv.add_argument("station_id")
    rv.set_defaults(func=cmd_station_revoke)

    from server_stub.accounts.models import KINDS, ROLES
    from server_stub.lots.models import LANGUAGES

    org = sub.add_parser("org", help=_("organisations: the coordinator, workshops, donors"))
    osub = org.add_subparsers(dest="action", metavar="ACTION")
    osub.required = True
    oc = osub.add_parser("create", help=_("create an organisation"))
    _db_option(oc)
    oc.add_argument("name")
    oc.add_argument("--kind", required=True, choices=KINDS)
    oc.set_defaults(func=cmd_org_create)
    ol = osub.add_parser("list", help=_("list organisations"))
    _db_option(ol)
    ol.add_argument("--json", action="store_true", help=_("print JSON"))
    ol.set_defaults(func=cmd_org_list)

    user = sub.add_parser("user", help=_("people with accounts"))
    usub = user.add_subparsers(dest="action", metavar="ACTION")
    usub.required = True
    uc = usub.add_parser("create", help=_("create an account (password from ${env}, stdin, or asked)").format(
        env=PASSWORD_ENV))
    _db_option(uc)
    uc.add_argument("email")
    uc.add_argument("--org", help=_("organisation (name or id; default: the coordinator, created if there is none)"))
    uc.add_argument("--role", choices=ROLES, default="admin", help=_("role in --org (default admin)"))
    uc.add_argument("--name", help=_("the person's name, as pages show it"))
    uc.set_defaults(func=cmd_user_create)
    ug = usub.add_parser("grant", help=_("give a person a role in an organisation"))
    _db_option(ug)
    ug.add_argument("email")
    ug.add_argument("--org", required=True)
    ug.add_argument("--role", required=True, choices=ROLES)
    ug.set_defaults(func=cmd_user_grant)
    ud = usub.add_parser("disable", help=_("refuse a person's logins from now on and end their sessions"))
    _db_option(ud)
    ud.add_argument("email")
    ud.set_defaults(func=cmd_user_disable)
    ul = usub.add_parser("list", help=_("list people and their roles"))
    _db_option(ul)
    ul.add_argument("--json", action="store_true", help=_("print JSON"))
    ul.set_defaults(func=cmd_user_list)

    lot = sub.add_parser("lot", help=_("lots: what a donor gave a workshop"))
    lsub = lot.add_subparsers(dest="action", metavar="ACTION")
    lsub.required = True
    lc = lsub.add_parser("create", help=_("create an open lot"))
    _db_option(lc)
    lc.add_argument("lot")
    lc.add_argument("--workshop", help=_("workshop that reconditions it (name or id; optional when there is one)"))
    lc.add_argument("--donor", help=_("donor organisation (name or id)"))
    lc.add_argument("--language", choices=LANGUAGES, default="fr", help=_("language of its report (default fr)"))
    lc.add_argument("--received", metavar="YYYY-MM-DD", help=_("date the lot was received"))
    lc.add_argument("--inventory", metavar="FILE", help=_("the donor's inventory (CSV or XLSX), imported at once"))
    lc.set_defaults(func=cmd_lot_create)
    li = lsub.add_parser("import", help=_("import (replace) the donor's inventory: CSV or XLSX; "
                                          "any bad row and nothing is stored"))
    _db_option(li)
    li.add_argument("lot")
    li.add_argument("file")
    li.add_argument("--workshop", help=_("the lot's workshop, when two workshops have a lot of this name"))
    li.set_defaults(func=cmd_lot_import)
    ld = lsub.add_parser("destroy", help=_("record that a device or drive was destroyed instead of sanitized"))
    _db_option(ld)
    ld.add_argument("lot")
    ld.add_argument("--serial", required=True, help=_("the device's serial or asset tag, or a drive's serial"))
    ld.add_argument("--method", required=True, help=_("e.g. shredding, drilling, degaussing"))
    ld.add_argument("--date", required=True, metavar="YYYY-MM-DD")
    ld.add_argument("--partner", required=True, help=_("the WEEE (DEEE) operator who took it"))
    ld.add_argument("--by", required=True, help=_("the person who destroyed it or saw it destroyed"))
    ld.add_argument("--workshop")
    ld.set_defaults(func=cmd_lot_destroy)
    lcl = lsub.add_parser("close", help=_("close a lot with its signed report (refused while devices are "
                                          "missing or not sanitized, unless --reason)"))
    _db_option(lcl)
    lcl.add_argument("lot")
    lcl.add_argument("--reason", help=_("why the lot closes although devices are unresolved (10 characters or more)"))
    lcl.add_argument("--by", default="ardoise-collector CLI", help=_("who closes it, as the report names them"))
    lcl.add_argument("--workshop")
    lcl.add_argument("--receipt-key", metavar="PEM", help=_("the collector's key, as given to serve --receipt-key"))
    _co2_options(lcl)
    lcl.set_defaults(func=cmd_lot_close)
    lb = lsub.add_parser("bundle", help=_("write a closed lot's bundle (ZIP) for its donor"))
    _db_option(lb)
    lb.add_argument("lot")
    lb.add_argument("-o", "--output", required=True, metavar="FILE")
    lb.add_argument("--workshop")
    lb.add_argument("--receipt-key", metavar="PEM", help=_("the collector's key, as given to serve --receipt-key"))
    lb.set_defaults(func=cmd_lot_bundle)
    ll = lsub.add_parser("list", help=_("list lots"))
    _db_option(ll)
    ll.add_argument("--json", action="store_true", help=_("print JSON"))
    ll.set_defaults(func=cmd_lot_list)

    nb = sub.add_parser("netboot", help=_("boot laptops from the network with the live image (docs/netboot.md)"))
    _db_option(nb)
    nb.add_argument("--iso", required=True, help=_("the live image, dist/ardoise-<version>-amd64.iso "
                                                   "(its .manifest.txt beside it)"))
    nb.add_argument("--config", required=True, metavar="YAML",
                    help=_("the agent's ardoise.yaml for these laptops (collector.url, lot...; no collector.token)"))
    nb.add_argument("--host", default="0.0.0.0", help=_("address to listen on (default 0.0.0.0: the laptops' LAN)"))
    nb.add_argument("--port", type=int, default=8070, help=_("port (default 8070)"))
    nb.add_argument("--workshop", help=_("the workshop these laptops' stations belong to (name or id; "
                                         "optional when there is one)"))
    nb.add_argument("--seats", metavar="CSV", help=_("MAC,seat lines: the dashboard names each laptop by its seat"))
    nb.add_argument("--token-ttl-hours", type=float, default=24.0,
                    help=_("hours a per-boot enrollment token stays valid (default 24)"))
    nb.add_argument("--tftp-root", metavar="DIR",
                    help=_("dnsmasq's TFTP root (scripts/netboot-dnsmasq.sh): the Secure Boot path's kernel, initrds "
                           "and GRUB menu are written under DIR/ardoise"))
    nb.add_argument("--url", metavar="URL", help=_("http://SERVER:PORT, this service as the laptops reach it "
                                                    "(default: from --host and --port)"))
    nb.add_argument("--work-dir", metavar="DIR", help=_("where the boot files are extracted (default: a new "
                                                        "directory in /var/tmp, removed at exit)"))
    nb.set_defaults(func=cmd_netboot)
    return parser


def check_admin_password(s: settings_mod.Settings) -> None:
    """A weak admin password stops the start, in one line (docs/security.md has the rule)."""
    from server_stub.auth import password_problem

    problem = password_problem(s.admin_password) if s.admin_password else None
    if problem:
        raise ConfigError(f"{problem}; choose a longer one (ARDOISE_ADMIN_PASSWORD or --admin-password-file)")


def _co2_options(p) -> None:
    p.add_argument("--co2-factor", metavar="KG",
                   help=_("print an estimate of the CO2 avoided in closed lots' reports: kg CO2e per reused "
                          "device (a whole number; with --co2-source; docs/lots.md says which figure to use)"))
    p.add_argument("--co2-source", metavar="TEXT",
                   help=_("the published source of --co2-factor, printed beside the estimate"))


def _settings(args, **overrides) -> settings_mod.Settings:
    if getattr(args, "co2_factor", None) is not None:
        overrides["co2_kg_per_reused_device"] = settings_mod.co2_factor_value(args.co2_factor)
    if getattr(args, "co2_source", None) is not None:
        overrides["co2_source"] = args.co2_source
    return settings_mod.from_env(db_url=getattr(args, "db", None), **overrides)


def _open_db(args) -> Database:
    s = _settings(args)
    db = Database(s.db_url)
    migrate(db)
    return db


def cmd_migrate(args) -> int:
    s = _settings(args)
    version = migrate(Database(s.db_url))
    print(f"ardoise-collector: database {redact(s.db_url)} at schema version {version}", file=sys.stderr)
    return 0


def cmd_token_create(args) -> int:
    from server_stub import stations
    from server_stub.fields import lot_problem
    if args.ttl_hours <= 0:
        raise UsageError("--ttl-hours must be positive")
    if args.lot is not None and (problem := lot_problem(args.lot)):
        raise UsageError(f"--lot: {problem}")
    db = _open_db(args)
    t = stations.create_token(db, args.lot, args.ttl_hours, workshop_id=stations.workshop_for(db, args.workshop, None))
    if args.json:
        print(json.dumps({"token": t.token, "lot": t.lot, "expires_at": stations.iso(t.expires_at)}))
    else:
        print(t.token)
        print(f"one-time enrollment token for lot {t.lot or '(none)'}, valid until {stations.iso(t.expires_at)}; "
              "put it in ardoise.yaml as collector.token", file=sys.stderr)
    return 0


def cmd_station_list(args) -> int:
    from server_stub import stations
    infos = stations.list_stations(_open_db(args))
    if args.json:
        print(json.dumps([i.to_json() for i in infos], indent=2))
        return 0
    if not infos:
        print("no station enrolled", file=sys.stderr)
        return 0
    from agent.cli.output import printable  # names, lots and key ids come from enrollments: no escapes

    print(f"{'STATION':20} {'NAME':20} {'WORKSHOP':16} {'KEY ID':18} {'LOT':16} {'CERTS':>6} STATUS")
    for i in infos:
        status = f"revoked {stations.iso(i.revoked_at)}" if i.revoked_at else "active"
        print(printable(f"{i.station_id:20} {(i.name or '-')[:20]:20} {(i.workshop or '-')[:16]:16} "
                        f"{i.key_id[:16] + '..':18} {(i.lot or '-')[:16]:16} {i.certificates:>6} {status}"))
    return 0


def cmd_station_revoke(args) -> int:
    from server_stub import stations
    info = stations.revoke(_open_db(args), args.station_id)
    print(f"station {info.station_id} revoked at {stations.iso(info.revoked_at)}; "
          f"its {info.certificates} certificate(s) stay stored and verifiable, marked revoked", file=sys.stderr)
    return 0


def cmd_org_create(args) -> int:
    from server_stub.accounts import service
    from server_stub.accounts.events import CLI
    org = service.create_org(_open_db(args), args.name, args.kind, CLI)
    print(_("organisation {name} ({kind}) created, id {id}").format(name=org.name, kind=org.kind, id=org.id),
          file=sys.stderr)
    return 0


def cmd_org_list(args) -> int:
    from agent.cli.output import printable
    from server_stub.accounts import service
    orgs = service.organisations(_open_db(args))
    if args.json:
        print(json.dumps([{"id": o.id, "name": o.name, "kind": o.kind} for o in orgs], indent=2))
        return 0
    for o in orgs:
        print(printable(f"{o.id:>5} {o.kind:12} {o.name}"))
    return 0


def read_new_password() -> str:
    """$ARDOISE_USER_PASSWORD, else one line of stdin (a pipe), else asked twice on the terminal."""
    import getpass

    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not sys.stdin.isatty():
        line = sys.stdin.readline(1024).rstrip("\r\n")
        if not line:
            raise UsageError(T_("no password: set ${env} or pipe it on standard input", env=PASSWORD_ENV))
        return line
    first = getpass.getpass(_("Password: "))
    if getpass.getpass(_("Password again: ")) != first:
        raise UsageError(T_("the two passwords differ"))
    return first


def cmd_user_create(args) -> int:
    from server_stub.accounts import service
    from server_stub.accounts.events import CLI
    from server_stub.accounts.models import COORDINATOR
    from server_stub.auth import password_problem

    db = _open_db(args)
    password = read_new_password()
    if problem := password_problem(password):
        raise UsageError(problem.replace("the admin password", "a password"))
    if args.org:
        org = service.find_org(db, args.org)
    else:
        coordinators = service.organisations(db, COORDINATOR)
        if len(coordinators) > 1:
            raise UsageError(T_("several coordinators: name one with --org"))
        if coordinators:
            org = coordinators[0]
        else:
            org = service.create_org(db, "Coordinator", COORDINATOR, CLI)
            print(_("organisation Coordinator (coordinator) created for the first admin"), file=sys.stderr)
    user = service.create_user(db, args.email, password, org, args.role, CLI, name=args.name)
    print(_("account {email} created: {role} of {org}").format(email=user.email, role=args.role, org=org.name),
          file=sys.stderr)
    return 0


def cmd_user_grant(args) -> int:
    from server_stub.accounts import service
    from server_stub.accounts.events import CLI
    db = _open_db(args)
    org = service.find_org(db, args.org)
    service.grant(db, args.email, org, args.role, CLI)
    print(_("{email} is now {role} of {org}").format(email=args.email, role=args.role, org=org.name), file=sys.stderr)
    return 0


def cmd_user_disable(args) -> int:
    from server_stub.accounts import service
    from server_stub.accounts.events import CLI
    service.disable(_open_db(args), args.email, CLI)
    print(_("{email} disabled: no more logins, sessions ended").format(email=args.email), file=sys.stderr)
    return 0


def cmd_user_list(args) -> int:
    from agent.cli.output import printable
    from server_stub.accounts import service
    rows = service.people(_open_db(args))
    if args.json:
        print(json.dumps([{"email": u.email, "name": u.name, "disabled": u.disabled_at is not None,
                           "roles": [{"organisation": o, "role": r} for o, r in roles]} for u, roles in rows],
                         indent=2))
        return 0
    for u, roles in rows:
        state = "disabled" if u.disabled_at else "active"
        print(printable(f"{u.email:32} {state:8} " + ", ".join(f"{r} of {o}" for o, r in roles)))
    return 0


def cmd_lot_create(args) -> int:
    from datetime import date

    from server_stub import stations
    from server_stub.accounts.events import CLI
    from server_stub.lots import service as lots

    received = None
    if args.received:
        try:
            received = date.fromisoformat(args.received)
        except ValueError:
            raise UsageError(T_("--received: {value} is not a date (YYYY-MM-DD)", value=repr(args.received))) from None
    data = _read_file(args.inventory) if args.inventory else None  # an unreadable file creates no lot
    if data is not None:  # nor does a file with bad rows: a lot is created with its inventory or not at all
        from server_stub.lots import inventory

        problems = inventory.read_inventory(data).problems
        if problems:
            return _rejected(args.inventory, problems)
    db = _open_db(args)
    workshop = stations.workshop_for(db, args.workshop, None)
    lot = lots.create_lot(db, args.lot, workshop, CLI, donor=args.donor, language=args.language,
                          received_on=received)
    print(_("lot {lot} created, open (id {id})").format(lot=lot.name, id=lot.id), file=sys.stderr)
    if args.inventory:
        return _import(db, lots.get_lot(db, lot.id), args.inventory, data)
    return 0


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise UsageError(T_("cannot read {path}: {error}", path=path, error=exc.strerror)) from None


def _import(db, lot, path: str, data: bytes | None = None) -> int:
    from server_stub.accounts.events import CLI
    from server_stub.lots import wiring

    data = _read_file(path) if data is None else data
    try:
        n = wiring.import_inventory(db, lot, data, CLI, source=os.path.basename(path))
    except wiring.InventoryRejected as exc:
        return _rejected(path, exc.problems)
    print(_("lot {lot}: {count} declared device(s) imported from {path}").format(lot=lot.name, count=n, path=path),
          file=sys.stderr)
    return 0


def _rejected(path: str, problems) -> int:
    """Every bad line of the donor's file, one line each, then what to do."""
    from server_stub.lots import wiring

    for p in problems:
        print(f"ardoise-collector: {path}: {localize(p.text())}", file=sys.stderr)
    print("ardoise-collector: " + _("{count} bad row(s): nothing imported; correct the file and import it "
                                    "again").format(count=len(problems)), file=sys.stderr)
    return wiring.InventoryRejected(problems).exit_code


def _lot(args):
    from server_stub.lots import service as lots

    db = _open_db(args)
    return db, lots.find_lot(db, args.lot, args.workshop)


def cmd_lot_import(args) -> int:
    db, lot = _lot(args)
    return _import(db, lot, args.file)


def cmd_lot_destroy(args) -> int:
    from datetime import date

    from server_stub.accounts.events import CLI
    from server_stub.lots import service as lots

    try:
        when = date.fromisoformat(args.date)
    except ValueError:
        raise UsageError(T_("--date: {value} is not a date (YYYY-MM-DD)", value=repr(args.date))) from None
    db, lot = _lot(args)
    lots.record_destruction(db, lot.id, CLI, device_ref=args.serial, person=args.by, method=args.method,
                            destroyed_on=when, weee_partner=args.partner)
    print(_("lot {lot}: destruction of {serial} recorded").format(lot=lot.name, serial=args.serial), file=sys.stderr)
    return 0


def _collector_key(args):
    from server_stub import receipts
    return receipts.load_or_create(receipts.key_path(_settings(args, receipt_key_path=args.receipt_key)))


def cmd_lot_close(args) -> int:
    from server_stub.accounts.events import Actor
    from server_stub.lots import wiring

    from server_stub.lots.report import Co2Factor

    co2 = Co2Factor.from_settings(_settings(args))  # checked before anything is read or signed
    db, lot = _lot(args)
    payload = wiring.close(db, lot, Actor(args.by, "cli"), _collector_key(args), reason=args.reason, co2=co2)
    c = payload["counts"]
    print(_("lot {lot} closed: {declared} declared, {sanitized} sanitized, {no_disk} without a disk, {destroyed} "
            "destroyed, {missing} missing; report {report} signed").format(
                lot=lot.name, declared=c["declared"], sanitized=c["sanitized"], no_disk=c["no_disk"],
                destroyed=c["destroyed"], missing=c["missing"], report=payload["report_id"]), file=sys.stderr)
    return 0


def cmd_lot_bundle(args) -> int:
    from server_stub.lots import wiring

    db, lot = _lot(args)
    key = _collector_key(args)
    chunks = wiring.stream(db, lot, key, zipname=os.path.basename(args.output))
    first = next(chunks)  # a refusal (open lot) comes before the file is created
    tmp = args.output + ".part"
    try:
        with open(tmp, "wb") as out:
            out.write(first)
            for chunk in chunks:
                out.write(chunk)
        os.replace(tmp, args.output)
    except OSError as exc:
        raise UsageError(T_("cannot write {path}: {error}", path=args.output, error=exc.strerror)) from None
    print(_("lot {lot}: bundle written to {path}").format(lot=lot.name, path=args.output), file=sys.stderr)
    return 0


def cmd_lot_list(args) -> int:
    from agent.cli.output import printable
    from server_stub.accounts.access import Principal
    from server_stub.lots import service as lots

    views = lots.list_lots(_open_db(args), Principal("cli", "cli", superuser=True))
    if args.json:
        print(json.dumps([{"name": v.name, "workshop": v.workshop, "donor": v.donor, "status": v.status,
                           "language": v.language, "received_on": v.received_on.isoformat() if v.received_on else None,
                           "certificates": v.certificates} for v in views], indent=2))
        return 0
    for v in views:
        print(printable(f"{v.name[:24]:24} {(v.workshop or '-')[:20]:20} {(v.donor or '-')[:20]:20} "
                        f"{v.status or '-':7} {v.certificates:>6}"))
    return 0


def cmd_serve(args) -> int:
    import uvicorn

    from server_stub.app import SETTINGS_ENV

    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    for path in filter(None, (args.tls_cert, args.tls_key)):
        if not os.path.isfile(path):
            raise ConfigError(f"TLS file {path} does not exist")
    if not 0 < args.port < 65536:
        raise UsageError("--port must be between 1 and 65535")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.admin_lockout is not None and args.admin_lockout <= 0:
        raise UsageError("--admin-lockout must be a positive number of seconds")
    password = settings_mod.read_password_file(args.admin_password_file) if args.admin_password_file else None
    s = _settings(args, admin_password=password, max_body=args.max_body,
                  progress_timeout_s=args.progress_timeout, require_login=args.require_login or None,
                  sqlite_synchronous=args.sqlite_synchronous, admin_lockout_s=args.admin_lockout,
                  secret_key=secrets.token_urlsafe(32), verify_rate=args.verify_rate,
                  receipt_key_path=args.receipt_key)
    check_admin_password(s)
    if s.verify_rate < 0:
        raise UsageError("--verify-rate must be 0 (no limit) or positive")
    # Created here, once, so that every worker process signs with the same key.
    from server_stub import receipts
    receipt_key = receipts.key_path(s)
    if receipt_key is not None:
        s.receipt_key_path = str(receipt_key)
        receipts.load_or_create(receipt_key)
    version = migrate(Database(s.db_url))
    os.environ[SETTINGS_ENV] = json.dumps({**dataclasses.asdict(s), "_migrated": True})
    scheme = "https" if args.tls_cert else "http"
    print(f"ardoise-collector: {scheme}://{args.host}:{args.port}/ on {redact(s.db_url)} (schema v{version}); "
          + ("admin enabled" if s.admin_enabled else "admin disabled: set ARDOISE_ADMIN_PASSWORD to enable it"),
          file=sys.stderr)
    uvicorn.run("server_stub.app:app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key,
                access_log=not args.no_access_log, proxy_headers=True,
                forwarded_allow_ips=args.forwarded_allow_ips or "127.0.0.1", log_level="info",
                server_header=False)
    return 0


def cmd_netboot(args) -> int:
    from server_stub.netboot.cli import run_netboot
    return run_netboot(args, _open_db)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "serve")
    # LANG / LC_ALL (docs/i18n.md): the help and messages in the operator's language.
    i18n.use_language(i18n.from_environment(cmdline=""))
    i18n.translate_argparse()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        i18n.use_language("en")  # the service's own lines stay as they were; its pages follow each reader
    # Libraries (fontTools under fpdf2) are chatty at INFO; only our own messages are.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("ardoise").setLevel(logging.INFO)
    try:
        return int(args.func(args) or 0)
    except ArdoiseError as exc:
        print(f"ardoise-collector: {exc.localized()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        if os.environ.get("ARDOISE_DEBUG"):
            raise
        print(f"ardoise-collector: internal error: {type(exc).__name__}: {exc} (set ARDOISE_DEBUG=1 for details)",
              file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
