"""Receiving one uploaded envelope: check it with the agent's own code, then store it once.

The order of the checks is the contract of docs/collector-api.md §2: shape (400), then
signature/schema/consistency through ``agent.certify.check.check_certificate`` (422), then
the insert, idempotent on the envelope digest (200 for a duplicate, no second row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
_CERTIFICATE_BY_DIGEST = select(Certificate.id, Certificate.received_at).where(Certificate.digest == bindparam("digest"))
_AUDIT_BY_DIGEST = select(AuditReport.id, AuditReport.received_at).where(AuditReport.digest == bindparam("digest"))
_CERTIFICATE_OWNER = select(Certificate.station_id).where(Certificate.id == bindparam("id"))


@dataclass
class Ingested:
    created: bool  # False: this digest was already stored (a duplicate upload)
    kind: str
    id: str
    digest: str
    station_id: str = ""
    key_id: str = ""
    received_at: datetime | None = None  # of the first upload, for a duplicate too

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


def lot_for(station: StationRef, payload: dict, what: str = "certificate") -> str | None:
    """The lot a certificate or audit report is filed under. A station enrolled for a lot
    uploads only into that lot: a report naming another one is refused rather than refiled,
    so that the lot printed on it and the lot its report lists it under never differ."""
    lot = payload.get("lot")
    if lot is None:
        return station.lot
    problem = fields.lot_problem(lot)
    if problem:
        raise Unprocessable(f"lot: {problem}")
    if station.lot is not None and lot != station.lot:
        raise Unprocessable(f"lot: the {what} names lot {lot!r} but this station is enrolled for lot "
                            f"{station.lot!r}; fix the station's lot, or enroll it for that lot")
    return lot


def _store_certificate(db: Database, station: StationRef, report: check.CheckReport, raw: str) -> Ingested:
    s = fields.summarize(report.payload)
    now = utcnow()
    row = dict(id=s.id, digest=report.digest, station_id=station.id, key_id=report.key_id, received_at=now,
               serial=s.serial, model=s.model, manufacturer=s.manufacturer, media_type=s.media_type,
               size_bytes=s.size_bytes, lot=lot_for(station, report.payload), outcome=s.outcome,
               category=s.category, method=s.method, completed_at=s.completed_at, audit_ref=s.audit_ref,
               destination=s.destination, destination_reason=s.destination_reason, wwn=s.wwn, envelope=raw)
    done = Ingested(True, ERASURE, s.id, report.digest, station.id, report.key_id, now)
    if _insert(db, row):
        return done
    # Lost a race or a plain re-upload: the unique constraints decided, now say which one.
    if (dup := _duplicate(db, _CERTIFICATE_BY_DIGEST, report.digest)) is not None:
        return Ingested(False, ERASURE, dup[0], report.digest, station.id, report.key_id, dup[1])
    with db.engine.connect() as conn:
        owner = conn.execute(_CERTIFICATE_OWNER, {"id": s.id}).scalar()
    if owner == station.id:
        raise Unprocessable(f"certificate id {s.id} is already stored with a different digest")
    # Certificate ids are chosen by the stations, so unique only per station: another
    # station took this one first (by mistake or to squat it). The genuine certificate is
    # then stored under its digest, which nobody can take without the same payload.
    row["id"] = done.id = report.digest
    if _insert(db, row):
        return done
    if (dup := _duplicate(db, _CERTIFICATE_BY_DIGEST, report.digest)) is not None:
        return Ingested(False, ERASURE, dup[0], report.digest, station.id, report.key_id, dup[1])
    raise Unprocessable(f"certificate id {s.id} is already stored with a different digest")


def _insert(db: Database, row: dict) -> bool:
    try:
        with db.write_lock(), db.single.begin() as conn:  # one statement: no BEGIN/COMMIT round trips
            conn.execute(_INSERT_CERTIFICATE, row)
        return True
    except IntegrityError:
        return False


def _duplicate(db: Database, query, digest: str):
    with db.single.connect() as conn:
        return conn.execute(query, {"digest": digest}).first()


def _store_audit(db: Database, station: StationRef, report: check.CheckReport, raw: str) -> Ingested:
    a = fields.summarize_audit(report.payload, report.digest)
    lot = lot_for(station, report.payload, "audit report")
    now = utcnow()
    try:
        with db.write_lock(), db.engine.begin() as conn:
            conn.execute(insert(AuditReport), dict(id=a.id, digest=report.digest, station_id=station.id,
                                                   key_id=report.key_id, received_at=now, machine=a.machine,
                                                   lot=lot,
                                                   envelope=raw))
            if a.serials:
                conn.execute(insert(AuditDisk), [dict(audit_id=a.id, serial=x) for x in a.serials])
        return Ingested(True, AUDIT, a.id, report.digest, station.id, report.key_id, now)
    except IntegrityError:
        pass
    if (dup := _duplicate(db, _AUDIT_BY_DIGEST, report.digest)) is not None:
        return Ingested(False, AUDIT, dup[0], report.digest, station.id, report.key_id, dup[1])
    raise Unprocessable(f"audit report id {a.id} is already stored with a different digest")
