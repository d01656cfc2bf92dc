"""The read side: searches, one certificate with its verification, lots, dashboard counts."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import defer
from sqlalchemy.orm.attributes import set_committed_value

from agent import outcome
from agent.certify import check
from agent.certify import envelope as env
from agent.certify.canonical import canonical_bytes
from agent.errors import CertificateError
from agent.i18n import N_, SOURCE_LANGUAGE, T_, Language, speaking
from server_stub import fields
from server_stub.db import Database
from server_stub.errors import Malformed, NotFound
from server_stub.models import AuditDisk, AuditReport, Certificate, Station
from server_stub.stations import iso, public_key_of

MAX_LIMIT = 500


@dataclass
class Filters:
    serial: str | None = None
    lot: str | None = None
    station: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    outcome: str | None = None
    limit: int = 100
    offset: int = 0
    # The asker's access condition on Certificate (server_stub.accounts.access); None: all.
    visible: object = None


def parse_when(value: str | None, name: str, *, end: bool = False) -> datetime | None:
    """A date (whole day, UTC) or an RFC 3339 time; ``Malformed`` otherwise."""
    if not value:
        return None
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            t = datetime.combine(d, time.min, tzinfo=timezone.utc)
            return t + timedelta(days=1) if end else t
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # In UTC now, as the database compares: 0001-01-01T00:00+23:59 has no UTC time.
        return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError):  # OverflowError: the day after 9999-12-31
        raise Malformed(T_("{name} must be a date (2026-11-27) or an RFC 3339 time", name=name)) from None


def certificate_id_of(c: Certificate) -> str:
    """The certificate id the station signed. Usually the row's id; a certificate whose id
    another station took first is stored under its digest (ingest), and read back here."""
    if c.id != c.digest:
        return c.id
    payload = _unverified_payload(_envelope_json(c.envelope))
    return str(payload.get("certificate_id") or c.id)


def _envelope_json(raw: str) -> dict:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def summary_json(c: Certificate, revoked: bool) -> dict:
    return {"id": c.id, "certificate_id": certificate_id_of(c), "serial": c.serial, "model": c.model, "manufacturer": c.manufacturer, "lot": c.lot,
            "outcome": c.outcome, "category": c.category, "method": c.method, "station_id": c.station_id,
            "station_revoked": revoked, "key_id": c.key_id, "digest": c.digest, "completed_at": c.completed_at,
            "received_at": iso(c.received_at), "destination": str(decision(c).destination),
            "destination_reason": str(decision(c).reason)}


def _conditions(f: Filters) -> list:
    conds = []
    if f.serial:
        conds.append(Certificate.serial == f.serial)
    if f.lot:
        conds.append(Certificate.lot == f.lot)
    if f.station:
        conds.append(Certificate.station_id == f.station)
    if f.since:
        conds.append(Certificate.received_at >= f.since)
    if f.until:
        conds.append(Certificate.received_at < f.until)
    if f.outcome:
        conds.append(Certificate.outcome == f.outcome)
    if f.visible is not None:
        conds.append(f.visible)
    return conds


# A list shows columns, never the envelope (6 kB each, 30 MB for a 5,000-drive lot, read
# from PostgreSQL's TOAST): it is loaded only for the rows that need it, a certificate
# stored under its digest (``certificate_id_of``) or one without usable stored codes.
_NEEDS_ENVELOPE = or_(Certificate.id == Certificate.digest, Certificate.destination.is_(None),
                      Certificate.destination_reason.is_(None),
                      Certificate.destination.not_in([str(d) for d in outcome.Destination]),
                      Certificate.destination_reason.not_in([str(r) for r in outcome.Reason]))
_ENVELOPE_IF_NEEDED = case((_NEEDS_ENVELOPE, Certificate.envelope), else_=None)


def _listed(s, conds: list, limit: int | None = None, offset: int = 0) -> list[tuple[Certificate, bool]]:
    q = (select(Certificate, Station.revoked_at, _ENVELOPE_IF_NEEDED).join(Station, Station.id == Certificate.station_id)
         .where(*conds).order_by(Certificate.received_at.desc(), Certificate.id)
         .options(defer(Certificate.envelope, raiseload=True)))
    if limit is not None:
        q = q.limit(limit).offset(max(0, offset))
    out = []
    for c, revoked_at, envelope in s.execute(q):
        if envelope is not None:
            set_committed_value(c, "envelope", envelope)
        out.append((c, revoked_at is not None))
    return out


def search(db: Database, f: Filters) -> tuple[int, list[tuple[Certificate, bool]]]:
    conds = _conditions(f)
    limit = max(1, min(MAX_LIMIT, f.limit))
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(Certificate).where(*conds))
        rows = _listed(s, conds, limit, f.offset)
    return int(total or 0), rows


@dataclass
class Verification:
    valid: bool
    reasons: list[str]
    station_revoked: bool

    def to_json(self) -> dict:
        return {"valid": self.valid, "reasons": self.reasons, "station_revoked": self.station_revoked}


@dataclass
class StoredCertificate:
    row: Certificate
    station: Station
    payload: dict
    envelope: dict
    verification: Verification
    audits: list[AuditReport] = field(default_factory=list)

    def to_json(self) -> dict:
        c = self.row
        return {"id": c.id, "certificate_id": certificate_id_of(c), "kind": "erasure", "digest": c.digest, "station_id": c.station_id,
                "station_name": self.station.name, "key_id": c.key_id, "received_at": iso(c.received_at),
                "lot": c.lot, "verification": self.verification.to_json(), "payload": self.payload,
                "envelope": self.envelope, "audit_ids": [a.id for a in self.audits]}


def reverify(raw: str, station: Station, payload_type: str) -> tuple[Verification, dict | None]:
    """Re-check a stored envelope with the agent's code; a revoked key still verifies, marked."""
    report = check.check_certificate(raw.encode("utf-8"), {station.key_id: public_key_of(station)},
                                     payload_type=payload_type)
    return Verification(report.valid, report.reasons, station.revoked_at is not None), report.payload


