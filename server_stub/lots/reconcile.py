"""Reconciliation: what became of each device the donor declared.

Inputs are plain records the caller maps its rows onto: the declared devices
(``inventory.DeclaredDevice``), the signed facts of the lot's certificates
(``CertificateFact``) and audit reports (``AuditFact``), and the destruction records
(``Destruction``). The output is one ``LotLine`` per declared device, in the
inventory's order, and one per device that was wiped or audited but not declared
(``Reconciliation.extras``).

A declared device is matched by its serial (the machine's DMI serial, or a drive's own
serial for a loose drive) or its asset tag, compared by ``inventory.normalise``. The
certificates of a matched machine are found through its audit report too (the
certificate's ``audit_id``, per station), and by the drive serials the audit lists.
Each drive counts by its latest certificate (``queries.latest_per_drive``'s rule: a later
success supersedes an earlier failure, a later failure undoes an earlier success), and
every certificate's result, category and destination is ``agent.outcome``'s decision.

States (docs/lots.md):
- ``sanitized``: every drive's latest certificate is a success, Clear or Purge;
- ``no_disk``: an audit report says the machine had no drive, and no certificate exists;
- ``destroyed``: a drive not sanitized (or the whole device) has a destruction record;
- ``not_sanitized``: the device was seen, but a drive failed, was interrupted or has no
  certificate, and no destruction is recorded: it blocks closing, like a missing one;
- ``missing``: nothing was found for it.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from agent import outcome
from agent.outcome import CategoryCode, Decision, Destination, MachineCode, Result
from server_stub.lots.inventory import DeclaredDevice, normalise

# DMI fields that firmware fills with a placeholder: identical on thousands of machines,
# so they identify nothing (matching on them would merge unrelated devices).
PLACEHOLDERS = frozenset(normalise(s) for s in (
    "To Be Filled By O.E.M.", "Default string", "System Serial Number", "Chassis Serial Number", "Not Specified",
    "Not Applicable", "None", "N/A", "0", "00000000", "0000000000", "0123456789", "Unknown", "No Asset Tag",
    "Asset Tag", "Asset Tag#", "Base Board Serial Number", "Type2 - Board Serial Number", "Invalid", "Serial",
))


def identifier(value: str | None) -> str:
    """The matching key of a serial or tag; "" for none or a firmware placeholder."""
    key = normalise(value)
    return "" if key in PLACEHOLDERS or len(set(key)) == 1 else key


class DeviceState(enum.StrEnum):
    SANITIZED = "sanitized"
    NO_DISK = "no_disk"
    DESTROYED = "destroyed"
    NOT_SANITIZED = "not_sanitized"
    MISSING = "missing"


class DeviceDestination(enum.StrEnum):
    """Where a device goes: the three REEN outcomes (loi n° 2021-1485, art. 13)."""

    REUSE = "reuse"
    RECYCLE = "recycle"
    DESTROYED = "destroyed"


# States that stop a lot from closing unless a manager gives a reason.
UNRESOLVED = frozenset({DeviceState.MISSING, DeviceState.NOT_SANITIZED})


@dataclass(frozen=True)
class CertificateFact:
    """What one signed erasure certificate says, as reconciliation needs it."""

    digest: str
    certificate_id: str
    station_key_id: str
    disk_serial: str | None
    completed_at: str  # sanitization.finished_at, else issued_at: orders a drive's certificates
    decision: Decision
    disk_wwn: str | None = None
    machine_serial: str | None = None  # media.source.serial (the machine's DMI)
    asset_tag: str | None = None  # media.source.asset_tag, else media.property_number
    audit_id: str | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], digest: str) -> "CertificateFact":
        media = payload.get("media") or {}
        source = media.get("source") or {}
        s = payload.get("sanitization") or {}
        return cls(digest=digest, certificate_id=str(payload.get("certificate_id")),
                   station_key_id=str((payload.get("station") or {}).get("key_id")),
                   disk_serial=media.get("serial"), disk_wwn=media.get("wwn"),
                   completed_at=str(s.get("finished_at") or payload.get("issued_at") or ""),
                   decision=outcome.decision_of(payload), machine_serial=source.get("serial"),
                   asset_tag=source.get("asset_tag") or media.get("property_number"), audit_id=payload.get("audit_id"))


@dataclass(frozen=True)
class AuditFact:
    """What one signed machine audit report says."""

    report_id: str
    station_key_id: str
    digest: str
    machine_serial: str | None = None
    asset_tag: str | None = None
    disk_serials: tuple[str, ...] = ()
    no_disk: bool = False  # the audit found no drive in the machine (not: could not list them)
    verdict: str | None = None  # the audit's machine verdict: reuse / repair / recycle
    model: str | None = None
    issued_at: str = ""  # the latest audit of a machine gives its verdict

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], digest: str) -> "AuditFact":
        machine = payload.get("machine") or {}
        dmi = machine.get("dmi") or {}
        system = machine.get("system") or {}
        serial = dmi.get("system_serial") or system.get("serial")
        tag = dmi.get("chassis_asset_tag") or system.get("asset_tag")
        model = dmi.get("system_product") or system.get("model")
        disks = payload.get("disks") or []
        return cls(report_id=str(payload.get("report_id")), station_key_id=str((payload.get("station") or {}).get("key_id")),
                   digest=digest, machine_serial=serial, asset_tag=tag,
                   disk_serials=tuple(d["serial"] for d in disks if isinstance(d, dict) and d.get("serial")),
                   no_disk=_no_disk_found(payload), verdict=payload.get("verdict"), model=model,
                   issued_at=str(payload.get("issued_at") or ""))


def _no_disk_found(payload: Mapping[str, Any]) -> bool:
    """The agent decided, before writing anything, that the machine has no drive and that
    nothing seems hidden (agent/records.py StorageState.NO_DISK_FOUND). A report that lists
    a drive is never "no disk", whatever else it says."""
    storage = payload.get("storage")
    state = storage.get("state") if isinstance(storage, dict) else None
    return state == "no_disk_found" and not payload.get("disks")


@dataclass(frozen=True)
class Destruction:
    """A person's record that a device or a drive was physically destroyed.

    ``identifier`` is the machine's serial or asset tag (the whole device) or a drive's
    serial (that drive only)."""

    identifier: str
    person: str
    method: str  # e.g. "shredding", "drilling", "degaussing"
    date: str  # ISO 8601 date
    weee_partner: str  # the DEEE (WEEE) treatment operator who took it

    def to_json(self) -> dict:
        return {"identifier": self.identifier, "person": self.person, "method": self.method, "date": self.date,
                "weee_partner": self.weee_partner}


@dataclass(frozen=True)
class DriveLine:
    """One drive of a device: its latest certificate (None if it has none) and its fate."""

    serial: str | None
    certificate: CertificateFact | None
    superseded: tuple[str, ...] = ()  # digests of earlier certificates of this drive
    destroyed: Destruction | None = None

    @property
    def sanitized(self) -> bool:
        d = self.certificate.decision if self.certificate else None
        return d is not None and d.result == Result.SUCCESS and d.category != CategoryCode.NONE


@dataclass(frozen=True)
class LotLine:
    identifier: str  # as the donor wrote it (serial, else asset tag); for an extra, the serial found
    state: DeviceState
    declared: DeclaredDevice | None  # None: an extra device, not in the inventory
    destination: DeviceDestination | None = None  # None: not decided yet
    category: CategoryCode | None = None  # the weakest category of its drives, when sanitized
    matched_by: str | None = None  # serial / asset_tag / disk_serial / audit
    drives: tuple[DriveLine, ...] = ()
    audits: tuple[AuditFact, ...] = ()
    destruction: Destruction | None = None  # of the whole device
    note: str | None = None

    @property
    def digests(self) -> list[str]:
        """Every certificate this line stands on, superseded ones included."""
        out = []
        for d in self.drives:
            if d.certificate is not None:
                out.append(d.certificate.digest)
            out.extend(d.superseded)
        return out


@dataclass
class Reconciliation:
    lines: list[LotLine]
    extras: list[LotLine] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        c = Counter(str(line.state) for line in self.lines)
        return {str(s): c.get(str(s), 0) for s in DeviceState}

    @property
    def unresolved(self) -> list[LotLine]:
        return [line for line in self.lines if line.state in UNRESOLVED]


class _Index:
    """Multi-map from matching key to items, each item claimed at most once."""

    def __init__(self) -> None:
        self.by: dict[tuple[str, str], list[Any]] = {}

    def add(self, kind: str, key: str, item: Any) -> None:
        if key:
            self.by.setdefault((kind, key), []).append(item)

    def get(self, kind: str, key: str) -> list[Any]:
        return self.by.get((kind, key), []) if key else []


def reconcile(declared: Sequence[DeclaredDevice], certificates: Iterable[CertificateFact],
              audits: Iterable[AuditFact] = (), destructions: Iterable[Destruction] = (),
              recorded: Mapping[str, DeviceDestination] | None = None) -> Reconciliation:
    """Match the inventory with what the workshops recorded.

    ``recorded`` maps a device's serial or asset tag to a destination a person decided;
    it overrides the destination derived from the audit verdict and the drives."""
    certs = list(certificates)
    audit_list = list(audits)
    cidx, aidx, didx = _Index(), _Index(), _Index()
    for c in certs:
        cidx.add("disk", identifier(c.disk_serial), c)
        cidx.add("machine", identifier(c.machine_serial), c)
        cidx.add("tag", identifier(c.asset_tag), c)
        if c.audit_id:
            cidx.add("audit", f"{c.station_key_id}/{c.audit_id}", c)
    for a in audit_list:
        aidx.add("machine", identifier(a.machine_serial), a)
        aidx.add("tag", identifier(a.asset_tag), a)
    for d in destructions:
        didx.add("any", identifier(d.identifier), d)
    chosen = {identifier(k): v for k, v in (recorded or {}).items() if identifier(k)}
    claimed_c: set[str] = set()
    claimed_a: set[str] = set()

    lines = []
    for dev in declared:
        s, t = identifier(dev.serial), identifier(dev.asset_tag)
        found_a = _unclaimed(aidx.get("machine", s) + aidx.get("tag", t), claimed_a, lambda a: a.digest)
        matched_by = "serial" if aidx.get("machine", s) else "asset_tag" if found_a else None
        found_c = cidx.get("machine", s) + cidx.get("tag", t)
        loose = cidx.get("disk", s)
        if found_c and matched_by is None:
            matched_by = "serial" if cidx.get("machine", s) else "asset_tag"
        if loose and matched_by is None:
            matched_by = "disk_serial"
        found_c = _unclaimed(found_c + loose + _through_audits(found_a, cidx), claimed_c, lambda c: c.digest)
        destruction = next(iter(didx.get("any", s) + didx.get("any", t)), None)
        line = _line(dev.serial or dev.asset_tag or "", dev, found_a, found_c, destruction, didx,
                     chosen.get(s) or chosen.get(t), matched_by)
        lines.append(line)

    extras = _extras([c for c in certs if c.digest not in claimed_c], [a for a in audit_list if a.digest not in claimed_a],
                     cidx, didx, chosen)
    return Reconciliation(lines, extras)


def _unclaimed(items: list[Any], claimed: set[str], key) -> list[Any]:
    out = []
    for item in items:
        if key(item) not in claimed:
            claimed.add(key(item))
            out.append(item)
    return out


def _through_audits(audits: list[AuditFact], cidx: _Index) -> list[CertificateFact]:
    """A machine's certificates by its audit: the certificate's audit_id, or a drive serial
    the audit lists."""
    out = []
    for a in audits:
        out += cidx.get("audit", f"{a.station_key_id}/{a.report_id}")
        for serial in a.disk_serials:
            out += cidx.get("disk", identifier(serial))
    return out


def _drive_keys(c: CertificateFact) -> set[tuple[str, str]]:
    keys = set()
    if identifier(c.disk_serial):
        keys.add(("serial", identifier(c.disk_serial)))
    if c.disk_wwn and c.disk_wwn.strip():
        keys.add(("wwn", c.disk_wwn.strip().lower()))
    return keys


def drives_of(certs: Iterable[CertificateFact]) -> list[tuple[CertificateFact, list[str]]]:
    """(latest certificate, digests it supersedes) per drive, drives keyed by serial or WWN;
    the same rule as the collector's ``queries.latest_per_drive``."""
    latest: list[tuple[CertificateFact, list[str]]] = []
    slot_of: dict[tuple[str, str], int] = {}
    for c in sorted(certs, key=lambda c: c.completed_at):
        keys = _drive_keys(c)
        slot = next((slot_of[k] for k in keys if k in slot_of), None)
        if slot is None:
            slot = len(latest)
            latest.append((c, []))
        else:
            old, gone = latest[slot]
            latest[slot] = (c, gone + [old.digest])
        for k in keys:
            slot_of[k] = slot
    return latest


