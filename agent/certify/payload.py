"""The certificate payload: a NIST SP 800-88 record built from what the stages recorded.

Every value comes from the ``SanitizeResult``, the ``AuditReport`` or the config. What is
not known is ``null`` with a sibling ``<name>_reason`` that says why (never a guess). The
outcome is copied, never upgraded: a failed or interrupted wipe yields a signed
certificate that says so. See docs/certificate.md for the field list.
"""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from typing import Any

from agent import __version__
from agent.certify.canonical import without_floats
from agent.outcome import NIST_TYPE, decide, media_errors_in
from agent.i18n import N_
from agent.records import SanitizeResult, to_dict

SCHEMA_VERSION = 1

ATTESTATION = N_(
    "I attest that the information provided on this statement is accurate to the best of my knowledge."
)
SIGNATURE_NOTE = "Ed25519 signature of the station key named in station.key_id (DSSE envelope)"

# A certificate must fit the collector's 64 KiB upload limit with room to spare: command
# outputs are kept as short tails, and long polling sequences are cut in the middle.
_TAIL_CHARS = 300
_MAX_COMMANDS_PER_STEP = 24

def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def timestamp(value: Any) -> str | None:
    """RFC 3339 UTC text from whatever a stage stored (ISO text, datetime, epoch), or None."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        when = dt.datetime.fromtimestamp(value, dt.timezone.utc)
    elif isinstance(value, dt.datetime):
        when = value
    else:
        try:
            when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _ms(seconds: Any) -> int:
    try:
        return max(0, round(float(seconds or 0) * 1000))
    except (TypeError, ValueError):
        return 0


def _int(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _put(obj: dict, key: str, value: Any, reason: str) -> None:
    """Set ``key``; when the value is unknown, null it and say why in ``key_reason``."""
    if isinstance(value, str):
        value = value.strip() or None
    obj[key] = value
    if value is None:
        obj[f"{key}_reason"] = reason


def _ranges(ranges: Any) -> list[dict]:
    out = []
    for r in ranges or []:
        start = getattr(r, "start", None) if not isinstance(r, dict) else r.get("start")
        end = getattr(r, "end", None) if not isinstance(r, dict) else r.get("end")
        out.append({"start": _int(start), "end": _int(end)})
    return out


def _pass(p: Any) -> dict:
    resumed = getattr(p, "resumed_from", None)
    return {
        "pattern": str(getattr(p, "pattern", "unknown")),
        "bytes_written": _int(getattr(p, "bytes_written", 0)),
        "duration_ms": _ms(getattr(p, "duration_s", 0)),
        "error_ranges": _ranges(getattr(p, "error_ranges", [])),
        "resumed_from": None if resumed is None else _int(resumed),
    }


def _command(c: Any) -> dict:
    c = to_dict(c) if not isinstance(c, dict) else c
    argv = [str(a) for a in (c.get("argv") or ["(unknown)"])]
    code = c.get("exit_code", c.get("returncode"))
    out: dict[str, Any] = {"argv": argv, "exit_code": code if isinstance(code, int) and not isinstance(code, bool) else None}
    if "duration_s" in c or "duration_ms" in c:
        out["duration_ms"] = _int(c["duration_ms"]) if "duration_ms" in c else _ms(c["duration_s"])
    for key in ("stdout_tail", "stderr_tail"):
        if c.get(key):
            out[key] = str(c[key])[-_TAIL_CHARS:]
    return out


def _commands(commands: list) -> list[dict]:
    cmds = [_command(c) for c in commands or []]
    if len(cmds) > _MAX_COMMANDS_PER_STEP:
        half = _MAX_COMMANDS_PER_STEP // 2
        cut = len(cmds) - 2 * half
        marker = {"argv": [f"({cut} more commands, e.g. status polls, not kept)"], "exit_code": None}
        cmds = cmds[:half] + [marker] + cmds[-half:]
    return cmds


def _step(st: Any) -> dict:
    cat = getattr(st, "category", None)
    return {
        "method": str(st.method),
        "category": None if cat is None else str(cat),
        "status": str(st.status),
        "started_at": timestamp(getattr(st, "started_at", None)),
        "finished_at": timestamp(getattr(st, "finished_at", None)),
        "passes": [_pass(p) for p in getattr(st, "passes", []) or []],
        "commands": _commands(getattr(st, "commands", [])),
        "error": (str(st.error) if getattr(st, "error", None) else None),
        "notes": [str(n) for n in getattr(st, "notes", []) or []],
        "bytes_written": _int(getattr(st, "bytes_written", 0)),
        "duration_ms": _ms(getattr(st, "duration_s", 0)),
        "error_ranges": _ranges(getattr(st, "error_ranges", [])),
        "resumed": bool(getattr(st, "resumed", False)),
    }


def technique_of(method: str) -> str | None:
    """NIST technique words for a method name of the policy ("nvme-sanitize-crypto"...)."""
    m = method.lower()
    if "psid-revert" in m:
        return "Cryptographic Erase (TCG PSID revert)"
    if m == "mmc-discard-sanitize":
        return "eMMC Sanitize (after a discard of the whole user area)"
    if "crypto" in m:
        return "Cryptographic Erase"
    if "block" in m:
        return "Block Erase"
    if "security-erase" in m or "secure-erase" in m:
        return "Secure Erase (ATA Security Erase Unit)"
    if "format" in m:
        return "Format NVM (User Data Erase)"
    if "discard" in m:
        return "Secure Discard (eMMC/SD secure trim)"
    if "overwrite" in m or m.split(":", 1)[-1] in _overwrite_names():
        return "Overwrite"
    return None


def _overwrite_names() -> set[str]:
    try:
        from agent.sanitize import methods

        return set(getattr(methods, "METHODS", {}))
    except Exception:  # noqa: BLE001 - the overwrite engine is optional for the certificate
        return set()


def method_details(result: SanitizeResult) -> str | None:
    """The method's description and source (overwrite methods), plus passes and patterns."""
    name = result.method.split(":", 1)[-1]
    parts = []
    try:
        from agent.sanitize import methods

        m = methods.get_method(name)
        parts.append(f"{m.description} (source: {m.source}; status: {m.status})")
    except Exception:  # noqa: BLE001 - a firmware method has no overwrite description
        pass
    step = _producing_step(result)
    passes = getattr(step, "passes", None) if step is not None else None
    if passes:
        parts.append(f"{len(passes)} pass(es): " + ", ".join(str(p.pattern) for p in passes))
    return "; ".join(parts) or None


