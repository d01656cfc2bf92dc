"""`ardoise verify`: check certificates offline (shape, signature, schema, consistency),
and certificate PDFs by the envelope attached to them and the facts their page shows."""

from __future__ import annotations

from agent import i18n
from agent.bounded import CERTIFICATE_MAX, read_bounded
from agent.cli.key import add_state_dir_options, resolve_state_dir
from agent.cli.output import emit_json, say
from agent.errors import CertificateError, UsageError
from agent.i18n import T_, _

INVALID_EXIT = 6
# Intact, but checked only against the key the PDF carries: it proves nothing about who
# signed, so it must not pass for "valid" in a script (docs/certificate.md).
INTEGRITY_ONLY_EXIT = 8


def register(sub) -> None:
    p = sub.add_parser(
        "verify",
        help=_("check signed certificates (JSON or PDF) offline; exit 0 only if all are valid"),
        description=_(
            "Checks each FILE (a DSSE envelope: an erasure certificate or an audit report; or a certificate PDF, "
            "by the envelope attached to it and the facts its page shows) for envelope shape, an Ed25519 signature "
            "by a trusted station key, the JSON Schema, and internal consistency. Without --key/--keys/--collector, "
            "trusts the local station key; with none, a PDF is checked against the key attached to it, which "
            "proves integrity only (exit 8)."
        ),
    )
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("--bundle", metavar="ZIP",
                   help=_("check a donor's lot bundle instead: every signature, the report against the certificates, "
                          "the counts (docs/lots.md); exit 0 valid, 6 refused"))
    p.add_argument("--collector-key", metavar="PUBKEY",
                   help=_("with --bundle: the collector's public key (PEM) to pin, obtained from the collector itself"))
    keys = p.add_mutually_exclusive_group()
    keys.add_argument("--key", metavar="PUBKEY", help=_("a station public key (PEM file) to trust"))
    keys.add_argument("--keys", metavar="DIR", help=_("a directory of station public keys (*.pem) to trust"))
    keys.add_argument("--collector", metavar="URL",
                      help=_("trust the station keys this collector publishes (URL/api/v1/keys), revocations included"))
    p.add_argument("--json", action="store_true", help=_("print one JSON object per file (a list) on stdout"))
    add_state_dir_options(p)
    p.set_defaults(func=run)


def trusted_keys(args, *, optional: bool = False) -> dict | None:
    """The keys given on the command line, else the local station's; None if there are
    none and ``optional`` (PDFs then fall back on their own key)."""
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
    if optional:
        return None
    raise UsageError(T_("a key is needed: give --key PUBKEY, --keys DIR or --collector URL (no station key in {state})",
                        state=state))


def _read(name: str) -> bytes | OSError:
    """The file's bytes, bounded: /dev/zero or a huge file is refused as a file that cannot
    be a certificate, instead of being read into memory."""
    try:
        return read_bounded(name, CERTIFICATE_MAX)
    except OSError as exc:
        return exc


def _unreadable(exc: OSError):
    from agent.certify.check import MISSING_FILE, CheckReport

    why = "no such file" if isinstance(exc, FileNotFoundError) else f"cannot read ({exc.strerror or exc})"
    return CheckReport(False, [f"{MISSING_FILE}: {why}"], codes=[MISSING_FILE])


