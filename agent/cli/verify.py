"""`ardoise verify`: check certificates offline (shape, signature, schema, consistency)."""

from __future__ import annotations

from agent import i18n
from agent.cli.key import add_state_dir_options, resolve_state_dir
from agent.cli.output import emit_json, say
from agent.errors import CertificateError, UsageError
from agent.i18n import T_, _


def register(sub) -> None:
    p = sub.add_parser(
        "verify",
        help=_("check signed certificates offline; exit 0 only if all are valid"),
        description=_(
            "Checks each FILE (a DSSE envelope: an erasure certificate or an audit report) for envelope shape, "
            "an Ed25519 signature by a trusted station key, the JSON Schema, and internal consistency. "
            "Without --key/--keys, trusts the local station key."
        ),
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    keys = p.add_mutually_exclusive_group()
    keys.add_argument("--key", metavar="PUBKEY", help=_("a station public key (PEM file) to trust"))
    keys.add_argument("--keys", metavar="DIR", help=_("a directory of station public keys (*.pem) to trust"))
    p.add_argument("--json", action="store_true", help=_("print one JSON object per file (a list) on stdout"))
    add_state_dir_options(p)
    p.set_defaults(func=run)


def trusted_keys(args) -> dict:
    from agent.certify.keys import PUBLIC_KEY_FILE, PRIVATE_KEY_FILE, load_public_keys

    if args.key:
        return load_public_keys(args.key)
    if args.keys:
        return load_public_keys(args.keys)
    try:
        state = resolve_state_dir(args)
    except CertificateError:
        raise
    for name in (PUBLIC_KEY_FILE, PRIVATE_KEY_FILE):
        if (state / name).is_file():
            return load_public_keys(state / name)
    raise UsageError(T_("a key is needed: give --key PUBKEY or --keys DIR (no station key in {state})", state=state))


def run(args) -> int:
    from agent.certify.check import check_file
    from agent.certify.envelope import PAYLOAD_TYPES

    keys = trusted_keys(args)
    results = []
    all_valid = True
    for name in args.files:
        report = check_file(name, keys, payload_type=PAYLOAD_TYPES)
        all_valid &= report.valid
        results.append({"file": name, **report.to_dict(), "certificate_id": _id(report.payload)})
        if report.valid:
            say(_("{file}: valid: {summary}").format(file=name, summary=_summary(report)))
        else:
            from agent.certify.reasons import explain

            reason = explain(report.codes[0] if report.codes else None, report.reason, i18n.current())
            say(_("{file}: INVALID: {reason}").format(file=name, reason=reason))
    if args.json:
        emit_json(results)
    return 0 if all_valid else 6


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
        lang = i18n.current()
        return _("{outcome}, {category}, of {serial} by {method}, certificate {id}, signed by key {key}, "
                 "digest {digest}").format(outcome=lang.outcome(s["outcome"]),
                                           category=lang.nist_category(s["category"], empty=_("no category")),
                                           serial=serial, method=s["method"], id=p["certificate_id"], key=kid,
                                           digest=report.digest)
    return _("audit report {id}, signed by key {key}, digest {digest}").format(
        id=p.get("report_id"), key=kid, digest=report.digest)