def _line(label: str, dev: DeclaredDevice | None, audits: list[AuditFact], certs: list[CertificateFact],
          destruction: Destruction | None, didx: _Index, chosen: DeviceDestination | None,
          matched_by: str | None) -> LotLine:
    drives: list[DriveLine] = []
    seen_serials: set[str] = set()
    for c, gone in drives_of(certs):
        key = identifier(c.disk_serial)
        seen_serials.add(key)
        drives.append(DriveLine(c.disk_serial, c, tuple(gone), next(iter(didx.get("any", key)), None)))
    for a in audits:  # drives the audit saw that have no certificate
        for serial in a.disk_serials:
            key = identifier(serial)
            if key and key not in seen_serials:
                seen_serials.add(key)
                drives.append(DriveLine(serial, None, (), next(iter(didx.get("any", key)), None)))
    if destruction is None:
        for a in audits:  # the device destroyed under the serial its audit read
            destruction = destruction or next(iter(didx.get("any", identifier(a.machine_serial))), None)
    common = dict(declared=dev, drives=tuple(drives), audits=tuple(audits), destruction=destruction,
                  matched_by=matched_by if (audits or certs) else None)

    if not audits and not certs and destruction is None:
        return LotLine(label, DeviceState.MISSING, dev, note="no audit report, certificate or destruction record")
    not_done = [d for d in drives if not d.sanitized]
    if destruction is not None:
        return LotLine(label, DeviceState.DESTROYED, destination=DeviceDestination.DESTROYED,
                       category=_weakest(drives) if not not_done else None, **common)
    if not drives:
        if any(a.no_disk for a in audits):
            return LotLine(label, DeviceState.NO_DISK, destination=chosen or _machine_destination(audits, []), **common)
        return LotLine(label, DeviceState.NOT_SANITIZED, note="audited, but no drive and no certificate recorded",
                       **common)
    undestroyed = [d for d in not_done if d.destroyed is None]
    if undestroyed:
        d = undestroyed[0]
        why = ("has no certificate" if d.certificate is None
               else f"is {outcome.describe_result(d.certificate.decision.result)}")
        return LotLine(label, DeviceState.NOT_SANITIZED, note=f"drive {d.serial or '(no serial)'} {why}", **common)
    destination = chosen or _machine_destination(audits, drives)
    if not_done:  # every unsanitized drive was destroyed; the machine itself may live on
        return LotLine(label, DeviceState.DESTROYED, destination=destination, **common)
    return LotLine(label, DeviceState.SANITIZED, destination=destination, category=_weakest(drives), **common)


