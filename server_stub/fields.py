"""The few payload fields the collector indexes, read from a schema-valid payload.

The payload itself (agent/schemas/erasure-certificate.v1.json) stays the source of truth;
these copies only feed queries, lists and CSV exports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# One rule for lot names on both sides: the agent refuses at start what the collector
# would refuse at upload (after the wipe, when it is too late to fix).
from agent.config import LOT_MAX, lot_problem  # noqa: F401  (re-exported)
from agent.outcome import Decision, decision_of


def dig(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _text(value: Any, limit: int = 200) -> str | None:
    """An indexed copy of a payload field, for lists, search and CSV. The signed envelope
    keeps the exact value; the copy says where it differs instead of changing silently:
    PostgreSQL text cannot hold NUL, so a NUL is shown as ``\\x00``, and a value longer
    than its column ends with "…"."""
    if value is None:
        return None
    text = str(value).replace("\x00", "\\x00")
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass
class CertificateSummary:
    id: str
    serial: str | None
    model: str | None
    manufacturer: str | None
    media_type: str | None
    size_bytes: int | None
    lot: str | None
    outcome: str | None
    category: str | None
    method: str | None
    completed_at: str | None
    audit_ref: str | None
    destination: str | None = None
    destination_reason: str | None = None
    wwn: str | None = None


@dataclass(frozen=True)
class Verdict:
    """The outcome table's decision for a stored certificate, and the drive's WWN."""

    decision: Decision
    wwn: str | None


def verdict(payload: Any, outcome: str | None, category: str | None) -> Verdict:
    """What the lists need of a certificate: its signed codes (``decision_of``), or for a
    payload that cannot be read, the table applied to the stored outcome and category."""
    columns = {"sanitization": {"outcome": outcome, "category": category}}
    payload = payload if isinstance(payload, dict) else {}
    try:
        d = decision_of(payload or columns)
    except (AttributeError, TypeError):  # a legacy payload whose sections are not objects
        d = decision_of(columns)
    wwn = dig(payload, "media.wwn")
    return Verdict(d, _text(wwn) if isinstance(wwn, str) and wwn else None)


def summarize(p: dict) -> CertificateSummary:
    size = dig(p, "media.size_bytes")
    outcome, category = _text(dig(p, "sanitization.outcome"), 32), _text(dig(p, "sanitization.category"), 32)
    v = verdict(p, outcome, category)
    return CertificateSummary(
        id=_text(p["certificate_id"], 64),
        serial=_text(dig(p, "media.serial")),
        model=_text(dig(p, "media.model")),
        manufacturer=_text(dig(p, "media.manufacturer")),
        media_type=_text(dig(p, "media.media_type"), 64),
        size_bytes=size if isinstance(size, int) and not isinstance(size, bool) else None,
        lot=_text(p.get("lot")),
        outcome=outcome,
        category=category,
        method=_text(dig(p, "sanitization.method")),
        completed_at=_text(dig(p, "sanitization.finished_at") or p.get("issued_at"), 40),
        audit_ref=_text(p.get("audit_id") or dig(p, "audit.id")),
        destination=str(v.decision.destination),
        destination_reason=str(v.decision.reason),
        wwn=v.wwn,
    )


@dataclass
class AuditSummary:
    id: str
    machine: str | None
    serials: list[str]


def summarize_audit(p: dict, digest: str) -> AuditSummary:
    rid = p.get("report_id") or p.get("audit_id") or p.get("id") or digest
    m = p.get("machine") if isinstance(p.get("machine"), dict) else {}
    system = m.get("system") if isinstance(m.get("system"), dict) else m
    machine = " ".join(str(system.get(k)) for k in ("vendor", "model", "serial") if system.get(k)) or None
    serials = []
    for d in p.get("disks") or []:
        serial = dig(d, "serial") or dig(d, "disk.serial")
        if serial and _text(serial) not in serials:
            serials.append(_text(serial))
    return AuditSummary(_text(rid), _text(machine, 400), serials)