def get_certificate(db: Database, cert_id: str, visible=None, audits_visible=None) -> StoredCertificate:
    """One certificate; 404 when there is none, or when the ``visible`` condition (the
    asker's access) leaves it out: nobody learns that it exists."""
    with db.session() as s:
        row = s.get(Certificate, cert_id)
        if row is not None and visible is not None and s.scalar(
                select(Certificate.id).where(Certificate.id == cert_id, visible)) is None:
            row = None
        if row is None:
            raise NotFound(T_("no certificate {id}", id=cert_id))
        station = s.get(Station, row.station_id)
        # The certificate names its audit report (audit_id); one issued before that field
        # existed falls back to its serial. Either way only the same station's reports: a
        # serial is no proof that another station's machine held this drive.
        if row.audit_ref:
            linked = AuditReport.id == row.audit_ref
        else:
            linked = AuditReport.id.in_(select(AuditDisk.audit_id).where(AuditDisk.serial == row.serial))
        q = select(AuditReport).where(linked, AuditReport.station_id == row.station_id)
        if audits_visible is not None:
            q = q.where(audits_visible)
        audits = list(s.scalars(q.order_by(AuditReport.received_at.desc())))
    verification, payload = reverify(row.envelope, station, env.ERASURE_TYPE)
    envelope = json.loads(row.envelope)
    if payload is None:  # stored once valid, no longer verifies: show what it says anyway
        payload = _unverified_payload(envelope)
    return StoredCertificate(row, station, payload, envelope, verification, audits)


def _unverified_payload(envelope: dict) -> dict:
    try:
        payload = env.parse_json(base64.b64decode(envelope["payload"]), "payload")
        # A row stored before the verifier required canonical payloads may hold NaN or
        # nesting the pages cannot show; its verification already says why it is invalid.
        canonical_bytes(payload)
    except (CertificateError, ValueError, KeyError, TypeError):
        return {}
    return payload if isinstance(payload, dict) else {}


@dataclass
class StoredAudit:
    row: AuditReport
    station: Station
    payload: dict
    envelope: dict
    verification: Verification
    serials: list[str]

    def to_json(self) -> dict:
        a = self.row
        return {"id": a.id, "kind": "audit", "digest": a.digest, "station_id": a.station_id, "key_id": a.key_id,
                "received_at": iso(a.received_at), "verification": self.verification.to_json(),
                "payload": self.payload, "envelope": self.envelope, "disk_serials": self.serials}


