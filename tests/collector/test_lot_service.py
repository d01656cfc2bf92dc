"""The lot records' service: what the reconciliation and the report are fed from, and the
writes of a lot's life (inventory, destruction, closing), each audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from server_stub.accounts import events, service as accounts
from server_stub.accounts.events import CLI
from server_stub.db import Database, migrate
from server_stub.errors import Conflict, Forbidden, Malformed, NotFound
from server_stub.lots import service as lots
from server_stub.accounts.access import Principal


@dataclass
class Line:
    line: int
    serial: str | None
    asset_tag: str | None = None
    model: str | None = None
    device_type: str | None = None


@pytest.fixture
def db():
    d = Database("sqlite:///:memory:")
    migrate(d)
    accounts.create_org(d, "Atelier", "workshop", CLI)
    accounts.create_org(d, "Région", "donor", CLI)
    yield d
    d.dispose()


def test_an_inventory_is_stored_in_line_order_and_replaced_whole(db):
    lot = lots.create_lot(db, "L1", "Atelier", CLI, donor="Région", received_on=date(2026, 11, 2))
    assert lots.replace_inventory(db, lot.id, [Line(3, "C"), Line(2, "B", "INV-2", "T480", "laptop")], CLI) == 2
    assert [(d.line, d.serial, d.asset_tag) for d in lots.declared_devices(db, lot)] == [(2, "B", "INV-2"),
                                                                                           (3, "C", None)]
    lots.replace_inventory(db, lot.id, [Line(2, "Z")], CLI, source="inventaire.csv")
    assert [d.serial for d in lots.declared_devices(db, lot)] == ["Z"]
    tags = [(e.tag, e.detail) for e in events.recent(db, None)]
    assert tags[0][0] == "lot:import" and '"source": "inventaire.csv"' in tags[0][1]


def test_a_destruction_is_recorded_with_person_method_date_and_weee_partner(db):
    lot = lots.create_lot(db, "L1", "Atelier", CLI)
    lots.replace_inventory(db, lot.id, [Line(2, "B")], CLI)
    dev = lots.declared_devices(db, lot)[0]
    rec = lots.record_destruction(db, lot.id, CLI, device_ref="B", person="Bob", method="shredding",
                                  destroyed_on=date(2026, 11, 30), weee_partner="Envie", declared_device_id=dev.id)
    assert [(r.device_ref, r.method, r.weee_partner) for r in lots.destructions(db, lot)] == [("B", "shredding", "Envie")]
    assert rec.recorded_by == "cli"
    with pytest.raises(Malformed):
        lots.record_destruction(db, lot.id, CLI, device_ref="B", person="", method="shredding",
                                destroyed_on=date(2026, 11, 30), weee_partner="Envie")
    with pytest.raises(NotFound):
        lots.record_destruction(db, lot.id, CLI, device_ref="B", person="Bob", method="m",
                                destroyed_on=date(2026, 11, 30), weee_partner="Envie", declared_device_id=999)
    with pytest.raises(Conflict):  # its declared devices are now referenced
        lots.replace_inventory(db, lot.id, [Line(2, "B")], CLI)


def test_a_closed_lot_keeps_its_report_and_takes_nothing_more(db):
    lot = lots.create_lot(db, "L1", "Atelier", CLI, donor="Région")
    closed = lots.mark_closed(db, lot.id, events.Actor("m@example.org", "10.0.0.1"), report_envelope="{}",
                              reason="two laptops stolen in transit")
    assert closed.status == "closed" and closed.closed_by == "m@example.org"
    for write in (lambda: lots.replace_inventory(db, lot.id, [Line(2, "B")], CLI),
                  lambda: lots.mark_closed(db, lot.id, CLI, report_envelope="{}"),
                  lambda: lots.record_destruction(db, lot.id, CLI, device_ref="B", person="Bob", method="m",
                                                  destroyed_on=date(2026, 11, 30), weee_partner="Envie")):
        with pytest.raises(Conflict):
            write()
    # The donor's admins see the closing in their part of the audit log.
    donor_id = lot.donor_id
    assert [e.tag for e in events.recent(db, frozenset({donor_id}))][:1] == ["lot:close"]


def test_creating_a_lot_checks_kinds_language_and_who_manages_the_workshop(db):
    with pytest.raises(Malformed):
        lots.create_lot(db, "L1", "Région", CLI)  # a donor is no workshop
    with pytest.raises(Malformed):
        lots.create_lot(db, "L1", "Atelier", CLI, donor="Atelier")
    with pytest.raises(Malformed):
        lots.create_lot(db, "L1", "Atelier", CLI, language="de")
    technician = Principal("t@example.org", "x", 7, ((2, "Atelier", "workshop", "technician"),))
    with pytest.raises(Forbidden):
        lots.create_lot(db, "L1", "Atelier", CLI, who=technician)
    lots.create_lot(db, "L1", "Atelier", CLI)
    assert lots.find_lot(db, "L1").name == "L1"
    with pytest.raises(NotFound):
        lots.get_lot(db, lots.find_lot(db, "L1").id, Principal("d", "x", 8, ((3, "Région", "donor", "donor-viewer"),)))
