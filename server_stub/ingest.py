"""Receiving one uploaded envelope: check it with the agent's own code, then store it once.

The order of the checks is the contract of docs/collector-api.md §2: shape (400), then
signature/schema/consistency through ``agent.certify.check.check_certificate`` (422), then
the insert, idempotent on the envelope digest (200 for a duplicate, no second row).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from agent.certify import check
from agent.certify import envelope as env
from agent.errors import CertificateError
from server_stub import fields
from server_stub.db import Database
from server_stub.errors import Malformed, Unprocessable
from server_stub.models import AuditDisk, AuditReport, Certificate, utcnow
from server_stub.stations import StationRef, public_key_of

ERASURE = "erasure"
AUDIT = "audit"
KINDS = {env.ERASURE_TYPE: ERASURE, env.AUDIT_TYPE: AUDIT}
# Statements built once: on SQLite, building one costs more than running it.
_INSERT_CERTIFICATE = insert(Certificate)
_CERTIFICATE_BY_DIGEST = select(Certificate.id).where(Certificate.digest == bindparam("digest"))
_AUDIT_BY_DIGEST = select(AuditReport.id).where(AuditReport.digest == bindparam("digest"))


@dataclass
class Ingested:
    created: bool  # False: this digest was already stored (a duplicate upload)
    kind: str
    id: str
    digest: str

    @property
    def url(self) -> str:
        return f"/api/v1/{'certificates' if self.kind == ERASURE else 'audits'}/{self.id}"


def parse(body: bytes) -> tuple[dict, str]:
    """The envelope dict and its digest, or ``Malformed`` (HTTP 400)."""
    try:
        envelope = env.parse_envelope(body)
        digest = env.envelope_digest(envelope)  # decodes the payload's base64
    except CertificateError as exc:
        raise Malformed(str(exc)) from None
    return envelope, digest


def ingest(db: Database, station: StationRef, body: bytes, *, only: str | None = None) -> Ingested:
    envelope, _ = parse(body)
    kind = KINDS.get(envelope["payloadType"])
    if kind is None or (only is not None and kind != only):
        wanted = [t for t, k in KINDS.items() if only in (None, k)]
        raise Unprocessable(f"{env.PAYLOAD_TYPE}: payloadType {envelope['payloadType']!r} is not accepted here "
                            f"(expected {' or '.join(wanted)})")
    # Only this station's key is trusted for its uploads: a certificate signed by another
    # station cannot be slipped in with this station's bearer.
    report = check.check_certificate(envelope, {station.key_id: public_key_of(station)},
                                     payload_type=envelope["payloadType"])
    if not report.valid:
        reason = report.reason
        if report.codes and report.codes[0] == env.UNKNOWN_KEY:
            reason = f"{env.UNKNOWN_KEY}: not signed by this station's key {station.key_id[:16]}..."
        raise Unprocessable(reason)
    raw = body.decode("utf-8")
    if kind == ERASURE:
        return _store_certificate(db, station, report, raw)
    return _store_audit(db, station, report, raw)


def _store_certificate(db: Database, station: StationRef, report: check.CheckReport, raw: str) -> Ingested:
    s = fields.summarize(report.payload)
    row = dict(id=s.id, digest=report.digest, station_id=station.id, key_id=report.key_id, received_at=utcnow(),
               serial=s.serial, model=s.model, manufacturer=s.manufacturer, media_type=s.media_type,
               size_bytes=s.size_bytes, lot=s.lot or station.lot, outcome=s.outcome, category=s.category,
               method=s.method, completed_at=s.completed_at, audit_ref=s.audit_ref, envelope=raw)
    try:
        with db.write_lock(), db.engine.begin() as conn:
            conn.execute(_INSERT_CERTIFICATE, row)
        return Ingested(True, ERASURE, s.id, report.digest)
    except IntegrityError:
        pass
    # Lost a race or a plain re-upload: the unique constraints decided, now say which one.
    with db.engine.connect() as conn:
        if conn.execute(_CERTIFICATE_BY_DIGEST, {"digest": report.digest}).first():
            return Ingested(False, ERASURE, s.id, report.digest)
    raise Unprocessable(f"certificate id {s.id} is already stored with a different digest")


def _store_audit(db: Database, station: StationRef, report: check.CheckReport, raw: str) -> Ingested:
    a = fields.summarize_audit(report.payload, report.digest)
    try:
        with db.write_lock(), db.engine.begin() as conn:
            conn.execute(insert(AuditReport), dict(id=a.id, digest=report.digest, station_id=station.id,
                                                   key_id=report.key_id, received_at=utcnow(), machine=a.machine,
                                                   envelope=raw))
            if a.serials:
                conn.execute(insert(AuditDisk), [dict(audit_id=a.id, serial=x) for x in a.serials])
        return Ingested(True, AUDIT, a.id, report.digest)
    except IntegrityError:
        pass
    with db.engine.connect() as conn:
        if conn.execute(_AUDIT_BY_DIGEST, {"digest": report.digest}).first():
            return Ingested(False, AUDIT, a.id, report.digest)
    raise Unprocessable(f"audit report id {a.id} is already stored with a different digest")