def get_audit(db: Database, audit_id: str, visible=None) -> StoredAudit:
    with db.session() as s:
        row = s.get(AuditReport, audit_id)
        if row is not None and visible is not None and s.scalar(
                select(AuditReport.id).where(AuditReport.id == audit_id, visible)) is None:
            row = None
        if row is None:
            raise NotFound(T_("no audit report {id}", id=audit_id))
        station = s.get(Station, row.station_id)
        serials = list(s.scalars(select(AuditDisk.serial).where(AuditDisk.audit_id == audit_id)))
    verification, payload = reverify(row.envelope, station, env.AUDIT_TYPE)
    envelope = json.loads(row.envelope)
    return StoredAudit(row, station, payload or _unverified_payload(envelope), envelope, verification, serials)


def certificates_for_audit(db: Database, audit: AuditReport, serials: list[str], visible=None) -> list[Certificate]:
    """The certificates of the drives wiped in the run that made this report: those naming
    it (audit_id), plus, for certificates issued before that field, those of its disks'
    serials. Only from the report's own station (see ``get_certificate``)."""
    linked = Certificate.audit_ref == audit.id
    if serials:
        linked = linked | (Certificate.audit_ref.is_(None) & Certificate.serial.in_(serials))
    if visible is not None:
        linked = linked & visible
    with db.session() as s:
        return list(s.scalars(select(Certificate).where(linked, Certificate.station_id == audit.station_id)
                              .order_by(Certificate.received_at.desc())))


# What the lists need of each certificate (its decision, its WWN). Stored as columns at
# upload since schema 4; for a row without them, decoded once and kept by digest (a stored
# envelope never changes, so neither do they). Bounded: emptied past _CACHE_MAX entries.
_CACHE_MAX = 100_000


@dataclass(frozen=True)
class _Facts:
    decision: outcome.Decision
    wwn: str | None


_FACTS: dict[str, _Facts] = {}


def _remember(cache: dict, key: str, value):
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


def _payload_for_codes(raw: str) -> dict:
    """The payload, parsed once with the standard parser, for reading codes and the WWN.
    Nothing of it is displayed, so the canonical-form check of ``_unverified_payload`` (a
    full walk of the payload, two thirds of a cold 5,000-drive lot page) is not needed."""
    try:
        payload = json.loads(base64.b64decode(json.loads(raw)["payload"]))
    except (ValueError, KeyError, TypeError, RecursionError):  # binascii and Unicode errors are ValueErrors
        return {}
    return payload if isinstance(payload, dict) else {}


def _facts(c: Certificate) -> _Facts:
    stored = _stored_facts(c)
    if stored is not None:
        return stored
    f = _FACTS.get(c.digest)
    return f if f is not None else _remember(_FACTS, c.digest, _decoded_facts(c))


def _stored_facts(c: Certificate) -> _Facts | None:
    """The codes decided at upload (schema 4 columns): no envelope to decode. Result and
    category are the stored outcome and category through the same table."""
    if not (c.destination and c.destination_reason):
        return None
    try:
        destination, reason = outcome.Destination(c.destination), outcome.Reason(c.destination_reason)
    except ValueError:  # a code this collector does not know: decide from the payload
        return None
    result = outcome.result_code(c.outcome)
    category = outcome.category_code(c.category) if result == outcome.Result.SUCCESS else outcome.CategoryCode.NONE
    return _Facts(outcome.Decision(result, category, destination, reason), c.wwn or None)


def _decoded_facts(c: Certificate) -> _Facts:
    v = fields.verdict(_payload_for_codes(c.envelope), c.outcome, c.category)
    return _Facts(v.decision, v.wwn)


def decision(c: Certificate) -> outcome.Decision:
    """The outcome table's codes for a stored certificate: the signed ones, or for a
    certificate issued before they were recorded, the table applied to its facts."""
    return _facts(c).decision


def _wwn(c: Certificate) -> str | None:
    return _facts(c).wwn


def drive_keys(c: Certificate) -> set[tuple[str, str]]:
    """What makes two certificates the same drive: its serial or its WWN."""
    keys = {("serial", c.serial)} if c.serial else set()
    wwn = _wwn(c)
    if wwn:
        keys.add(("wwn", wwn))
    return keys


