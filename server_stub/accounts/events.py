"""The append-only audit log: every administrative act is recorded by the service that
performs it, in the same transaction, so that no view can forget it (as Warehouse's
``record_event``)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from server_stub.accounts.models import AuditEvent
from server_stub.db import Database


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where: an email, ``admin (Basic)`` or ``cli``; an address or ``cli``."""

    name: str
    client: str | None = None


CLI = Actor("cli", "cli")


def record(s: Session, actor: Actor, tag: str, org_id: int | None = None, **detail) -> None:
    s.add(AuditEvent(actor=actor.name[:254], client=(actor.client or "")[:100] or None, tag=tag, org_id=org_id,
                     detail=json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)))


def recent(db: Database, org_ids: frozenset[int] | None, limit: int = 200) -> list[AuditEvent]:
    """The latest events, newest first; ``org_ids`` None means every event (collector-wide
    admins), else only the events of those organisations."""
    q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if org_ids is not None:
        q = q.where(AuditEvent.org_id.in_(org_ids))
    with db.session() as s:
        return list(s.scalars(q))
