"""The machine audit report as a signed payload (payloadType application/vnd.ardoise.audit+json).

The hardware report (what the donor's machine is, and each drive's health) is signed like
the erasure certificates, so a buyer or a donor can trust it as much.
"""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from typing import Any

from agent import __version__
from agent.certify.canonical import without_floats
from agent.certify.payload import disk_health
from agent.records import to_dict


def _get(obj: Any, *names: str) -> Any:
    for n in names:
        v = obj.get(n) if isinstance(obj, dict) else getattr(obj, n, None)
        if v not in (None, ""):
            return v
    return None


def build_audit_payload(
    audit: Any,
    config: Any = None,
    key: Any = None,
    *,
    key_id: str | None = None,
    lot: str | None = None,
    hostname: str | None = None,
) -> dict:
    """The signed form of a machine audit: machine facts, each disk's SMART verdict, the
    machine verdict. The lot is ``lot`` or the config's; the key id is ``key_id`` or the key's."""
    key_id = key_id or key.key_id
    if lot is None:
        lot = getattr(config, "lot", None)
    machine = _get(audit, "machine", "system")
    disks = []
    for entry in _get(audit, "disks", "drives") or []:
        d = _get(entry, "disk") or entry
        smart, verdict, reasons = disk_health(entry)
        disks.append({
            "device": _get(d, "path", "device"),
            "serial": _get(d, "serial"),
            "model": _get(d, "model"),
            "size_bytes": _get(d, "size_bytes"),
            "verdict": verdict,
            "verdict_reasons": reasons,
            "smart": smart,
        })
    machine_dict = without_floats(to_dict(machine)) if machine is not None else None
    payload = {
        "schema_version": 1,
        "report_id": str(uuid.uuid4()),
        "issued_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "lot": lot,
        "machine": machine_dict if isinstance(machine_dict, dict) or machine_dict is None else {"value": machine_dict},
        "disks": disks,
        "verdict": None if _get(audit, "verdict") is None else str(to_dict(_get(audit, "verdict"))),
        "verdict_reasons": [str(r) for r in (_get(audit, "reasons") or [])],
        "station": {"key_id": key_id, "hostname": hostname if hostname is not None else socket.gethostname()},
        "agent": {"name": "ardoise", "version": __version__},
    }
    # The organization heads the machine report, as it heads each certificate.
    organization = getattr(getattr(config, "operator", None), "organization", None)
    payload["organization"] = organization
    if organization is None:
        payload["organization_reason"] = "no organization set in the config"
    storage = _get(audit, "storage")
    if storage is not None:
        # The machine's storage state, decided before any disk was written: a collector
        # counts "no_disk_found" machines of a lot, and "storage_unreachable" is a FAILED machine.
        payload["storage"] = without_floats(to_dict(storage))
    if lot is None:
        payload["lot_reason"] = "no lot set in the config"
    if machine is None:
        payload["machine_reason"] = "the audit recorded no machine facts"
    return payload
