"""Reconciliation of a declared inventory with real signed audit reports, certificates and
destruction records: one state per declared device, extras listed, destinations decided."""

from __future__ import annotations


from lot_samples import INVENTORY_CSV, sample_lot

from agent.outcome import CategoryCode, Result
from server_stub.lots.inventory import DeclaredDevice, read_inventory
from server_stub.lots.reconcile import (AuditFact, DeviceDestination as Dest, DeviceState as St, identifier,
                                        reconcile)


def _run(lot=None, **kw):
    lot = lot or sample_lot()
    inv = read_inventory(INVENTORY_CSV)
    assert inv.problems == [] and inv.encoding == "cp1252" and inv.delimiter == ";"
    return lot, reconcile(inv.devices, lot.certificate_facts(), lot.audit_facts(), lot.destructions, **kw)


def test_each_declared_device_gets_its_state_and_destination():
    _, r = _run()
    got = [(line.identifier, line.state, line.destination, line.category, line.matched_by) for line in r.lines]
    assert got == [
        ("PF1-AAAA", St.SANITIZED, Dest.REUSE, CategoryCode.CLEAR, "serial"),
        ("REG-0002", St.SANITIZED, Dest.REUSE, CategoryCode.CLEAR, "asset_tag"),
        ("M3NODISK", St.NO_DISK, Dest.RECYCLE, None, "serial"),
        ("M4FAILED", St.DESTROYED, Dest.REUSE, None, "serial"),  # only its drive was shredded
        ("M5BROKEN", St.DESTROYED, Dest.DESTROYED, None, None),
        ("M6LOST", St.MISSING, None, None, None),
        ("D7LOOSE", St.SANITIZED, Dest.REUSE, CategoryCode.CLEAR, "disk_serial"),
    ]
    assert r.counts() == {"sanitized": 3, "no_disk": 1, "destroyed": 2, "not_sanitized": 0, "missing": 1}
    assert [line.identifier for line in r.unresolved] == ["M6LOST"]


def test_a_later_success_supersedes_the_failure_of_the_same_drive():
    lot, r = _run()
    line = r.lines[1]
    assert [(d.serial, d.certificate.decision.result) for d in line.drives] == [("D2A", Result.SUCCESS),
                                                                              ("D2B", Result.SUCCESS)]
    failed = [f.digest for f in lot.certificate_facts() if f.decision.result == Result.FAILED and f.disk_serial == "D2A"]
    assert line.drives[0].superseded == tuple(failed) and line.drives[1].superseded == ()
    assert sorted(line.digests) == sorted(f.digest for f in lot.certificate_facts() if f.disk_serial in ("D2A", "D2B"))


def test_a_later_failure_puts_the_device_back_to_not_sanitized():
    lot = sample_lot()
    a1 = lot.audits[0][0]
    lot.add_certificate(lot.stations[0], "D1", audit_id=a1["report_id"], outcome="failed",
                        finished_at="2026-12-01T10:00:00Z")
    _, r = _run(lot)
    assert r.lines[0].state == St.NOT_SANITIZED and r.lines[0].destination is None
    assert r.lines[0].note == "drive D1 is failed: not sanitized"
    assert [line.identifier for line in r.unresolved] == ["PF1-AAAA", "M6LOST"]


def test_a_drive_the_audit_saw_without_a_certificate_is_not_sanitized():
    lot = sample_lot()
    lot.add_audit(lot.stations[0], "M6LOST", ["D6"])
    _, r = _run(lot)
    assert r.lines[5].state == St.NOT_SANITIZED and r.lines[5].note == "drive D6 has no certificate"


def test_wiped_but_undeclared_devices_are_extras():
    lot, r = _run()
    assert [(e.identifier, e.state, e.declared) for e in r.extras] == [("X1EXTRA", St.SANITIZED, None)]
    used = {d for line in r.lines + r.extras for d in line.digests}
    assert used == {f.digest for f in lot.certificate_facts()}


def test_a_recorded_destination_overrides_the_audit_verdict():
    _, r = _run(recorded={"reg-0001": Dest.RECYCLE})
    assert r.lines[0].destination == Dest.RECYCLE


def test_identifiers_match_loosely_but_firmware_placeholders_match_nothing():
    assert identifier("pf1-aaaa ") == identifier("PF1AAAA")
    assert identifier("To Be Filled By O.E.M.") == identifier("0000000") == ""
    lot = sample_lot()
    lot.add_audit(lot.stations[0], "To be filled by O.E.M.", ["DX"])
    devices = [DeclaredDevice(2, "To Be Filled By O.E.M.", None)]
    r = reconcile(devices, lot.certificate_facts(), lot.audit_facts())
    assert r.lines[0].state == St.MISSING


def test_a_machine_is_no_disk_when_its_audit_storage_state_is_no_disk_found():
    payload = {"report_id": "r1", "station": {"key_id": "k"}, "machine": {"dmi": {"system_serial": "S"}},
               "disks": [], "verdict": "reuse",
               "storage": {"state": "no_disk_found", "reasons": [], "controllers": []}}
    fact = AuditFact.from_payload(payload, "d" * 64)
    assert fact.no_disk and fact.machine_serial == "S"
    # Only the agent's decided state counts: unreachable storage, a stray flag, or a
    # report that lists a drive is not "no disk found".
    unreachable = {**payload, "storage": {**payload["storage"], "state": "storage_unreachable"}}
    assert AuditFact.from_payload(unreachable, "d").no_disk is False
    assert AuditFact.from_payload({**payload, "storage": None, "no_disk": True}, "d").no_disk is False
    with_drive = {**payload, "disks": [{"serial": "D9"}]}
    assert AuditFact.from_payload(with_drive, "d").no_disk is False


def test_the_latest_audit_of_a_machine_gives_its_verdict():
    lot = sample_lot()
    lot.add_audit(lot.stations[1], "PF1AAAA", ["D1"], verdict="recycle", issued_at="2026-12-01T09:00:00Z")
    _, r = _run(lot)
    assert len(r.lines[0].audits) == 2 and r.lines[0].destination == Dest.RECYCLE
