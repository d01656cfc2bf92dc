"""A stored lot through the pure lot code: import an inventory, reconcile, close with a
signed report, stream the donor's bundle. The CLI (``ardoise-collector lot ...``) and the
lot page call these; persistence is ``lots.service``, the logic is ``inventory``,
``reconcile``, ``report`` and ``bundle``.
"""

from __future__ import annotations

import base64
import json
from datetime import date
from typing import Iterator

from sqlalchemy import select

from agent.certify.envelope import dump_envelope, envelope_digest
from agent.certify.keys import StationKey
from agent.i18n import DEFAULT_TIMEZONE, T_
from server_stub.accounts.events import Actor
from server_stub.accounts.models import Organisation
from server_stub.db import Database
from server_stub.errors import Conflict, Malformed
from server_stub.lots import bundle, inventory, report, service
from server_stub.lots.models import OPEN, Lot
from server_stub.lots.reconcile import AuditFact, CertificateFact, Destruction, Reconciliation, reconcile
from server_stub.models import AuditReport, Certificate, Station, utcnow


class InventoryRejected(Malformed):
    """Some rows are bad: nothing was stored, and every bad line is named."""

    def __init__(self, problems: list[inventory.RowProblem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} bad row(s) in the inventory, nothing imported: "
                         + "; ".join(str(p) for p in problems))


def _payload(envelope_text: str) -> dict:
    return json.loads(base64.b64decode(json.loads(envelope_text)["payload"]))


def import_inventory(db: Database, lot: Lot, data: bytes, actor: Actor, *, source: str | None = None) -> int:
    """The donor's file, whole or not at all: one bad row and nothing is stored (a partial
    inventory would make the devices of the bad rows silently "not declared")."""
    inv = inventory.read_inventory(data)
    if inv.problems:
        raise InventoryRejected(inv.problems)
    if not inv.devices:
        raise Malformed(T_("the inventory has no device"))
    return service.replace_inventory(db, lot.id, [_Line(d) for d in inv.devices], actor, source=source)


class _Line:
    """An inventory device as ``replace_inventory`` takes it (``device_type``)."""

    def __init__(self, d: inventory.DeclaredDevice) -> None:
        self.line, self.serial, self.asset_tag, self.model, self.device_type = (d.line, d.serial, d.asset_tag,
                                                                                 d.model, d.type)


def facts(db: Database, lot: Lot):
    """What the lot's records say, as the pure code takes it: declared devices, certificate
    and audit facts (with their rows), destructions."""
    declared = [inventory.DeclaredDevice(d.line, d.serial, d.asset_tag, d.model, d.device_type)
                for d in service.declared_devices(db, lot)]
    cert_rows = service.lot_certificates(db, lot)
    audit_rows = service.lot_audits(db, lot)
    certs = [CertificateFact.from_payload(_payload(c.envelope), c.digest) for c in cert_rows]
    audits = [AuditFact.from_payload(_payload(a.envelope), a.digest) for a in audit_rows]
    destroyed = [Destruction(r.device_ref, r.person, r.method, r.destroyed_on.isoformat(), r.weee_partner)
                 for r in service.destructions(db, lot)]
    return declared, certs, audits, destroyed, cert_rows, audit_rows


def reconciliation(db: Database, lot: Lot) -> Reconciliation:
    declared, certs, audits, destroyed, _, _ = facts(db, lot)
    return reconcile(declared, certs, audits, destroyed)


def _names(db: Database, lot: Lot) -> tuple[str, str]:
    with db.session() as s:
        workshop = s.get(Organisation, lot.workshop_id)
        donor = s.get(Organisation, lot.donor_id) if lot.donor_id else None
        return (workshop.name if workshop else "", donor.name if donor else "")


def close(db: Database, lot: Lot, actor: Actor, key: StationKey, *, reason: str | None = None,
          is_manager: bool = True, co2: report.Co2Factor | None = None) -> dict:
    """Close an open lot: refused while a device is missing or not sanitized unless a manager
    gives a reason; the report is built, signed by ``key`` and stored, with the CO2 estimate
    when a factor is configured (``Co2Factor.from_settings``). Returns the payload."""
    if lot.status != OPEN:
        raise Conflict(T_("lot {lot} is closed", lot=lot.name))
    declared, certs, audits, destroyed, _, _ = facts(db, lot)
    if not declared:
        raise Conflict(T_("lot {lot} has no inventory: import the donor's inventory first", lot=lot.name))
    recon = reconcile(declared, certs, audits, destroyed)
    closure = report.may_close(recon, is_manager=is_manager, reason=reason)
    workshop, donor = _names(db, lot)
    received = lot.received_on or (lot.created_at.date() if lot.created_at else date.today())
    payload = report.build_report(
        report.LotInfo(lot.name, donor, workshop, lot.language, received.isoformat()), recon, certs, audits,
        collector_key_id=key.key_id, closed_at=utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"), closed_by=actor.name,
        closure=closure, co2=co2)
    envelope = report.sign_report(payload, key)
    service.mark_closed(db, lot.id, actor, report_envelope=dump_envelope(envelope).decode("utf-8"), reason=closure.reason)
    return payload