def run(args) -> int:
    from agent.certify import check
    from agent.certify.envelope import PAYLOAD_TYPES
    from agent.certify.pdf_check import check_pdf, is_pdf
    from agent.certify.pdf_embed import grouped
    from agent.certify.published_keys import fetch_keys
    from agent.certify.reasons import explain

    if args.bundle:
        if args.files:
            raise UsageError(T_("give either --bundle ZIP or certificate FILEs, not both"))
        return run_bundle(args)
    if args.collector_key:
        raise UsageError(T_("--collector-key goes with --bundle"))
    if not args.files:
        raise UsageError(T_("give certificate FILEs to check, or --bundle ZIP"))

    published = fetch_keys(args.collector) if args.collector else None
    contents = {name: _read(name) for name in args.files}
    any_pdf = any(isinstance(data, bytes) and is_pdf(data) for data in contents.values())
    keys = published.keys if published else trusted_keys(args, optional=any_pdf)
    results = []
    all_valid, integrity_only = True, False
    for name, data in contents.items():
        pdf = isinstance(data, bytes) and is_pdf(data)
        only = False
        if isinstance(data, OSError):
            report = _unreadable(data)
        elif pdf:
            checked = check_pdf(data, keys)
            report, only = checked.report, checked.integrity_only
        elif keys is None:
            report = check.CheckReport(False, ["unknown-key: a key is needed for a JSON certificate: "
                                               "give --key, --keys or --collector"], codes=["unknown-key"])
        else:
            report = check.check_certificate(data, keys, payload_type=PAYLOAD_TYPES)
        if report.valid and published:
            problem = published.revocation_problem(report.key_id, (report.payload or {}).get("issued_at"))
            if problem:
                report.valid = False
                report.codes.insert(0, "revoked-key")
                report.reasons.insert(0, problem)
        all_valid &= report.valid
        integrity_only |= report.valid and only
        results.append({"file": name, **report.to_dict(), "certificate_id": _id(report.payload),
                        "integrity_only": report.valid and only})
        if not report.valid:
            reason = explain(report.codes[0] if report.codes else None, report.reason, i18n.current())
            say(_("{file}: INVALID: {reason}").format(file=name, reason=reason))
        elif only:
            say(_("{file}: intact, integrity only: {summary}; checked only with the key attached to the PDF "
                  "(fingerprint {fingerprint}, as printed on its page), which proves the PDF was not altered, "
                  "not who signed it: trust it by giving the key your collector or workshop publishes "
                  "(--key or --collector)").format(file=name, summary=_summary(report),
                                                   fingerprint=grouped(report.key_id or "")))
        else:
            where = published.note(report.key_id) if published else ""
            line = _("{file}: valid: {summary}").format(file=name, summary=_summary(report))
            if where:
                line += "; " + i18n.localize(where)
            if pdf:
                line += "; " + _("the page matches its attached certificate")
            say(line)
    if args.json:
        emit_json(results)
    if not all_valid:
        return INVALID_EXIT
    return INTEGRITY_ONLY_EXIT if integrity_only else 0


def run_bundle(args) -> int:
    """One line: valid with the figures, or INVALID with the first reason (exit 6)."""
    from agent.certify.bundle import verify_bundle
    from agent.certify.keys import load_public_keys

    pinned = None
    pin = args.collector_key or args.key
    if args.keys:
        raise UsageError(T_("--bundle takes the collector key with --collector-key PUBKEY, not --keys"))
    if pin:
        try:
            pinned = load_public_keys(pin)
        except CertificateError as exc:
            raise UsageError(f"--collector-key: {exc}") from None
    try:
        r = verify_bundle(args.bundle, pinned)
    except CertificateError as exc:
        say(_("{file}: INVALID: {reason}").format(file=args.bundle, reason=exc.localized()))
        if args.json:
            emit_json({"file": args.bundle, "valid": False, "reason": str(exc)})
        return 6
    reen = r.reen
    trust = (_("collector key pinned") if r.pinned
             else _("collector key NOT pinned (taken from the bundle: integrity proven, not origin; give "
                    "--collector-key)"))
    say(_("{file}: valid: lot {lot}, {declared} devices declared, {certificates} certificates, {audits} audit "
          "reports; received {received}, reused {reused}, recycled {recycled}, destroyed {destroyed}; {trust} {key}")
        .format(file=args.bundle, lot=r.lot, declared=r.counts.get("declared"), certificates=r.certificates,
                audits=r.audit_reports, received=reen.get("received"), reused=reen.get("reused"),
                recycled=reen.get("recycled"), destroyed=reen.get("destroyed"), trust=trust,
                key=r.collector_key_id[:16]))
    if args.json:
        emit_json({"file": args.bundle, "valid": True, "lot": r.lot, "pinned": r.pinned, "counts": r.counts,
                   "reen": reen, "collector_key_id": r.collector_key_id})
    return 0


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
