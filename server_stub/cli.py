"""``ardoise-collector``: serve the collector, or manage its tokens and stations.

    ardoise-collector [serve] [--host H] [--port P] [--db URL] [--tls-cert F --tls-key F] [--workers N]
    ardoise-collector migrate [--db URL]
    ardoise-collector token create [--lot LOT] [--ttl-hours H] [--db URL]
    ardoise-collector station list [--json] [--db URL]
    ardoise-collector station revoke STATION_ID [--db URL]
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

from agent import __version__
from agent.errors import ArdoiseError, ConfigError, UsageError
from server_stub import settings as settings_mod
from server_stub.db import Database, migrate, redact

SUBCOMMANDS = ("serve", "migrate", "token", "station", "netboot")


def _db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL",
                   help="database: sqlite:///path/file.db (default: ./ardoise-collector.db, or "
                        "$ARDOISE_COLLECTOR_DB) or postgresql+psycopg://user:pass@host/dbname")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ardoise-collector",
                                     description="Receive, verify, store and show Ardoise erasure certificates.")
    parser.add_argument("--version", action="version", version=f"ardoise-collector {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the web service (the default command)")
    _db_option(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate chain")
    serve.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes (default 1; one per core for heavy upload loads)")
    serve.add_argument("--admin-password-file", metavar="FILE",
                       help="read the admin password from FILE (else $ARDOISE_ADMIN_PASSWORD; none: admin disabled)")
    serve.add_argument("--require-login", action="store_true",
                       help="every page and query needs the admin login, except the public verify page")
    serve.add_argument("--admin-lockout", type=float, metavar="SECONDS",
                       help="how long too many wrong admin passwords lock an address or the account out (default 900)")
    serve.add_argument("--max-body", type=int, metavar="BYTES", help="upload size limit (default 1 MiB)")
    serve.add_argument("--progress-timeout", type=float, metavar="SECONDS",
                       help="drop a drive from the live dashboard after this long without news (default 60)")
    serve.add_argument("--verify-rate", type=float, metavar="PER_S",
                       help="public verify checks a second per client address (default 5, bursts of 20; 0: no limit)")
    serve.add_argument("--receipt-key", metavar="PEM",
                       help="the collector's Ed25519 receipt key, created at first start "
                            "(default: beside the SQLite file, or ./ardoise-collector-receipt-key.pem)")
    serve.add_argument("--forwarded-allow-ips", metavar="IPS",
                       help="trust X-Forwarded-* from these reverse proxies (default 127.0.0.1)")
    serve.add_argument("--sqlite-synchronous", choices=("normal", "full"),
                       help="normal (default): fast commits, an OS crash may lose the last ones; "
                            "full: every acknowledged upload is on disk (about 2 ms more each)")
    serve.add_argument("--no-access-log", action="store_true", help="do not log every request")
    serve.set_defaults(func=cmd_serve)

    mig = sub.add_parser("migrate", help="create or upgrade the database schema, then exit")
    _db_option(mig)
    mig.set_defaults(func=cmd_migrate)

    token = sub.add_parser("token", help="enrollment tokens")
    tsub = token.add_subparsers(dest="action", metavar="ACTION")
    tsub.required = True
    create = tsub.add_parser("create", help="print a new one-time enrollment token")
    _db_option(create)
    create.add_argument("--lot", help="lot of the certificates the enrolled station will upload")
    create.add_argument("--ttl-hours", type=float, default=168.0, help="hours the token stays valid (default 168)")
    create.add_argument("--json", action="store_true", help="print JSON")
    create.set_defaults(func=cmd_token_create)

    station = sub.add_parser("station", help="enrolled stations")
    ssub = station.add_subparsers(dest="action", metavar="ACTION")
    ssub.required = True
    ls = ssub.add_parser("list", help="list enrolled stations")
    _db_option(ls)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_station_list)
    rv = ssub.add_parser("revoke", help="refuse further uploads from a station (its certificates stay)")
    _db_option(rv)
    rv.add_argument("station_id")
    rv.set_defaults(func=cmd_station_revoke)

    nb = sub.add_parser("netboot", help="boot laptops from the network with the live image (docs/netboot.md)")
    _db_option(nb)
    nb.add_argument("--iso", required=True, help="the live image, dist/ardoise-<version>-amd64.iso "
                                                 "(its .manifest.txt beside it)")
    nb.add_argument("--config", required=True, metavar="YAML",
                    help="the agent's ardoise.yaml for these laptops (collector.url, lot...; no collector.token)")
    nb.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0: the laptops' LAN)")
    nb.add_argument("--port", type=int, default=8070, help="port (default 8070)")
    nb.add_argument("--seats", metavar="CSV", help="MAC,seat lines: the dashboard names each laptop by its seat")
    nb.add_argument("--token-ttl-hours", type=float, default=24.0,
                    help="hours a per-boot enrollment token stays valid (default 24)")
    nb.add_argument("--work-dir", metavar="DIR", help="where the boot files are extracted (default: a new "
                                                      "directory in /var/tmp, removed at exit)")
    nb.set_defaults(func=cmd_netboot)
    return parser


def check_admin_password(s: settings_mod.Settings) -> None:
    """A weak admin password stops the start, in one line (docs/security.md has the rule)."""
    from server_stub.auth import password_problem

    problem = password_problem(s.admin_password) if s.admin_password else None
    if problem:
        raise ConfigError(f"{problem}; choose a longer one (ARDOISE_ADMIN_PASSWORD or --admin-password-file)")


def _settings(args, **overrides) -> settings_mod.Settings:
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
    t = stations.create_token(_open_db(args), args.lot, args.ttl_hours)
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

    print(f"{'STATION':20} {'NAME':20} {'KEY ID':18} {'LOT':16} {'CERTS':>6} STATUS")
    for i in infos:
        status = f"revoked {stations.iso(i.revoked_at)}" if i.revoked_at else "active"
        print(printable(f"{i.station_id:20} {(i.name or '-')[:20]:20} {i.key_id[:16] + '..':18} "
                        f"{(i.lot or '-')[:16]:16} {i.certificates:>6} {status}"))
    return 0


def cmd_station_revoke(args) -> int:
    from server_stub import stations
    info = stations.revoke(_open_db(args), args.station_id)
    print(f"station {info.station_id} revoked at {stations.iso(info.revoked_at)}; "
          f"its {info.certificates} certificate(s) stay stored and verifiable, marked revoked", file=sys.stderr)
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
    parser = build_parser()
    args = parser.parse_args(argv)
    # Libraries (fontTools under fpdf2) are chatty at INFO; only our own messages are.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("ardoise").setLevel(logging.INFO)
    try:
        return int(args.func(args) or 0)
    except ArdoiseError as exc:
        print(f"ardoise-collector: {exc}", file=sys.stderr)
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
