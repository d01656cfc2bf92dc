"""Lot records: create, find and list them, each within what the asker may see.

A certificate keeps its ``lot`` string; it belongs to the lot of that name in the workshop
of the station that uploaded it. The functions at the end hand a lot's declared devices,
certificates and audit reports to the pure reconciliation and report code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import case, func, select
from sqlalchemy.orm import aliased, defer

from agent.i18n import T_
from server_stub import fields
from server_stub.accounts import access, events
from server_stub.accounts.events import Actor
from server_stub.accounts.models import DONOR, WORKSHOP, Organisation
from server_stub.db import Database
from server_stub.errors import Conflict, Forbidden, Malformed, NotFound
from server_stub.lots.models import LANGUAGES, OPEN, DeclaredDevice, DestructionRecord, Lot
from server_stub.models import AuditDisk, AuditReport, Certificate, Station, utcnow


@dataclass
class LotView:
    """A lot as a list shows it: its record (when there is one) and its certificates."""

    name: str
    workshop: str | None
    donor: str | None
    status: str | None
    language: str | None
    received_on: date | None
    certificates: int
    successes: int
    lot_id: int | None = None
    workshop_id: int | None = None


def _org(s, ref: str | int | None, kind: str, what: str) -> Organisation | None:
    if ref is None:
        return None
    org = s.get(Organisation, ref) if isinstance(ref, int) else s.scalar(select(Organisation).where(Organisation.name == ref))
    if org is None:
        raise NotFound(f"no organisation {ref}")
    if org.kind != kind:
        raise Malformed(f"{what} {org.name} is a {org.kind}, not a {kind}")
    return org


def create_lot(db: Database, name: str, workshop: str | int, actor: Actor, *, donor: str | int | None = None,
               language: str = "fr", received_on: date | None = None, who: access.Principal | None = None) -> Lot:
    """A new open lot of ``workshop``, given by ``donor``. ``who`` (None: the CLI) must manage
    that workshop."""
    if problem := fields.lot_problem(name):
        raise Malformed(f"lot: {problem}")
    if language not in LANGUAGES:
        raise Malformed(f"language must be one of {', '.join(LANGUAGES)}")
    with db.session() as s, s.begin():
        w = _org(s, workshop, WORKSHOP, "workshop")
        d = _org(s, donor, DONOR, "donor")
        if who is not None and not who.manages(w.id):
            raise Forbidden(f"you do not manage workshop {w.name}")
        if s.scalar(select(Lot.id).where(Lot.workshop_id == w.id, Lot.name == name)) is not None:
            raise Conflict(f"workshop {w.name} has a lot {name!r} already")
        lot = Lot(name=name, workshop_id=w.id, donor_id=d.id if d else None, language=language,
                  received_on=received_on, status=OPEN, created_at=utcnow())
        s.add(lot)
        s.flush()
        events.record(s, actor, "lot:create", w.id, lot=name, donor=d.name if d else None, language=language,
                      received_on=received_on)
        if d is not None:  # the donor's admins see what was filed under their name
            events.record(s, actor, "lot:create", d.id, lot=name, workshop=w.name)
    return lot


def ensure_lot(s, name: str, workshop_id: int, actor: Actor) -> None:
    """The lot record a token or certificate names, created open (no donor yet) when the
    workshop has none of that name: lots named on the fly stay lots."""
    if s.scalar(select(Lot.id).where(Lot.workshop_id == workshop_id, Lot.name == name)) is None:
        s.add(Lot(name=name, workshop_id=workshop_id, language="fr", status=OPEN, created_at=utcnow()))
        events.record(s, actor, "lot:create", workshop_id, lot=name, implicit=True)


def visible_lots(db: Database, who: access.Principal, name: str | None = None,
                 workshop_id: int | None = None) -> list[Lot]:
    q = select(Lot).order_by(Lot.name, Lot.workshop_id)
    if workshop_id is not None:
        q = q.where(Lot.workshop_id == workshop_id)
    if (cond := access.lots(who)) is not None:
        q = q.where(cond)
    if name is not None:
        q = q.where(Lot.name == name)
    with db.session() as s:
        return list(s.scalars(q))


def list_lots(db: Database, who: access.Principal) -> list[LotView]:
    """Every lot this principal sees: lot records, and lot names certificates carry without
    a record (lots from before records, or named by a stick), each with its counts."""
    cond = access.certificates(who)
    w, d = aliased(Organisation), aliased(Organisation)
    counts = (select(Certificate.lot, Station.org_id, func.count().label("n"),
                     func.sum(case((Certificate.outcome == "success", 1), else_=0)).label("ok"))
              .join(Station, Station.id == Certificate.station_id).where(Certificate.lot.is_not(None))
              .group_by(Certificate.lot, Station.org_id))
    if cond is not None:
        counts = counts.where(cond)
    with db.session() as s:
        per: dict[tuple[str, int | None], tuple[int, int]] = {
            (r[0], r[1]): (int(r[2]), int(r[3] or 0)) for r in s.execute(counts)}
        q = (select(Lot, w.name, d.name).join(w, w.id == Lot.workshop_id).outerjoin(d, d.id == Lot.donor_id))
        if (lcond := access.lots(who)) is not None:
            q = q.where(lcond)
        views = []
        for lot, wname, dname in s.execute(q):
            n, ok = per.pop((lot.name, lot.workshop_id), (0, 0))
            views.append(LotView(lot.name, wname, dname, lot.status, lot.language, lot.received_on, n, ok, lot.id,
                                 lot.workshop_id))
        names = dict(s.execute(select(Organisation.id, Organisation.name)).all())
    # Certificates under a name with no record (a workshop's own stations): still listed.
    for (name, org_id), (n, ok) in per.items():
        views.append(LotView(name, names.get(org_id), None, None, None, None, n, ok, None, org_id))
    return sorted(views, key=lambda v: (v.name, v.workshop or ""))


def get_lot(db: Database, lot_id: int, who: access.Principal | None = None) -> Lot:
    """One lot record; 404 when it does not exist or ``who`` may not see it."""
    q = select(Lot).where(Lot.id == lot_id)
    if who is not None and (cond := access.lots(who)) is not None:
        q = q.where(cond)
    with db.session() as s:
        lot = s.scalar(q)
    if lot is None:
        raise NotFound(f"no lot {lot_id}")
    return lot


def find_lot(db: Database, name: str, workshop: str | int | None = None) -> Lot:
    """A lot by name (and workshop, when two workshops have a lot of that name)."""
    with db.session() as s:
        q = select(Lot).where(Lot.name == name)
        if workshop is not None:
            q = q.where(Lot.workshop_id == _org(s, workshop, WORKSHOP, "workshop").id)
        found = list(s.scalars(q))
    if not found:
        raise NotFound(f"no lot {name!r}")
    if len(found) > 1:
        raise Malformed(f"several workshops have a lot {name!r}: name the workshop")
    return found[0]


# ----------------------------------------------------------------------------- inputs of the lot report

def declared_devices(db: Database, lot: Lot) -> list[DeclaredDevice]:
    """The donor's inventory as imported, in the order of its lines."""
    with db.session() as s:
        return list(s.scalars(select(DeclaredDevice).where(DeclaredDevice.lot_id == lot.id)
                              .order_by(DeclaredDevice.line)))