def _producing_step(result: SanitizeResult):
    """The step that produced the outcome: the successful one, else the last with the method."""
    for st in result.steps:
        if str(st.status) == "success" and st.method == result.method:
            return st
    for st in reversed(result.steps):
        if st.method == result.method:
            return st
    return result.steps[-1] if result.steps else None


def _first_attr(obj: Any, *names: str) -> Any:
    for n in names:
        v = getattr(obj, n, None) if not isinstance(obj, dict) else obj.get(n)
        if v not in (None, ""):
            return v
    return None


def _machine(audit: Any) -> Any:
    return _first_attr(audit, "machine", "system") if audit is not None else None


def _audit_disk_entry(audit: Any, disk: Any) -> Any:
    """The audit's entry for this disk (matched by serial, WWN, then path), if any."""
    if audit is None:
        return None
    entries = _first_attr(audit, "disks", "drives") or []
    for key in ("serial", "wwn", "path"):
        want = getattr(disk, key, None)
        if not want:
            continue
        for e in entries:
            d = _first_attr(e, "disk") or e
            if _first_attr(d, key) == want or _first_attr(e, key) == want:
                return e
    return None


def disk_health(entry: Any) -> tuple[dict | None, str | None, list[str]]:
    """(SMART summary without its raw dump, verdict word, verdict reasons) of an audit entry."""
    if entry is None:
        return None, None, []
    smart = _first_attr(entry, "smart", "smart_summary")
    health = _first_attr(entry, "health") or (_first_attr(smart, "health") if smart is not None else None)
    verdict = _first_attr(entry, "verdict") or (_first_attr(health, "verdict") if health is not None else None)
    reasons = [str(r) for r in (_first_attr(health, "reasons") or [])] if health is not None and not isinstance(health, str) else []
    if isinstance(health, str) and verdict is None:
        verdict = health
    smart_dict = None
    if smart is not None:
        smart_dict = without_floats(to_dict(smart))
        if isinstance(smart_dict, dict):
            # The full smartctl JSON stays in the audit log: it would not fit the certificate.
            smart_dict = {k: v for k, v in smart_dict.items() if k not in ("raw", "health")}
        else:
            smart_dict = {"value": smart_dict}
    return smart_dict, (None if verdict is None else str(to_dict(verdict))), reasons


def _smart_and_verdict(audit: Any, disk: Any) -> tuple[dict | None, str | None, list[str]]:
    return disk_health(_audit_disk_entry(audit, disk))


def recommend(outcome: str, verdict: str | None, reasons: list[str] | None = None, *,
              category: str | None = None, media_errors: bool = False) -> dict:
    """The destination decided by the outcome table (agent/outcome.py), as codes: ``code``
    and ``reason``; ``type`` is the NIST word (reuse / recycle / other), ``details`` the
    destination code again (language-neutral; surfaces render it), ``basis`` the facts."""
    d = decide(outcome, category, verdict, media_errors)
    basis = [f"outcome {d.result}", f"smart_verdict {verdict or 'none'}"]
    if media_errors:
        basis.append("media_errors")
    return {"type": NIST_TYPE[d.destination], "code": str(d.destination), "reason": str(d.reason),
            "details": str(d.destination), "basis": basis + list(reasons or [])}


