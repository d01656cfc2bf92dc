"""Database tables of the collector (SQLAlchemy 2 declarative models).

Envelopes are stored exactly as uploaded, so a certificate fetched back verifies with
``ardoise verify``; the indexed columns beside them are copies of payload fields, for
queries and pages, never the source of truth.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import BigInteger, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Bumped whenever a table changes; db.migrate() upgrades older databases step by step.
SCHEMA_VERSION = 4
# 2: organisations, people, roles, login sessions, the audit log, lot records
#    (server_stub/accounts/models.py, server_stub/lots/models.py); stations and
#    enrollment tokens belong to a workshop.
# 3: audit reports carry their lot, so a machine with no disk (an audit report and no
#    certificate) is found in its lot's reconciliation.
# 4: a certificate's destination, destination reason and WWN as columns (the lists read
#    them instead of decoding 5,000 envelopes); certificate_pdfs keeps each certificate's
#    rendered PDF for the donor's bundle (server_stub/certpdfs.py).


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite has no time zones; PostgreSQL does)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    __tablename__ = "schema_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EnrollmentToken(Base):
    """A one-time token an admin hands to a station; only its SHA-256 is kept."""

    __tablename__ = "enrollment_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    lot: Mapped[str | None] = mapped_column(String(200))
    # The workshop whose station this token enrolls (schema 2).
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    station_id: Mapped[str | None] = mapped_column(String(40))


class Station(Base):
    """An enrolled station key. Revoked stations keep their row: their certificates stay verifiable."""

    __tablename__ = "stations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(200), index=True)
    public_pem: Mapped[str] = mapped_column(Text)
    bearer_hash: Mapped[str] = mapped_column(String(64), unique=True)
    lot: Mapped[str | None] = mapped_column(String(200))
    # The workshop the station belongs to: who may see its certificates (schema 2).
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Certificate(Base):
    """One erasure certificate (DSSE envelope), unique by certificate id and by digest."""

    __tablename__ = "certificates"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    digest: Mapped[str] = mapped_column(String(200), unique=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    serial: Mapped[str | None] = mapped_column(String(200), index=True)
    model: Mapped[str | None] = mapped_column(String(200))
    manufacturer: Mapped[str | None] = mapped_column(String(200))
    media_type: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    lot: Mapped[str | None] = mapped_column(String(200), index=True)
    outcome: Mapped[str | None] = mapped_column(String(32), index=True)
    category: Mapped[str | None] = mapped_column(String(32))
    method: Mapped[str | None] = mapped_column(String(200))
    completed_at: Mapped[str | None] = mapped_column(String(40))
    audit_ref: Mapped[str | None] = mapped_column(String(200))
    # The outcome table's codes for the drive (agent.outcome.decision_of of the payload) and
    # its WWN, decided once at upload (schema 4): a 5,000-drive list reads them instead of
    # decoding every envelope. NULL only for a row the step-3 backfill could not read.
    destination: Mapped[str | None] = mapped_column(String(32))
    destination_reason: Mapped[str | None] = mapped_column(String(32))
    wwn: Mapped[str | None] = mapped_column(String(200))
    envelope: Mapped[str] = mapped_column(Text)


class CertificatePdf(Base):
    """A certificate's self-verifying PDF (agent.certify.pdf with its envelope and station key
    attached), rendered once in its lot's language, so that a donor's bundle of 5,000
    devices streams stored bytes instead of rendering for minutes (schema 4). A cache:
    the envelope stays the proof, and a missing or other-language PDF is rendered again."""

    __tablename__ = "certificate_pdfs"

    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.id"), primary_key=True)
    language: Mapped[str] = mapped_column(String(8))
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    rendered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditReport(Base):
    """A signed audit report of one machine; shown beside the certificates of its disks."""

    __tablename__ = "audit_reports"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    digest: Mapped[str] = mapped_column(String(200), unique=True)
    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    machine: Mapped[str | None] = mapped_column(String(400))
    # Filed like a certificate (ingest.lot_for): the payload's lot, else the station's (schema 3).
    lot: Mapped[str | None] = mapped_column(String(200), index=True)
    envelope: Mapped[str] = mapped_column(Text)


class AuditDisk(Base):
    """Which disk serials an audit report lists: the link to those disks' certificates."""

    __tablename__ = "audit_disks"

    audit_id: Mapped[str] = mapped_column(ForeignKey("audit_reports.id"), primary_key=True)
    serial: Mapped[str] = mapped_column(String(200), primary_key=True)

    __table_args__ = (Index("ix_audit_disks_serial", "serial"),)


class LiveProgress(Base):
    """The last progress update of one drive of one station (the dashboard's live list)."""

    __tablename__ = "live_progress"

    station_id: Mapped[str] = mapped_column(ForeignKey("stations.id"), primary_key=True)
    device: Mapped[str] = mapped_column(String(200), primary_key=True)
    serial: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200))
    phase: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="running")
    pass_index: Mapped[int | None] = mapped_column(Integer)
    pass_count: Mapped[int | None] = mapped_column(Integer)
    bytes_done: Mapped[int | None] = mapped_column(BigInteger)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger)
    throughput_bps: Mapped[float | None] = mapped_column(Float)
    eta_s: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