def lot_certificates(db: Database, lot: Lot, *, envelopes: bool = True) -> list[Certificate]:
    """The certificates filed under this lot: its name, from its workshop's stations.
    ``envelopes=False`` leaves the envelopes in the database (the bundle reads them in
    batches: 5,000 of them are 30 MB)."""
    q = (select(Certificate).join(Station, Station.id == Certificate.station_id)
         .where(Certificate.lot == lot.name, Station.org_id == lot.workshop_id)
         .order_by(Certificate.received_at, Certificate.id))
    with db.session() as s:
        return list(s.scalars(q if envelopes else q.options(defer(Certificate.envelope, raiseload=True))))


def lot_audits(db: Database, lot: Lot, *, envelopes: bool = True) -> list[AuditReport]:
    """The audit reports of this lot: those filed under it (its name, from its workshop's
    stations: a machine with no disk has nothing else), and those of the machines whose
    disks its certificates cover (linked as the certificate pages link them: by audit id,
    else by disk serial and station; reports from before schema 3 carry no lot)."""
    certs = lot_certificates(db, lot, envelopes=False)
    audit = select(AuditReport) if envelopes else select(AuditReport).options(defer(AuditReport.envelope, raiseload=True))
    ids = {c.audit_ref for c in certs if c.audit_ref}
    by_serial = {(c.station_id, c.serial) for c in certs if not c.audit_ref and c.serial}
    with db.session() as s:
        found = {a.id: a for a in s.scalars(audit.join(Station, Station.id == AuditReport.station_id)
                                             .where(AuditReport.lot == lot.name, Station.org_id == lot.workshop_id))}
        if ids:
            found.update({a.id: a for a in s.scalars(audit.where(AuditReport.id.in_(ids)))})
        if by_serial:
            serials = {serial for _, serial in by_serial}
            for a, serial in s.execute(audit.add_columns(AuditDisk.serial)
                                       .join(AuditDisk, AuditDisk.audit_id == AuditReport.id)
                                       .where(AuditDisk.serial.in_(serials))):
                if (a.station_id, serial) in by_serial:
                    found[a.id] = a
    return sorted(found.values(), key=lambda a: (a.received_at, a.id))


