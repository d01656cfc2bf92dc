"""Tables of organisations, people, memberships, login sessions and the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server_stub.models import Base, UTCDateTime, utcnow

# Kinds of organisation in the reuse chain (issue 13): one coordinator hands donors'
# lots to workshops; stations belong to a workshop.
COORDINATOR, WORKSHOP, DONOR = "coordinator", "workshop", "donor"
KINDS = (COORDINATOR, WORKSHOP, DONOR)

# Roles a person holds in one organisation, strongest first.
ADMIN, MANAGER, TECHNICIAN, DONOR_VIEWER = "admin", "manager", "technician", "donor-viewer"
ROLES = (ADMIN, MANAGER, TECHNICIAN, DONOR_VIEWER)

# The workshop that a database from before organisations migrates into (docs/collector.md).
DEFAULT_WORKSHOP = "Default workshop"


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    """A person. Only the argon2 hash of the password is kept."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Membership(Base):
    """One role of one person in one organisation."""

    __tablename__ = "memberships"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))


class LoginSession(Base):
    """A logged-in browser. The cookie holds a random token; only its SHA-256 is kept, so
    logging out (or disabling the person) ends the session on every worker at once."""

    __tablename__ = "login_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    client: Mapped[str | None] = mapped_column(String(100))


class AuditEvent(Base):
    """One administrative act: who, when, what, from where. Append-only: the services
    insert rows, nothing in the collector updates or deletes them."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(254))  # an email, "admin (Basic)" or "cli"
    client: Mapped[str | None] = mapped_column(String(100))  # address, or "cli"
    tag: Mapped[str] = mapped_column(String(64), index=True)  # e.g. "station:revoke"
    # The organisation the act concerns (its admins see it); None: collector-wide.
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON object