def _hidden(h: Any) -> dict | None:
    if h is None:
        return None
    native = getattr(h, "native_max_sectors", None)
    return {
        "before": {"visible_sectors": getattr(h, "visible_sectors_before", None), "native_max_sectors": native},
        "after": {"visible_sectors": getattr(h, "visible_sectors_after", None), "native_max_sectors": native},
        "dco_restricted": getattr(h, "dco_restricted", None),
        "removed": getattr(h, "removed", None),
        "note": getattr(h, "note", None),
    }


def _verification(v: Any) -> dict:
    if v is None:
        out = {"method": "none", "result": "not-run", "bytes_read": 0, "duration_ms": 0, "samples": 0,
               "mismatches": [], "read_errors": [], "notes": []}
        _put(out, "seed", None, N_("no verification was run"))
        _put(out, "coverage_ppm", None, N_("no verification was run"))
        return out
    method = str(v.method) if str(v.method) in ("full", "sample", "canary", "none") else "none"
    out = {
        "method": method,
        "result": str(v.status) if str(v.status) in ("passed", "failed", "not-run", "error") else "error",
        "bytes_read": _int(getattr(v, "bytes_read", 0)),
        "duration_ms": _ms(getattr(v, "duration_s", 0)),
        "samples": len(getattr(v, "sampled", []) or []),
        "mismatches": _ranges(getattr(v, "mismatches", [])),
        "read_errors": _ranges(getattr(v, "read_errors", [])),
        "notes": [str(n) for n in getattr(v, "notes", []) or []],
    }
    _put(out, "seed", getattr(v, "seed", None), N_("full or canary verification uses no random seed") if method != "sample" else N_("the verifier recorded no seed"))
    cov = getattr(v, "coverage", None)
    _put(out, "coverage_ppm", None if cov is None else min(1_000_000, _int(round(float(cov) * 1_000_000))),
         N_("the verifier recorded no coverage"))
    return out