def destructions(db: Database, lot: Lot) -> list[DestructionRecord]:
    with db.session() as s:
        return list(s.scalars(select(DestructionRecord).where(DestructionRecord.lot_id == lot.id)
                              .order_by(DestructionRecord.destroyed_on, DestructionRecord.id)))


# ----------------------------------------------------------------------------- writes of the lot's life
# Persistence only: parsing, reconciliation and the report are pure code elsewhere
# (server_stub.lots.inventory, reconcile, report); these store their results, audited.

def _open_lot(s, lot_id: int) -> Lot:
    lot = s.get(Lot, lot_id, with_for_update=True)
    if lot is None:
        raise NotFound(f"no lot {lot_id}")
    if lot.status != OPEN:
        raise Conflict(T_("lot {lot} is closed", lot=lot.name))
    return lot


def replace_inventory(db: Database, lot_id: int, lines, actor: Actor, *, source: str | None = None) -> int:
    """Store the donor's inventory of an open lot, replacing any earlier import. ``lines``
    are records with ``line``, ``serial``, ``asset_tag``, ``model`` and ``device_type``
    (missing attributes are None). Returns the number of devices stored."""
    from sqlalchemy import delete

    with db.session() as s, s.begin():
        lot = _open_lot(s, lot_id)
        if s.scalar(select(func.count()).select_from(DestructionRecord)
                    .where(DestructionRecord.lot_id == lot.id, DestructionRecord.declared_device_id.is_not(None))):
            raise Conflict(T_("lot {lot} has destruction records of its declared devices: its inventory can no "
                              "longer be replaced", lot=lot.name))
        s.execute(delete(DeclaredDevice).where(DeclaredDevice.lot_id == lot.id))
        n = 0
        for item in lines:
            s.add(DeclaredDevice(lot_id=lot.id, line=int(item.line), serial=getattr(item, "serial", None),
                                 asset_tag=getattr(item, "asset_tag", None), model=getattr(item, "model", None),
                                 device_type=getattr(item, "device_type", None)))
            n += 1
        events.record(s, actor, "lot:import", lot.workshop_id, lot=lot.name, devices=n, source=source)
    return n


def record_destruction(db: Database, lot_id: int, actor: Actor, *, device_ref: str, person: str, method: str,
                       destroyed_on: date, weee_partner: str, declared_device_id: int | None = None
                       ) -> DestructionRecord:
    """A device of an open lot that was destroyed instead of sanitized: who, how, when, and
    which WEEE partner took it."""
    for name, value in (("device", device_ref), ("person", person), ("method", method),
                        ("WEEE partner", weee_partner)):
        if not isinstance(value, str) or not value.strip() or len(value) > 200 or not value.isprintable():
            raise Malformed(f"a destruction record needs the {name} (printable, at most 200 characters)")
    with db.session() as s, s.begin():
        lot = _open_lot(s, lot_id)
        if declared_device_id is not None and s.scalar(
                select(DeclaredDevice.id).where(DeclaredDevice.id == declared_device_id,
                                                DeclaredDevice.lot_id == lot.id)) is None:
            raise NotFound(f"no declared device {declared_device_id} in lot {lot.name}")
        rec = DestructionRecord(lot_id=lot.id, declared_device_id=declared_device_id, device_ref=device_ref,
                                person=person, method=method, destroyed_on=destroyed_on, weee_partner=weee_partner,
                                recorded_at=utcnow(), recorded_by=actor.name)
        s.add(rec)
        events.record(s, actor, "lot:destruction", lot.workshop_id, lot=lot.name, device=device_ref, method=method,
                      destroyed_on=destroyed_on, weee_partner=weee_partner, person=person)
    return rec


def mark_closed(db: Database, lot_id: int, actor: Actor, *, report_envelope: str, reason: str | None = None) -> Lot:
    """Close an open lot with its signed report (the decision whether it may close, and
    the report, are the caller's). A closed lot takes no new station and no new import."""
    with db.session() as s, s.begin():
        lot = _open_lot(s, lot_id)
        lot.status = "closed"
        lot.closed_at = utcnow()
        lot.closed_by = actor.name
        lot.close_reason = reason
        lot.report_envelope = report_envelope
        events.record(s, actor, "lot:close", lot.workshop_id, lot=lot.name, reason=reason)
        if lot.donor_id is not None:
            events.record(s, actor, "lot:close", lot.donor_id, lot=lot.name, reason=reason)
    return lot
