"""The lot report: built when a lot closes, signed by the collector's own key.

It is the donor's proof that every device it handed over was accounted for: every
reconciliation line, every certificate digest and audit report digest, the counts, the
REEN figures (loi n° 2021-1485 du 15 novembre 2021, "REEN": public bodies report the share
of their retired IT equipment sent to reuse), and optionally a CO2 estimate from a factor
the collector's configuration gives with its source (no factor is built in: a figure
without a citable source would be a guess presented as a fact).

Same DSSE/Ed25519 scheme and canonical JSON as the certificates; payloadType
``LOT_REPORT_TYPE``, schema agent/schemas/lot-report.v1.json (docs/lots.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from agent import i18n
from agent.certify import envelope as env
from agent.i18n import N_, NC_, T_
from agent.certify.keys import StationKey
from server_stub.errors import Conflict, Forbidden, Malformed
from server_stub.lots.reconcile import (AuditFact, CertificateFact, DeviceDestination, DeviceState, LotLine,
                                        Reconciliation)

SCHEMA_VERSION = 1
LANGUAGES = ("fr", "en")
MAX_REASON = 1000  # the schema's limit on a text field
MIN_REASON = 10  # "stolen" is not a reason a donor can file; "stolen in transport, complaint 1234" is


class LotNotClosable(Conflict):
    kind = "lot-not-closable"


@dataclass(frozen=True)
class LotInfo:
    name: str
    donor: str
    workshop: str
    language: str  # "fr" or "en": the report PDF and README of the bundle
    received_on: str  # ISO date the workshop received the lot


@dataclass(frozen=True)
class Closure:
    forced: bool  # closed with unresolved devices, on a manager's written reason
    reason: str | None


@dataclass(frozen=True)
class Co2Factor:
    """Avoided emissions per reused device (kg CO2e, integer), and the published source
    of that figure, cited in the report: both or nothing."""

    kg_per_reused_device: int
    source: str

    @classmethod
    def from_settings(cls, settings) -> "Co2Factor | None":
        """The configured factor (server_stub.settings: both or neither), or None."""
        factor, source = settings.co2_kg_per_reused_device, settings.co2_source
        return cls(factor, source) if factor is not None and source else None


def may_close(recon: Reconciliation, *, is_manager: bool, reason: str | None = None) -> Closure:
    """A lot closes only when nothing is missing or left not sanitized; otherwise only a
    manager may close it, and only with a written reason (which the report carries)."""
    unresolved = recon.unresolved
    text = " ".join((reason or "").split())
    if len(text) > MAX_REASON:
        raise LotNotClosable(T_("the reason is longer than {limit} characters", limit=MAX_REASON))
    if not unresolved:
        return Closure(False, text or None)
    names = ", ".join(line.identifier for line in unresolved[:5]) + (", ..." if len(unresolved) > 5 else "")
    if not is_manager:
        raise Forbidden(T_("{count} device(s) missing or not sanitized ({names}): only a manager may close this "
                           "lot, with a written reason", count=len(unresolved), names=names))
    if len(text) < MIN_REASON:
        raise LotNotClosable(T_("{count} device(s) missing or not sanitized ({names}): give the reason for closing "
                                "it anyway (at least {min} characters)", count=len(unresolved), names=names,
                                min=MIN_REASON))
    return Closure(True, text)


# ------------------------------------------------------------------------- payload

def _device(line: LotLine) -> dict:
    dev = line.declared
    return {
        "line": dev.line if dev else None,
        "identifier": line.identifier,
        "serial": dev.serial if dev else None,
        "asset_tag": dev.asset_tag if dev else None,
        "model": dev.model if dev else (line.audits[0].model if line.audits else None),
        "type": dev.type if dev else None,
        "manufacturer": dev.manufacturer if dev else None,
        "state": str(line.state),
        "destination": None if line.destination is None else str(line.destination),
        "category": None if line.category is None else str(line.category),
        "matched_by": line.matched_by,
        "drives": [{"serial": d.serial,
                    "certificate": d.certificate.digest if d.certificate else None,
                    "result": str(d.certificate.decision.result) if d.certificate else None,
                    "superseded": list(d.superseded),
                    "destroyed": d.destroyed is not None} for d in line.drives],
        "audit_reports": [a.digest for a in line.audits],
        "destruction": line.destruction.to_json() if line.destruction else None,
        "drive_destructions": [d.destroyed.to_json() for d in line.drives if d.destroyed is not None],
        "note": line.note,
    }


def reen_figures(devices: list[dict]) -> dict:
    """Received = declared devices found (not missing); each has one destination or none
    yet ("undecided"); the reuse rate is reused / received, in parts per million (the
    signed JSON carries no floats)."""
    found = [d for d in devices if d["state"] != str(DeviceState.MISSING)]
    dest = [d["destination"] for d in found]
    reused = dest.count(str(DeviceDestination.REUSE))
    recycled = dest.count(str(DeviceDestination.RECYCLE))
    destroyed = dest.count(str(DeviceDestination.DESTROYED))
    received = len(found)
    return {"received": received, "reused": reused, "recycled": recycled, "destroyed": destroyed,
            "undecided": received - reused - recycled - destroyed,
            "reuse_rate_ppm": reused * 1_000_000 // received if received else 0}


def counts_of(devices: list[dict], extras: list[dict], n_certificates: int, n_audits: int) -> dict:
    out = {"declared": len(devices)}
    for s in DeviceState:
        out[str(s)] = sum(1 for d in devices if d["state"] == str(s))
    out.update(extra=len(extras), certificates=n_certificates, audit_reports=n_audits)
    return out


def build_report(lot: LotInfo, recon: Reconciliation, certificates: Iterable[CertificateFact],
                 audits: Iterable[AuditFact], *, collector_key_id: str, closed_at: str, closed_by: str,
                 closure: Closure, co2: Co2Factor | None = None, report_id: str | None = None) -> dict:
    """The lot report payload (a dict ready for ``sign_report``)."""
    if lot.language not in LANGUAGES:
        raise Malformed(f"lot language {lot.language!r} is not one of {', '.join(LANGUAGES)}")
    certs = sorted({c.digest: c for c in certificates}.values(), key=lambda c: c.digest)
    audit_list = sorted({a.digest: a for a in audits}.values(), key=lambda a: a.digest)
    # The report must account for exactly the certificates it lists (verify --bundle checks
    # it): the caller gives the same certificates it reconciled, or it is a bug, not a lot.
    used = sorted(d for line in recon.lines + recon.extras for d in line.digests)
    if used != [c.digest for c in certs]:
        raise ValueError(f"the reconciliation accounts for {len(used)} certificates, {len(certs)} are given")
    listed = {a.digest for a in audit_list}
    if any(a.digest not in listed for line in recon.lines + recon.extras for a in line.audits):
        raise ValueError("the reconciliation uses an audit report that is not given")
    devices = [_device(line) for line in recon.lines]
    extras = [_device(line) for line in recon.extras]
    reen = reen_figures(devices)
    p: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "report_id": report_id or str(uuid.uuid4()),
        "lot": {"name": lot.name, "donor": lot.donor, "workshop": lot.workshop, "language": lot.language,
                "received_on": lot.received_on},
        "closed_at": closed_at,
        "closed_by": closed_by,
        "forced": closure.forced,
        "closing_reason": closure.reason,
        "collector_key_id": collector_key_id,
        "station_keys": sorted({c.station_key_id for c in certs} | {a.station_key_id for a in audit_list}),
        "certificates": [{"digest": c.digest, "certificate_id": c.certificate_id, "station_key_id": c.station_key_id,
                          "serial": c.disk_serial, "result": str(c.decision.result),
                          "category": str(c.decision.category), "destination": str(c.decision.destination)}
                         for c in certs],
        "audit_reports": [{"digest": a.digest, "report_id": a.report_id, "station_key_id": a.station_key_id}
                          for a in audit_list],
        "devices": devices,
        "extras": extras,
        "counts": counts_of(devices, extras, len(certs), len(audit_list)),
        "reen": reen,
        "co2": None if co2 is None else {"kg_per_reused_device": co2.kg_per_reused_device, "source": co2.source,
                                         "avoided_kg": co2.kg_per_reused_device * reen["reused"]},
    }
    return p


def sign_report(payload: dict, key: StationKey) -> dict:
    """The report as a DSSE envelope signed by the collector's key (receipts.load_or_create)."""
    return env.sign_envelope(payload, env.LOT_REPORT_TYPE, key)


