"""Real signed certificates and audit reports for the collector tests, made with the
agent's own payload builder and signer (nothing hand-written that could drift)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from agent.certify.envelope import AUDIT_TYPE, ERASURE_TYPE, sign_envelope
from agent.certify.keys import StationKey
from agent.certify.payload import build_payload
from agent.records import (Category, Disk, Media, Outcome, PassResult, StepResult, StepStatus, SanitizeResult,
                           Transport, VerificationResult)


@dataclass
class Operator:
    name: str = "Camille Martin"
    title: str = "Technician"
    organization: str = "Atelier Test"
    location: str = "Lyon"
    contact: str = "camille@example.org"


@dataclass
class Config:
    lot: str | None = "LOT-A"
    operator: Operator = None  # type: ignore[assignment]

    def __post_init__(self):
        self.operator = self.operator or Operator()


def sanitize_result(serial: str | None, *, outcome: str = "success", size: int = 1 << 30,
                    finished_at: str = "2026-11-27T10:00:15Z", wwn: str | None = None) -> SanitizeResult:
    disk = Disk(path="/dev/sdz", name="sdz", transport=Transport.SATA, media=Media.HDD, model="TestDisk 1000",
                vendor="ACME", serial=serial, size_bytes=size, target=True, reasons=["test disk"], wwn=wwn)
    ok = outcome == "success"
    p = PassResult(pattern="zero", bytes_written=size, duration_s=10.0)
    step = StepResult(method="overwrite:zero", category=Category.CLEAR if ok else None,
                      status=StepStatus.SUCCESS if ok else StepStatus.FAILED, passes=[p],
                      started_at="2026-11-27T10:00:00Z", finished_at="2026-11-27T10:00:10Z",
                      error=None if ok else "I/O error at LBA 2048")
    verification = VerificationResult(method="full", status="passed" if ok else "not-run",
                                      bytes_read=size if ok else 0, duration_s=5.0, coverage=1.0 if ok else 0.0)
    return SanitizeResult(disk=disk, outcome=Outcome(outcome), category=Category.CLEAR if ok else None,
                          method="overwrite:zero", steps=[step], verification=verification, bytes_written=size,
                          started_at="2026-11-27T10:00:00Z", finished_at=finished_at, duration_s=15.0,
                          throughput_bps=size // 10)


def erasure_payload(key: StationKey, serial: str | None, *, lot: str | None = "LOT-A", outcome: str = "success",
                    certificate_id: str | None = None, audit_id: str | None = None, verdict: str | None = None,
                    finished_at: str = "2026-11-27T10:00:15Z", size: int = 1 << 30, wwn: str | None = None) -> dict:
    # A minimal audit (dicts are read like the records): the run's report id and this
    # drive's SMART verdict, so the certificate names its audit and its destination fits.
    audit = None
    if audit_id is not None or verdict is not None:
        audit = {"report_id": audit_id, "disks": [{"disk": {"serial": serial, "path": "/dev/sdz"}, "verdict": verdict}]}
    return build_payload(sanitize_result(serial, outcome=outcome, finished_at=finished_at, size=size, wwn=wwn), audit,
                         Config(lot=lot), key_id=key.key_id, certificate_id=certificate_id or str(uuid.uuid4()),
                         hostname="station-test")


def erasure_envelope(key: StationKey, serial: str, **kw) -> bytes:
    return json.dumps(sign_envelope(erasure_payload(key, serial, **kw), ERASURE_TYPE, key), indent=2).encode()


def audit_envelope(key: StationKey, serials: list[str], *, lot: str | None = "LOT-A",
                   report_id: str | None = None) -> bytes:
    payload = {
        "schema_version": 1, "report_id": report_id or str(uuid.uuid4()), "issued_at": "2026-11-27T09:59:00Z", "lot": lot,
        "machine": {"system": {"vendor": "LENOVO", "model": "ThinkPad T480", "serial": "PF1ABCDE"}},
        "disks": [{"device": f"/dev/sd{chr(97 + i)}", "serial": s, "model": "TestDisk 1000", "verdict": "good",
                   "smart": None} for i, s in enumerate(serials)],
        "station": {"key_id": key.key_id, "hostname": "station-test"},
        "agent": {"name": "ardoise", "version": "0.1.0"},
    }
    return json.dumps(sign_envelope(payload, AUDIT_TYPE, key)).encode()
