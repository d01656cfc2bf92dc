"""Tables of lots: the record of a donor's lot, its declared inventory, and destructions.

Certificates keep their ``lot`` string; a certificate belongs to the Lot of that name in
the workshop of the station that uploaded it (``server_stub.lots.service``).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server_stub.models import Base, UTCDateTime, utcnow

OPEN, CLOSED = "open", "closed"
STATUSES = (OPEN, CLOSED)
LANGUAGES = ("fr", "en")


class Lot(Base):
    __tablename__ = "lots"
    __table_args__ = (UniqueConstraint("workshop_id", "name", name="uq_lots_workshop_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    workshop_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    donor_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    language: Mapped[str] = mapped_column(String(8), default="fr")
    received_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(254))
    close_reason: Mapped[str | None] = mapped_column(Text)
    # The signed lot report made at closing (a DSSE envelope, server_stub.lots.report).
    report_envelope: Mapped[str | None] = mapped_column(Text)


class DeclaredDevice(Base):
    """One line of the donor's inventory, as imported (line number of the source file)."""

    __tablename__ = "declared_devices"
    __table_args__ = (UniqueConstraint("lot_id", "line", name="uq_declared_devices_lot_line"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    serial: Mapped[str | None] = mapped_column(String(200), index=True)
    asset_tag: Mapped[str | None] = mapped_column(String(200), index=True)
    model: Mapped[str | None] = mapped_column(String(200))
    device_type: Mapped[str | None] = mapped_column(String(100))
    # reused | recycled | None (not decided yet): the REEN figures count these.
    destination: Mapped[str | None] = mapped_column(String(16))


class DestructionRecord(Base):
    """A device that was not sanitized and was destroyed: who, how, when, and which
    WEEE partner took it. ``device_ref`` is its serial or asset tag as declared."""

    __tablename__ = "destruction_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), index=True)
    declared_device_id: Mapped[int | None] = mapped_column(ForeignKey("declared_devices.id"), index=True)
    device_ref: Mapped[str] = mapped_column(String(200))
    person: Mapped[str] = mapped_column(String(254))
    method: Mapped[str] = mapped_column(String(200))
    destroyed_on: Mapped[date] = mapped_column(Date)
    weee_partner: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by: Mapped[str | None] = mapped_column(String(254))
