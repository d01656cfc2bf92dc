"""`ardoise verify`: check certificates offline (shape, signature, schema, consistency)."""

from __future__ import annotations

from agent.bounded import CERTIFICATE_MAX, read_bounded
from agent.cli.key import add_state_dir_options, resolve_state_dir
from agent.cli.output import emit_json, say
from agent.errors import CertificateError, UsageError


def register(sub) -> None:
    p = sub.add_parser(
        "verify",
        help="check signed certificates offline; exit 0 only if all are valid",
        description=(
            "Checks each FILE (a DSSE envelope: an erasure certificate or an audit report) for envelope shape, "
            "an Ed25519 signature by a trusted station key, the JSON Schema, and internal consistency. "
            "Without --key/--keys, trusts the local station key."
        ),
    )
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("--bundle", metavar="ZIP",
                   help="check a donor's lot bundle instead: every signature, the report against the certificates, "
                        "the counts (docs/lots.md); exit 0 valid, 6 refused")
    p.add_argument("--collector-key", metavar="PUBKEY",
                   help="with --bundle: the collector's public key (PEM) to pin, obtained from the collector itself")
    keys = p.add_mutually_exclusive_group()
    keys.add_argument("--key", metavar="PUBKEY", help="a station public key (PEM file) to trust")
    keys.add_argument("--keys", metavar="DIR", help="a directory of station public keys (*.pem) to trust")
    p.add_argument("--json", action="store_true", help="print one JSON object per file (a list) on stdout")
    add_state_dir_options(p)
    p.set_defaults(func=run)


def trusted_keys(args) -> dict:
    from agent.certify.keys import PUBLIC_KEY_FILE, PRIVATE_KEY_FILE, load_public_keys

    if args.key or args.keys:
        try:
            return load_public_keys(args.key or args.keys)
        except CertificateError as exc:
            # A wrong --key is a mistake on the command line (exit 2), not a bad certificate.
            raise UsageError(f"--key{'s' if args.keys else ''}: {exc}") from None
    try:
        state = resolve_state_dir(args)
    except CertificateError:
        raise
    for name in (PUBLIC_KEY_FILE, PRIVATE_KEY_FILE):
        if (state / name).is_file():
            return load_public_keys(state / name)
    raise UsageError(f"a key is needed: give --key PUBKEY or --keys DIR (no station key in {state})")


def run(args) -> int:
    from agent.certify.envelope import PAYLOAD_TYPES

    if args.bundle:
        if args.files:
            raise UsageError("give either --bundle ZIP or certificate FILEs, not both")
        return run_bundle(args)
    if args.collector_key:
        raise UsageError("--collector-key goes with --bundle")
    if not args.files:
        raise UsageError("give certificate FILEs to check, or --bundle ZIP")

    keys = trusted_keys(args)
    results = []
    all_valid = True
    for name in args.files:
        report = _check(name, keys, payload_type=PAYLOAD_TYPES)
        all_valid &= report.valid
        results.append({"file": name, **report.to_dict(), "certificate_id": _id(report.payload)})
        if report.valid:
            say(f"{name}: valid: {_summary(report)}")
        else:
            say(f"{name}: INVALID: {report.reason}")
    if args.json:
        emit_json(results)
    return 0 if all_valid else 6


def run_bundle(args) -> int:
    """One line: valid with the figures, or INVALID with the first reason (exit 6)."""
    from agent.certify.bundle import verify_bundle
    from agent.certify.keys import load_public_keys

    pinned = None
    pin = args.collector_key or args.key
    if args.keys:
        raise UsageError("--bundle takes the collector key with --collector-key PUBKEY, not --keys")
    if pin:
        try:
            pinned = load_public_keys(pin)
        except CertificateError as exc:
            raise UsageError(f"--collector-key: {exc}") from None
    try:
        r = verify_bundle(args.bundle, pinned)
    except CertificateError as exc:
        say(f"{args.bundle}: INVALID: {exc}")
        if args.json:
            emit_json({"file": args.bundle, "valid": False, "reason": str(exc)})
        return 6
    reen = r.reen
    trust = ("collector key pinned" if r.pinned
             else "collector key NOT pinned (taken from the bundle: integrity proven, not origin; give --collector-key)")
    say(f"{args.bundle}: valid: lot {r.lot}, {r.counts.get('declared')} devices declared, {r.certificates} certificates, "
        f"{r.audit_reports} audit reports; received {reen.get('received')}, reused {reen.get('reused')}, recycled "
        f"{reen.get('recycled')}, destroyed {reen.get('destroyed')}; {trust} {r.collector_key_id[:16]}")
    if args.json:
        emit_json({"file": args.bundle, "valid": True, "lot": r.lot, "pinned": r.pinned, "counts": r.counts,
                   "reen": reen, "collector_key_id": r.collector_key_id})
    return 0


def _check(name: str, keys: dict, **kw):
    """``check_file``, with the read bounded: /dev/zero or a huge file is refused as a
    file that cannot be a certificate, instead of being read into memory."""
    from agent.certify.check import MISSING_FILE, CheckReport, check_certificate

    try:
        data = read_bounded(name, CERTIFICATE_MAX)
    except FileNotFoundError:
        return CheckReport(False, [f"{MISSING_FILE}: no such file"], codes=[MISSING_FILE])
    except OSError as exc:
        return CheckReport(False, [f"{MISSING_FILE}: cannot read ({exc.strerror})"], codes=[MISSING_FILE])
    return check_certificate(data, keys, **kw)


def _id(payload) -> str | None:
    if not isinstance(payload, dict):
        return None
    return payload.get("certificate_id") or payload.get("report_id")


def _summary(report) -> str:
    p = report.payload or {}
    kid = (report.key_id or "")[:16]
    if "sanitization" in p:
        s = p["sanitization"]
        serial = p["media"].get("serial") or p["media"].get("device")
        return (f"{s['outcome']} {s['category'] or '(no category)'} of {serial} by {s['method']}, "
                f"certificate {p['certificate_id']}, signed by key {kid}, digest {report.digest}")
    return f"audit report {p.get('report_id')}, signed by key {kid}, digest {report.digest}"
