"""What a label says, read once from an audit report and its certificates.

The erasure result is the audit page's: the outcome table's decision of each drive's
latest certificate (agent/outcome.py, through ``queries.decision``), so a label never says
"erased" where the collector's page says a drive needs attention.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import quote

from agent import outcome
from server_stub import queries
from server_stub.models import Certificate
from server_stub.queries import StoredAudit


class Erasure(enum.StrEnum):
    ERASED = "erased"  # every drive's latest certificate is a success
    NOT_ERASED = "not_erased"  # at least one drive's latest certificate is not
    NO_CERTIFICATE = "no_certificate"  # nothing was wiped on this machine (yet)


@dataclass(frozen=True)
class Drive:
    size_bytes: int | None
    media: str | None  # the certificate's media type (ssd, hdd, nvme...), None from an audit alone


@dataclass(frozen=True)
class LabelData:
    audit_id: str
    url: str  # the machine's page at the collector: what the QR code opens
    model: str | None
    serial: str | None
    cpu: str | None
    ram_bytes: int | None
    drives: tuple[Drive, ...]
    battery_percents: tuple[int, ...] | None  # () looked and found none; None not recorded
    erasure: Erasure
    category: outcome.CategoryCode | None  # the weakest category reached, when erased
    date: str | None  # YYYY-MM-DD: the last erasure, else the audit


# SMBIOS strings that mean "nobody filled this in" (dmidecode prints them as they are).
_PLACEHOLDERS = {"", "none", "n/a", "not applicable", "not specified", "default string", "system product name",
                 "system version", "to be filled by o.e.m.", "to be filled by oem", "0123456789", "unknown"}


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    s = " ".join(str(value).split())  # newlines and tabs from firmware strings become spaces
    return None if s.lower() in _PLACEHOLDERS else s


def _int(value: Any) -> int | None:
    try:
        return int(float(value))  # signed machine facts carry non-integral floats as strings
    except (TypeError, ValueError, OverflowError):
        return None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def model_of(machine: dict) -> str | None:
    dmi = _dict(machine.get("dmi"))
    vendor = _text(dmi.get("system_vendor"))
    product = _text(dmi.get("system_product"))
    version = _text(dmi.get("system_version"))
    # Lenovo puts the machine type ("20L5CTO1WW") in product_name and the name a customer
    # knows ("ThinkPad T480") in product_version.
    if vendor and vendor.upper().startswith("LENOVO") and version:
        product = version
    if not product:  # reports shaped {"system": {"vendor", "model"}} (older agents, tests)
        system = _dict(machine.get("system"))
        vendor = vendor or _text(system.get("vendor"))
        product = _text(system.get("model"))
    vendor = _VENDORS.get(vendor.lower(), vendor) if vendor else None
    if not product:
        return vendor
    if vendor and not product.lower().startswith(vendor.lower().split()[0]):
        return f"{vendor} {product}"
    return product


# The names SMBIOS gives vendors, as they are printed on the machines (and shorter).
_VENDORS = {"hewlett-packard": "HP", "hp": "HP", "dell inc.": "Dell", "lenovo": "Lenovo",
            "asustek computer inc.": "ASUS", "micro-star international co., ltd.": "MSI",
            "toshiba": "Toshiba", "fujitsu": "Fujitsu", "acer": "Acer", "apple inc.": "Apple"}


def serial_of(machine: dict) -> str | None:
    return _text(_dict(machine.get("dmi")).get("system_serial")) or _text(_dict(machine.get("system")).get("serial"))


_CPU_NOISE = ("(R)", "(r)", "(TM)", "(tm)", "®", "™")


def cpu_of(machine: dict) -> str | None:
    brand = _text(_dict(machine.get("cpu")).get("brand"))
    if not brand:
        return None
    for noise in _CPU_NOISE:
        brand = brand.replace(noise, "")
    brand = brand.split(" @ ")[0]  # the clock is the advertised one, not what sells the machine
    words = [w for w in brand.split() if w not in ("CPU", "Processor")]
    return " ".join(words) or None


def ram_of(machine: dict) -> int | None:
    memory = _dict(machine.get("memory"))
    # The modules' sum is what was sold (8 GiB); MemTotal is what is left after firmware.
    return _int(memory.get("installed_bytes")) or _int(memory.get("total_bytes"))


def batteries_of(machine: dict) -> tuple[int, ...] | None:
    batteries = machine.get("batteries")
    if not isinstance(batteries, list):
        return None
    if not batteries:
        return ()
    found = [p for p in (_int(_dict(b).get("health_percent")) for b in batteries) if p is not None]
    return tuple(max(0, p) for p in found) or None


def _date(value: Any) -> str | None:
    s = _text(value)
    return s[:10] if s and len(s) >= 10 and s[4] == "-" and s[7] == "-" else None


_CATEGORY_RANK = [outcome.CategoryCode.NONE, outcome.CategoryCode.CLEAR, outcome.CategoryCode.PURGE]


def label_data(audit: StoredAudit, certificates: Iterable[Certificate], base_url: str) -> LabelData:
    """The label of one machine: its audit report and the certificates of its drives
    (``queries.certificates_for_audit``)."""
    machine = _dict(audit.payload.get("machine"))
    drives_certs = queries.latest_per_drive(list(certificates))
    decisions = [queries.decision(c) for c in drives_certs]
    category = None
    if not drives_certs:
        erasure = Erasure.NO_CERTIFICATE
    elif all(d.sanitized for d in decisions):
        erasure = Erasure.ERASED
        # The machine is as sanitized as its least sanitized drive: Purge only if all are.
        category = min((d.category for d in decisions), key=_CATEGORY_RANK.index)
    else:
        erasure = Erasure.NOT_ERASED
    if drives_certs:
        # The drives wiped are the machine's own; the audit also lists the Ardoise stick.
        drives = tuple(Drive(c.size_bytes, c.media_type) for c in drives_certs)
    else:
        drives = tuple(Drive(_int(_dict(d).get("size_bytes")), None) for d in audit.payload.get("disks") or []
                       if isinstance(d, dict))
    dates = [d for d in (_date(c.completed_at) for c in drives_certs) if d]
    date = max(dates) if dates else _date(audit.payload.get("issued_at"))
    if date is None and audit.row.received_at is not None:
        date = audit.row.received_at.date().isoformat()
    return LabelData(
        audit_id=audit.row.id,
        url=base_url.rstrip("/") + "/audits/" + quote(audit.row.id, safe=""),
        model=model_of(machine), serial=serial_of(machine), cpu=cpu_of(machine), ram_bytes=ram_of(machine),
        drives=drives, battery_percents=batteries_of(machine), erasure=erasure, category=category, date=date,
    )


def audits_of_lot(db, lot: str) -> list[str]:
    """The audit reports of a lot's machines, oldest first: those filed under the lot (a
    machine with no disk has no certificate), those its certificates name (audit_id), and
    for certificates issued before that field, the same station's reports listing their
    serial. Who may see each is the caller's check."""
    from sqlalchemy import select

    from server_stub.models import AuditDisk, AuditReport

    named = select(Certificate.audit_ref).where(Certificate.lot == lot, Certificate.audit_ref.is_not(None))
    by_serial = (select(AuditDisk.audit_id)
                 .join(Certificate, Certificate.serial == AuditDisk.serial)
                 .join(AuditReport, AuditReport.id == AuditDisk.audit_id)
                 .where(Certificate.lot == lot, Certificate.audit_ref.is_(None),
                        AuditReport.station_id == Certificate.station_id))
    with db.session() as s:
        return list(s.scalars(select(AuditReport.id)
                              .where((AuditReport.lot == lot) | AuditReport.id.in_(named)
                                     | AuditReport.id.in_(by_serial))
                              .order_by(AuditReport.received_at, AuditReport.id)))