def stream(db: Database, lot: Lot, key: StationKey, *, base_url: str | None = None,
           zipname: str = "lot.zip", timezone: str | None = None) -> Iterator[bytes]:
    """The donor's bundle of a closed lot, in chunks. Each certificate PDF is the stored one
    in the lot's language (server_stub.certpdfs); one not stored yet is rendered here (about
    a tenth of a second) with the signed envelope and station key attached, as the
    certificate page serves it, and stored for the next bundle. Envelopes and PDFs are read
    in batches, so the memory used does not grow with the lot."""
    from server_stub import certpdfs
    from server_stub.lots.report_pdf import render_report_pdf

    if lot.status == OPEN or not lot.report_envelope:
        raise Conflict(f"lot {lot.name} is open: its bundle exists once it is closed (lot close)")
    rep = _payload(lot.report_envelope)
    listed = {c["digest"] for c in rep["certificates"]}
    audits_listed = {a["digest"] for a in rep["audit_reports"]}
    # The report is the list: a certificate uploaded to a closed lot is not in it, nor here.
    cert_rows = [c for c in service.lot_certificates(db, lot, envelopes=False) if c.digest in listed]
    audit_ids = [a.id for a in service.lot_audits(db, lot, envelopes=False) if a.digest in audits_listed]
    with db.session() as s:
        pems = {st.id: st.public_pem for st in s.query(Station).where(
            Station.id.in_({c.station_id for c in cert_rows}))}
        station_keys = {st.key_id: st.public_pem for st in s.query(Station).where(
            Station.key_id.in_(set(rep["station_keys"])))}
    language = lot.language or certpdfs.DEFAULT_LANGUAGE

    def certificates() -> Iterator[bundle.BundledCertificate]:
        for i in range(0, len(cert_rows), _BATCH):
            batch = cert_rows[i:i + _BATCH]
            envelopes = _envelopes(db, Certificate, [c.id for c in batch])
            pdfs = certpdfs.stored(db, envelopes, language)
            for c in batch:
                envelope = envelopes[c.id]
                pdf = pdfs.get(c.id)
                if pdf is None:
                    src = certpdfs.Source(c.id, c.digest, c.key_id, envelope, pems.get(c.station_id))
                    pdf = certpdfs.render(src, language, base_url, timezone or DEFAULT_TIMEZONE)
                    certpdfs.store(db, c.id, language, pdf)
                yield bundle.BundledCertificate(c.digest, envelope.encode("utf-8"), pdf)

    def audits() -> Iterator[bundle.BundledAudit]:
        for i in range(0, len(audit_ids), _BATCH):
            envelopes = _envelopes(db, AuditReport, audit_ids[i:i + _BATCH], digests=True)
            for audit_id in audit_ids[i:i + _BATCH]:
                digest, envelope = envelopes[audit_id]
                yield bundle.BundledAudit(digest, envelope.encode("utf-8"))

    report_bytes = lot.report_envelope.encode("utf-8")
    workshop, donor = _names(db, lot)
    yield from bundle.stream_bundle(
        lot=lot.name, donor=donor or workshop, language=lot.language, report_envelope=report_bytes,
        report_pdf=render_report_pdf(rep, envelope_digest(lot.report_envelope)), collector_key=key,
        station_keys=station_keys, certificates=certificates(), audits=audits(), zipname=zipname)


_BATCH = 200  # envelopes (~6 kB) and PDFs (~40 kB) read per query while streaming


def _envelopes(db: Database, model, ids: list[str], *, digests: bool = False) -> dict:
    with db.engine.connect() as conn:
        if digests:
            return {r[0]: (r[1], r[2]) for r in conn.execute(select(model.id, model.digest, model.envelope)
                                                              .where(model.id.in_(ids)))}
        return {r[0]: r[1] for r in conn.execute(select(model.id, model.envelope).where(model.id.in_(ids)))}