def _weakest(drives: list[DriveLine]) -> CategoryCode | None:
    cats = {d.certificate.decision.category for d in drives if d.sanitized and d.certificate}
    if not cats:
        return None
    return CategoryCode.CLEAR if CategoryCode.CLEAR in cats else CategoryCode.PURGE


def _machine_destination(audits: list[AuditFact], drives: list[DriveLine]) -> DeviceDestination | None:
    """The audit's machine verdict decides (repair is reuse after a repair); without one,
    the drives' destinations from the outcome table: all reusable means reuse."""
    for a in sorted(audits, key=lambda a: a.issued_at, reverse=True):
        code = outcome.machine_verdict(a.verdict, [])
        if code in (MachineCode.REUSE, MachineCode.REPAIR):
            return DeviceDestination.REUSE
        if code == MachineCode.RECYCLE:
            return DeviceDestination.RECYCLE
    decisions = [d.certificate.decision for d in drives if d.certificate is not None and d.sanitized]
    if not decisions:
        return None
    if all(d.destination in (Destination.REUSE, Destination.REUSE_AFTER_CHECK) for d in decisions):
        return DeviceDestination.REUSE
    return DeviceDestination.RECYCLE


def _extras(certs: list[CertificateFact], audits: list[AuditFact], cidx: _Index, didx: _Index,
            chosen: Mapping[str, DeviceDestination]) -> list[LotLine]:
    """Devices seen but not declared: each unclaimed audit with its certificates, then the
    remaining certificates grouped by machine serial (else one line per drive)."""
    lines = []
    left = {c.digest: c for c in certs}
    for a in audits:
        mine = [left.pop(c.digest) for c in _through_audits([a], cidx) if c.digest in left]
        label = a.machine_serial or a.asset_tag or (a.disk_serials[0] if a.disk_serials else a.report_id)
        key = identifier(a.machine_serial) or identifier(a.asset_tag)
        destruction = next(iter(didx.get("any", key)), None)
        lines.append(_line(label, None, [a], mine, destruction, didx, chosen.get(key), "audit"))
    groups: dict[str, list[CertificateFact]] = {}
    for c in left.values():
        key = (f"machine/{identifier(c.machine_serial)}" if identifier(c.machine_serial)
               else f"drive/{identifier(c.disk_serial) or c.disk_wwn or c.digest}")
        groups.setdefault(key, []).append(c)
    for key, group in groups.items():
        first = group[0]
        label = first.machine_serial if key.startswith("machine/") else (first.disk_serial or first.disk_wwn or first.certificate_id)
        ident = identifier(label)
        destruction = next(iter(didx.get("any", ident)), None) if key.startswith("machine/") else None
        lines.append(_line(str(label), None, [], group, destruction, didx, chosen.get(ident), "certificate"))
    return lines
