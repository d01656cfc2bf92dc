"""A donor's lot made of real signed audit reports and certificates (the agent's own payload
builder and signer), for the lot tests: reconciliation, report, bundle, verify --bundle."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from agent.certify.envelope import AUDIT_TYPE, ERASURE_TYPE, dump_envelope, envelope_digest, sign_envelope
from agent.certify.keys import StationKey
from collector.certs import erasure_payload  # tests/collector, a namespace package beside this file

from server_stub.lots.reconcile import AuditFact, CertificateFact, Destruction

# The declared inventory, as a French Excel would export it (semicolons, Windows-1252).
INVENTORY_CSV = ("N° de série;N° d'inventaire;Modèle;Type;Marque\r\n"
                 "PF1-AAAA;REG-0001;ThinkPad T480;Portable;Lenovo\r\n"
                 ";REG-0002;EliteBook 840 G5;Portable;HP\r\n"
                 "M3NODISK;REG-0003;Chromebook 14;Portable;Acer\r\n"
                 "M4FAILED;REG-0004;Latitude 5490;Portable;Dell\r\n"
                 "M5BROKEN;REG-0005;Latitude 5490;Portable;Dell\r\n"
                 "M6LOST;REG-0006;ThinkPad X270;Portable;Lenovo\r\n"
                 "D7LOOSE;;Disque 2,5\";Disque dur;Seagate\r\n").encode("cp1252")


def audit_payload(key: StationKey, machine_serial: str | None, disks: list[str], *, asset_tag: str | None = None,
                  verdict: str | None = "reuse", lot: str = "LOT-A", issued_at: str = "2026-11-27T09:59:00Z") -> dict:
    p = {
        "schema_version": 1, "report_id": str(uuid.uuid4()), "issued_at": issued_at, "lot": lot,
        "machine": {"dmi": {"system_vendor": "LENOVO", "system_product": "ThinkPad T480",
                            "system_serial": machine_serial, "chassis_asset_tag": asset_tag}},
        "disks": [{"device": f"/dev/sd{chr(97 + i)}", "serial": s, "model": "TestDisk 1000", "verdict": "good",
                   "smart": None} for i, s in enumerate(disks)],
        "verdict": verdict,
        "station": {"key_id": key.key_id, "hostname": "station-test"},
        "agent": {"name": "ardoise", "version": "0.1.0"},
    }
    return p


@dataclass
class SampleLot:
    stations: list[StationKey]
    audits: list[tuple[dict, bytes]] = field(default_factory=list)  # (payload, envelope file bytes)
    certificates: list[tuple[dict, bytes]] = field(default_factory=list)
    destructions: list[Destruction] = field(default_factory=list)
    def add_audit(self, key: StationKey, *a, no_disk: bool = False, **kw) -> dict:
        p = audit_payload(key, *a, **kw)
        if no_disk:  # as the agent writes it (agent/certify/audit_report.py, StorageState)
            p["storage"] = {"state": "no_disk_found", "reasons": ["no drive found"], "controllers": []}
        self.audits.append((p, dump_envelope(sign_envelope(p, AUDIT_TYPE, key))))
        return p

    def add_certificate(self, key: StationKey, serial: str, **kw) -> dict:
        p = erasure_payload(key, serial, **kw)
        self.certificates.append((p, dump_envelope(sign_envelope(p, ERASURE_TYPE, key))))
        return p

    def certificate_facts(self) -> list[CertificateFact]:
        return [CertificateFact.from_payload(p, envelope_digest(e)) for p, e in self.certificates]

    def audit_facts(self) -> list[AuditFact]:
        return [AuditFact.from_payload(p, envelope_digest(e)) for p, e in self.audits]


def sample_lot() -> SampleLot:
    """Two stations; one device of each state of docs/lots.md, and one extra."""
    k1, k2 = StationKey.generate(), StationKey.generate()
    lot = SampleLot([k1, k2])
    a1 = lot.add_audit(k1, "PF1AAAA", ["D1"])
    lot.add_certificate(k1, "D1", audit_id=a1["report_id"], verdict="good")
    # Asset tag only in the inventory; two drives, one failed then wiped again on the other station.
    a2 = lot.add_audit(k2, "M2", ["D2A", "D2B"], asset_tag="REG-0002")
    lot.add_certificate(k2, "D2A", audit_id=a2["report_id"], outcome="failed", finished_at="2026-11-27T10:00:15Z")
    lot.add_certificate(k2, "D2A", audit_id=a2["report_id"], verdict="good", finished_at="2026-11-28T10:00:15Z")
    lot.add_certificate(k2, "D2B", audit_id=a2["report_id"], verdict="good")
    lot.add_audit(k1, "M3NODISK", [], no_disk=True, verdict="recycle")
    a4 = lot.add_audit(k1, "M4FAILED", ["D4"])
    lot.add_certificate(k1, "D4", audit_id=a4["report_id"], outcome="failed")
    lot.destructions.append(Destruction("D4", "Sam Durand", "shredding", "2026-11-30", "Envie 2E Lyon"))
    lot.destructions.append(Destruction("M5BROKEN", "Sam Durand", "shredding", "2026-11-30", "Envie 2E Lyon"))
    lot.add_certificate(k2, "D7LOOSE")  # a loose drive, no audit, no SMART verdict
    lot.add_certificate(k2, "X1EXTRA", verdict="good")  # wiped, never declared
    return lot