# ------------------------------------------------------------------------- words
# Every word of the report PDF is in the project's gettext catalog (agent/locale,
# scripts/i18n.sh): the lot page, the labels and this report say a device's state and
# destination with the same entries ("one verdict, rendered many times").

# The explanations of the PDF: long English msgids, translated whole.
METHOD = N_("Each drive was erased to NIST SP 800-88 Rev. 1 (Clear or Purge) by an Ardoise station, which "
            "verified the erasure and issued a signed certificate (Ed25519, DSSE envelope). This report lists "
            "the SHA-256 digest of every certificate and audit report, and is itself signed by the collector's "
            "key. The ZIP handed over with it holds every certificate and is checked offline with 'ardoise "
            "verify --bundle lot.zip --collector-key collector.pem'. This PDF is a rendering: the signed JSON is "
            "the proof.")
LEVELS = N_("NIST SP 800-88 levels: 'Clear' protects against recovery by non-invasive software means (every "
            "addressable location overwritten); 'Purge' makes recovery infeasible even with laboratory "
            "techniques (the drive firmware's secure or cryptographic erase). A drive that could not be erased "
            "is physically destroyed, and the destruction is recorded below. This report may be kept as proof "
            "of erasure under the accountability principle (GDPR art. 5(2)).")

# A device's state and destination, as every surface of a lot words them (pgettext).
STATE_WORDS = {
    DeviceState.SANITIZED: NC_("lot device state", "sanitized"),
    DeviceState.NO_DISK: NC_("lot device state", "no disk found"),
    DeviceState.DESTROYED: NC_("lot device state", "destroyed"),
    DeviceState.NOT_SANITIZED: NC_("lot device state", "not sanitized"),
    DeviceState.MISSING: NC_("lot device state", "missing"),
}
UNDECIDED = "undecided"
DESTINATION_WORDS = {
    DeviceDestination.REUSE: NC_("lot destination", "reuse"),
    DeviceDestination.RECYCLE: NC_("lot destination", "recycling"),
    DeviceDestination.DESTROYED: NC_("lot destination", "destruction"),
    UNDECIDED: NC_("lot destination", "to decide"),
}