def _when_done(c: Certificate) -> str:
    return c.completed_at or iso(c.received_at) or ""


def latest_per_drive(certs: list[Certificate]) -> list[Certificate]:
    """One certificate per drive, the latest: a later success supersedes an earlier failure
    (and a later failure means the drive needs attention again). A drive with neither
    serial nor WWN cannot be matched and stands alone."""
    latest: list[Certificate] = []
    key_of: dict[tuple[str, str], int] = {}
    for c in sorted(certs, key=_when_done):
        keys = drive_keys(c)
        slot = next((key_of[k] for k in keys if k in key_of), None)
        if slot is None:
            slot = len(latest)
            latest.append(c)
        else:
            latest[slot] = c
        for k in keys:
            key_of[k] = slot
    return latest


@dataclass
class LotSummary:
    lot: str
    drives: int
    outcomes: Counter
    methods: Counter
    categories: Counter
    bytes_total: int  # capacity of the drives sanitized (their latest certificate is a success)
    certificates: list[tuple[Certificate, bool]]
    succeeded: int = 0  # drives whose latest certificate is a success
    destinations: Counter = field(default_factory=Counter)  # drives by destination code
    until: datetime | None = None  # only certificates received before this time

    @property
    def failed(self) -> int:
        """Drives needing attention: their latest certificate is not a success."""
        return self.drives - self.succeeded


def lot_summary(db: Database, lot: str, *, until: datetime | None = None, visible=None,
                allow_empty: bool = False) -> LotSummary:
    """The lot's certificates; with ``until``, only those received before it (a lot report
    closed at that time: what a stolen stick signs afterwards is not in it). ``visible``:
    only those the asker may see; ``allow_empty``: a lot record with no certificate yet."""
    # One query for the whole lot: pages of 500 would each sort the lot's rows again.
    with db.session() as s:
        rows = _listed(s, _conditions(Filters(lot=lot, until=until, visible=visible)))
    if not rows and not allow_empty:
        if until:
            raise NotFound(T_("no certificate in lot {lot} received before {until}", lot=lot, until=iso(until)))
        raise NotFound(T_("no certificate in lot {lot}", lot=lot))
    certs = [c for c, _ in rows]
    drives = latest_per_drive(certs)
    done = [c for c in drives if decision(c).sanitized]
    return LotSummary(lot=lot, drives=len(drives),
                      outcomes=Counter(c.outcome or "unknown" for c in certs),
                      methods=Counter(c.method or "none" for c in certs),
                      categories=Counter(str(decision(c).category) for c in drives),
                      bytes_total=sum(c.size_bytes or 0 for c in done), certificates=rows,
                      succeeded=len(done), destinations=Counter(str(decision(c).destination) for c in drives),
                      until=until)


def lots(db: Database, visible=None) -> list[tuple[str, int, int]]:
    """(lot, certificates, successes) for every lot name the ``visible`` certificates carry."""
    conds = [Certificate.lot.is_not(None)] + ([visible] if visible is not None else [])
    with db.session() as s:
        rows = s.execute(select(Certificate.lot, func.count(),
                                func.sum(case((Certificate.outcome == "success", 1), else_=0)))
                         .where(*conds).group_by(Certificate.lot).order_by(Certificate.lot)).all()
    return [(r[0], int(r[1]), int(r[2] or 0)) for r in rows]


CSV_COLUMNS = ("certificate_id", "serial", "manufacturer", "model", "media_type", "size_bytes", "outcome",
               "category", "method", "completed_at", "station_id", "station_revoked", "key_id", "digest",
               "received_at", "destination", "destination_reason", "advice")


# The header row a reader sees; the column order above does not change with the language.
CSV_HEADINGS = {"certificate_id": N_("certificate id"), "serial": N_("serial"), "manufacturer": N_("manufacturer"),
                "model": N_("model"), "media_type": N_("media type"), "size_bytes": N_("size (bytes)"),
                "outcome": N_("outcome"), "category": N_("NIST category"), "method": N_("method"),
                "completed_at": N_("completed at (UTC)"), "station_id": N_("station"),
                "station_revoked": N_("station revoked"), "key_id": N_("key id"), "digest": N_("digest (SHA-256)"),
                "received_at": N_("received at (UTC)"), "destination": N_("destination"),
                "destination_reason": N_("destination reason"), "advice": N_("what to do")}