def build_payload(
    result: SanitizeResult,
    audit: Any,
    config: Any,
    *,
    key_id: str | None = None,
    certificate_id: str | None = None,
    issued_at: str | None = None,
    hostname: str | None = None,
) -> dict:
    """The certificate payload for one disk (a dict ready for ``sign_envelope``)."""
    disk = result.disk
    operator = getattr(config, "operator", None)
    issued = issued_at or _now()
    outcome = str(result.outcome)
    p: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "certificate_id": certificate_id or str(uuid.uuid4()), "issued_at": issued}
    _put(p, "lot", getattr(config, "lot", None), N_("no lot set in the config"))
    _put(p, "customer", getattr(config, "customer", None), N_("no customer set in the config"))
    # The signed machine report this drive was audited in: the collector links the two by
    # this id (within one station), not by serial, which a drive may lack or share.
    _put(p, "audit_id", _first_attr(audit, "report_id") if audit is not None else None,
         N_("no machine audit was made") if audit is None else N_("the machine audit was not signed"))

    person: dict[str, Any] = {}
    for f in ("name", "title", "organization", "location", "contact"):
        _put(person, f, getattr(operator, f, None), f"operator.{f} is not set in the config")
    p["person"] = person

    media: dict[str, Any] = {}
    _put(media, "manufacturer", disk.vendor, N_("the drive does not report a vendor"))
    _put(media, "model", disk.model, N_("the drive does not report a model"))
    _put(media, "serial", disk.serial, N_("the drive does not report a serial number"))
    _put(media, "property_number", getattr(config, "property_number", None), N_("no property number recorded at the station"))
    media["media_type"] = str(disk.media)
    machine = _machine(audit)
    dmi = _first_attr(machine, "dmi") if machine is not None else None
    facts = [o for o in (dmi, machine) if o is not None]
    source: dict[str, Any] = {}
    missing = _first_attr(machine, "missing") if machine is not None else None
    dmi_missing = missing.get("dmi") if isinstance(missing, dict) else None
    why = (N_("no machine audit was made") if machine is None
           else f"the audit could not read DMI: {dmi_missing}" if dmi is None and dmi_missing
           else N_("the machine's firmware (DMI) does not report it"))
    for key, names in (("vendor", ("system_vendor", "vendor", "manufacturer")),
                       ("model", ("system_product", "product_name", "model")),
                       ("serial", ("system_serial", "serial", "serial_number")),
                       ("asset_tag", ("chassis_asset_tag", "asset_tag"))):
        value = next((v for v in (_first_attr(o, *names) for o in facts) if v is not None), None)
        _put(source, key, value if isinstance(value, str) else None, why)
    media["source"] = source
    _put(media, "classification", getattr(config, "classification", None), N_("no data classification set in the config"))
    media["data_backed_up"] = "unknown"
    _put(media, "backup_location", None, N_("backups are made before the drive reaches the station; Ardoise does not know of them"))
    media["device"] = disk.path
    media["transport"] = str(disk.transport)
    media["size_bytes"] = _int(disk.size_bytes)
    media["logical_sector_size"] = _int(disk.logical_sector_size)
    _put(media, "firmware", disk.firmware, N_("the drive does not report a firmware revision"))
    _put(media, "wwn", disk.wwn, N_("the drive has no WWN"))
    bridge = disk.usb_bridge
    _put(media, "usb_bridge", None if bridge is None else {
        "vendor_id": bridge.vendor_id, "product_id": bridge.product_id, "name": bridge.name, "passthrough": bridge.passthrough},
        N_("the drive is not behind a USB bridge"))
    if disk.raid_volume:
        # Wiped through a volume, not the drive: the certificate says which controller
        # presented it, so no one reads it as the physical drive's own sanitization.
        media["raid_volume"] = {
            "controller": disk.raid_volume,
            "note": "wiped through the RAID volume the controller presents, not the physical drive",
        }
    p["media"] = media

    steps = [_step(st) for st in result.steps]
    producing = _producing_step(result)
    external = sorted({c["argv"][0] for st in steps for c in st["commands"] if not c["argv"][0].startswith("(")})
    s: dict[str, Any] = {}
    category = None if result.category is None else str(result.category)
    _put(s, "category", category, f"no sanitization category was achieved (outcome {outcome})")
    _put(s, "technique", getattr(result, "technique", None) or technique_of(result.method), f"no NIST technique is known for method {result.method}")
    s["method"] = result.method or "none"
    _put(s, "method_details", method_details(result), N_("the method has no description"))
    s["tool"] = {"name": "ardoise", "version": __version__, "external": external}
    s["outcome"] = outcome
    _put(s, "started_at", timestamp(result.started_at), N_("the start time was not recorded"))
    _put(s, "finished_at", timestamp(result.finished_at), N_("the end time was not recorded"))
    s["duration_ms"] = _ms(result.duration_s)
    s["bytes_written"] = _int(result.bytes_written)
    s["throughput_bps"] = _int(result.throughput_bps)
    s["passes"] = [_pass(x) for x in (producing.passes if producing is not None else [])]
    s["steps"] = steps
    s["error_ranges"] = _ranges(result.error_ranges)
    s["resumed"] = bool(result.resumed)
    _put(s, "hidden_areas", _hidden(result.hidden_areas), N_("hidden areas (HPA/DCO) were not examined for this drive"))
    p["sanitization"] = s

    p["verification"] = _verification(result.verification)
    _put(p, "post_sanitization_classification", getattr(config, "post_classification", None),
         N_("no post-sanitization classification set in the config"))
    p["notes"] = [str(n) for n in result.notes]

    smart, verdict, health_reasons = _smart_and_verdict(audit, disk)
    p["destination"] = recommend(outcome, verdict, health_reasons, category=category, media_errors=media_errors_in(p))
    attestation: dict[str, Any] = {"statement": ATTESTATION}
    _put(attestation, "name", getattr(operator, "name", None), "operator.name is not set in the config")
    _put(attestation, "title", getattr(operator, "title", None), "operator.title is not set in the config")
    attestation["date"] = issued
    attestation["signature"] = SIGNATURE_NOTE
    p["attestation"] = attestation

    validator = getattr(config, "validator", None)
    validation: dict[str, Any] = {}
    for f in ("name", "title", "organization", "location", "contact"):
        _put(validation, f, getattr(validator, f, None), N_("no validator at the station; to be signed by hand if required"))
    _put(validation, "date", None, N_("not validated at the station"))
    p["validation"] = validation

    health: dict[str, Any] = {}
    _put(health, "verdict", verdict, N_("no machine audit was made") if audit is None else N_("the audit has no SMART verdict for this drive"))
    _put(health, "smart", smart, N_("no machine audit was made") if audit is None else N_("no SMART data for this drive"))
    p["health"] = health

    station: dict[str, Any] = {"key_id": key_id}
    _put(station, "hostname", hostname if hostname is not None else socket.gethostname(), N_("hostname unknown"))
    p["station"] = station
    p["agent"] = {"name": "ardoise", "version": __version__}
    return p