def translator(language: str) -> Callable[[str], str]:
    """The ``_`` of one language, from the project's catalog."""
    return i18n.translations(language).gettext


def state_label(code: str, language: str) -> str:
    """A device state code (``no_disk``) in words ("no disk found", "aucun disque trouvé")."""
    return i18n.translations(language).pgettext("lot device state", STATE_WORDS.get(code, code))


def destination_label(code: str | None, language: str) -> str:
    """A destination code in words; None is "to decide"."""
    return i18n.translations(language).pgettext("lot destination", DESTINATION_WORDS.get(code or UNDECIDED, code))


def category_label(code: str | None, language: str) -> str:
    """The NIST SP 800-88 category reached, by the standard's own name (Clear, Purge) in
    every language: the report's explanation of the levels (``LEVELS``) quotes and defines
    those names, and a table column has no room for "« Effacement (Clear) »"."""
    return {"clear": "Clear", "purge": "Purge", "destroy": "Destroy"}.get(code or "", "—")


def percent(ppm: int, language: str) -> str:
    """66.7 % / 66,7 % (Babel: the locale's decimal mark and spacing)."""
    from babel.numbers import format_percent

    return format_percent(ppm / 1_000_000, "#,##0.0 %" if language == "fr" else "#,##0.0%", locale=language)


def when(text: str | None, language: str) -> str:
    """An ISO date or UTC time of the payload as its reader writes it ("5 décembre 2026");
    left as it is when it is not ISO (the signed text is the reference)."""
    import datetime as dt

    from babel.dates import format_date, format_datetime

    if not text:
        return ""
    try:
        if "T" not in text:
            return format_date(dt.date.fromisoformat(text), "long", locale=language)
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if t.tzinfo is None:
        return text
    return format_datetime(t, "long", tzinfo=dt.timezone.utc, locale=language)


def words(payload: Mapping[str, Any]) -> Callable[[str], str]:
    return translator(payload["lot"]["language"])