def lot_csv(summary: LotSummary, lang: Language | None = None) -> str:
    """The lot's CSV. In English (no ``lang``) the header is the column codes, as always; in
    another language the header and the yes/no cells are in words; values stay the codes and
    UTC instants a spreadsheet can sort and filter."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    translated = lang is not None and lang.code != SOURCE_LANGUAGE
    w.writerow([lang.gettext(CSV_HEADINGS[c]) for c in CSV_COLUMNS] if translated else CSV_COLUMNS)
    yes, no = (lang.gettext("yes"), lang.gettext("no")) if translated else ("yes", "no")

    def advice(c: Certificate) -> str:  # the one sentence of the outcome table, in the CSV's language
        with speaking(lang or Language.get(SOURCE_LANGUAGE)):
            return outcome.advice(decision(c))

    for c, revoked in summary.certificates:
        w.writerow([_csv_safe(v) for v in (certificate_id_of(c), c.serial, c.manufacturer, c.model, c.media_type, c.size_bytes,
                                           c.outcome, c.category, c.method, c.completed_at, c.station_id,
                                           yes if revoked else no, c.key_id, c.digest, iso(c.received_at),
                                           decision(c).destination, decision(c).reason, advice(c))])
    return out.getvalue()


def _csv_safe(v) -> str:
    """Cells a spreadsheet would run as a formula get a quote first (CSV injection)."""
    s = "" if v is None else str(v)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


@dataclass
class Dashboard:
    today_total: int
    today_success: int
    today_failed: int
    all_total: int
    needing_attention: list[Certificate]
    recent: list[Certificate]


def _superseded(s, failures: list[Certificate]) -> set[str]:
    """Ids of the failures a later success of the same drive (serial or WWN) supersedes."""
    serials = {c.serial for c in failures if c.serial}
    oldest = min((c.received_at for c in failures), default=None)
    later = []
    if serials:
        later += list(s.scalars(select(Certificate).where(Certificate.outcome == "success",
                                                          Certificate.serial.in_(serials))))
    if oldest is not None:  # drives known by their WWN only
        later += list(s.scalars(select(Certificate).where(Certificate.outcome == "success", Certificate.serial.is_(None),
                                                          Certificate.received_at >= oldest).limit(MAX_LIMIT)))
    latest_success: dict[tuple[str, str], str] = {}
    for ok in later:
        for k in drive_keys(ok):
            latest_success[k] = max(latest_success.get(k, ""), _when_done(ok))
    return {f.id for f in failures if any(latest_success.get(k, "") > _when_done(f) for k in drive_keys(f))}


def dashboard(db: Database, visible=None) -> Dashboard:
    """Today's counts, the drives needing attention and the latest certificates, among
    those the ``visible`` condition (the asker's access) lets through."""
    start = datetime.combine(datetime.now(timezone.utc).date(), time.min, tzinfo=timezone.utc)
    scope = [visible] if visible is not None else []
    with db.session() as s:
        today = dict(s.execute(select(Certificate.outcome, func.count()).where(Certificate.received_at >= start, *scope)
                               .group_by(Certificate.outcome)).all())
        total = s.scalar(select(func.count()).select_from(Certificate).where(*scope)) or 0
        # Drives not sanitized (failed or interrupted), each with its destination from the
        # outcome table; a later success of the same drive takes it off the list.
        failures = list(s.scalars(select(Certificate).where(Certificate.outcome != "success", *scope)
                                  .order_by(Certificate.received_at.desc()).limit(4 * 50)))
        gone = _superseded(s, failures)
        attention = [c for c in failures if c.id not in gone][:50]
        recent = list(s.scalars(select(Certificate).where(*scope).order_by(Certificate.received_at.desc()).limit(10)))
    n = sum(today.values())
    return Dashboard(n, today.get("success", 0), n - today.get("success", 0), int(total), attention, recent)


def is_stored(db: Database, digest: str | None) -> bool:
    if not digest:
        return False
    with db.session() as s:
        return bool(s.scalar(select(func.count()).select_from(Certificate).where(Certificate.digest == digest))
                    or s.scalar(select(func.count()).select_from(AuditReport).where(AuditReport.digest == digest)))
