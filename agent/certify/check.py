"""Offline verification of a certificate: the four checks of issue 5.

1. envelope shape (DSSE), 2. signature against trusted keys, 3. payload against the JSON
Schema, 4. internal consistency (what the certificate claims follows from what it records).
``ardoise verify`` and the collector both call ``check_certificate``; they must agree.
"""

from __future__ import annotations

import functools
import itertools
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent import outcome as outcome_table
from agent.certify import envelope as env
from agent.errors import CertificateError

SCHEMA = "schema"
INCONSISTENT = "inconsistent"
MISSING_FILE = "missing-file"
MAX_SCHEMA_ERRORS = 32

SCHEMA_FILES = {
    env.ERASURE_TYPE: "erasure-certificate.v1.json",
    env.AUDIT_TYPE: "audit-report.v1.json",
}

# Sections where a null means "not known" and must come with a '<name>_reason' sibling.
# Elsewhere null has its own meaning (no resume offset, no error, no USB bridge).
_REASONED_SECTIONS = ("", "person", "media", "media.source", "sanitization", "verification",
                      "attestation", "validation", "health", "station")


@dataclass
class CheckReport:
    valid: bool
    reasons: list[str] = field(default_factory=list)
    payload: dict | None = None
    key_id: str | None = None
    digest: str | None = None
    payload_type: str | None = None
    # The reason codes (``envelope.BAD_SIGNATURE``...), parallel to ``reasons``.
    codes: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """One line for humans: the first reason, or "valid"."""
        return self.reasons[0] if self.reasons else "valid"

    def to_dict(self) -> dict:
        return {"valid": self.valid, "reasons": self.reasons, "codes": self.codes, "key_id": self.key_id,
                "digest": self.digest, "payload_type": self.payload_type}


@functools.cache
def load_schema(payload_type: str = env.ERASURE_TYPE) -> dict:
    name = SCHEMA_FILES[payload_type]
    return json.loads(resources.files("agent").joinpath("schemas", name).read_text(encoding="utf-8"))


@functools.cache
def _validator(payload_type: str) -> jsonschema.Draft202012Validator:
    schema = load_schema(payload_type)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@functools.cache
def _fast_validator(payload_type: str):
    """The Rust validator, when installed (the collector has it, the live image does not).

    Pure-Python validation costs about 3 ms per certificate, most of a collector upload;
    the Rust one decides validity in microseconds, and the Python one still words the
    errors of the rare invalid payload."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    return jsonschema_rs.validator_for(load_schema(payload_type))


def schema_errors(payload: Any, payload_type: str = env.ERASURE_TYPE, limit: int = 3) -> list[str]:
    """Human lines for the first schema violations, most relevant first."""
    fast = _fast_validator(payload_type)
    if fast is not None and fast.is_valid(payload):
        return []
    # The first few dozen errors only: a signed payload listing thousands of bad entries
    # would otherwise keep the validator busy for seconds (issue 17), for lines nobody reads.
    found = itertools.islice(_validator(payload_type).iter_errors(payload), MAX_SCHEMA_ERRORS)
    errors = sorted(found, key=jsonschema.exceptions.relevance)
    out = []
    for e in errors[:limit]:
        where = "/" + "/".join(str(p) for p in e.absolute_path)
        out.append(f"{where}: {e.message}")
    return out


def check_certificate(
    data: bytes | str | dict,
    trusted_keys: dict[str, Ed25519PublicKey],
    *,
    payload_type: str | tuple[str, ...] = env.ERASURE_TYPE,
) -> CheckReport:
    """Check one envelope; never raises for a bad certificate, the report says why.

    ``payload_type`` is the accepted type (or types: ``envelope.PAYLOAD_TYPES`` accepts
    audit reports too, each checked against its own schema).
    """
    report = CheckReport(valid=False)
    try:
        opened = env.verify_envelope(data, trusted_keys, payload_type=payload_type)
    except CertificateError as exc:
        report.codes.append(exc.detail.get("code", "invalid"))
        report.reasons.append(str(exc))
        return report
    report.key_id, report.digest, report.payload_type = opened.key_id, opened.digest, opened.payload_type
    payload = opened.payload
    report.payload = payload if isinstance(payload, dict) else None
    errors = schema_errors(payload, opened.payload_type)
    for line in errors:
        report.codes.append(SCHEMA)
        report.reasons.append(f"{SCHEMA}: {line}")
    if not errors:
        problems = (consistency_problems(payload) if opened.payload_type == env.ERASURE_TYPE else [])
        problems += missing_reasons(payload) if opened.payload_type == env.ERASURE_TYPE else []
        station = payload.get("station", {}).get("key_id")
        if station != opened.key_id:
            problems.append(f"payload names station key {str(station)[:16]} but is signed by {opened.key_id[:16]}")
        for p in problems:
            report.codes.append(INCONSISTENT)
            report.reasons.append(f"{INCONSISTENT}: {p}")
    report.valid = not report.reasons
    return report


def check_file(path: str | Path, trusted_keys: dict[str, Ed25519PublicKey], **kw) -> CheckReport:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return CheckReport(False, [f"{MISSING_FILE}: no such file"], codes=[MISSING_FILE])
    except IsADirectoryError:
        return CheckReport(False, [f"{MISSING_FILE}: is a directory, not a certificate file"], codes=[MISSING_FILE])
    except OSError as exc:
        return CheckReport(False, [f"{MISSING_FILE}: cannot read ({exc.strerror})"], codes=[MISSING_FILE])
    return check_certificate(data, trusted_keys, **kw)


def missing_reasons(payload: dict) -> list[str]:
    """Every unknown (null) value in the NIST sections must say why it is unknown."""
    out = []
    for section in _REASONED_SECTIONS:
        obj: Any = payload
        for part in filter(None, section.split(".")):
            obj = obj.get(part) if isinstance(obj, dict) else None
        if not isinstance(obj, dict):
            continue
        for key, value in obj.items():
            if value is None and not key.endswith("_reason") and not obj.get(f"{key}_reason"):
                out.append(f"{section + '.' if section else ''}{key} is null without a {key}_reason")
    return out


def _ranges_ok(ranges: list[dict], where: str, out: list[str]) -> None:
    for r in ranges:
        if r["end"] < r["start"]:
            out.append(f"{where} has a range ending before it starts ({r['start']}..{r['end']})")


def consistency_problems(p: dict) -> list[str]:
    """What the certificate claims must follow from what it records. Schema-valid input."""
    out: list[str] = []
    s, v = p["sanitization"], p["verification"]
    outcome, category = s["outcome"], s["category"]
    succeeded = [st for st in s["steps"] if st["status"] == "success"]

    if outcome == "success" and category is None:
        out.append("outcome is success but no sanitization category was achieved")
    if category is not None and outcome != "success":
        out.append(f"category {category} is claimed but the outcome is {outcome}")
    if category is not None and not any(st["category"] == category for st in succeeded):
        out.append(f"category {category} is claimed but no {category} step succeeded")
    if category == "Purge" and v["result"] != "passed":
        out.append(f"category Purge is claimed but verification {v['result']}")
    for st in s["steps"]:
        if st["status"] != "success" and st["category"] is not None:
            out.append(f"step {st['method']} is {st['status']} yet claims category {st['category']}")

    errors = list(s["error_ranges"])
    for ps in s["passes"]:
        errors += ps["error_ranges"]
    for st in succeeded:
        errors += st["error_ranges"]
        for ps in st["passes"]:
            errors += ps["error_ranges"]
    if outcome == "success":
        if errors:
            out.append(f"outcome is success but {len(errors)} error range(s) are listed")
        if v["result"] in ("failed", "error"):
            out.append(f"outcome is success but verification {v['result']}")
        if v["mismatches"] or v["read_errors"]:
            out.append("outcome is success but verification lists mismatches or read errors")

    if v["result"] == "passed":
        if v["mismatches"] or v["read_errors"]:
            out.append("verification passed but lists mismatches or read errors")
        if v["method"] == "none":
            out.append("verification passed but its method is none")
        if v["bytes_read"] == 0 and v["samples"] == 0:
            out.append("verification passed without reading anything")
        if v["method"] == "sample" and v["samples"] == 0:
            out.append("sample verification passed with no samples")
    if v["result"] == "failed" and not (v["mismatches"] or v["read_errors"] or v["notes"]):
        out.append("verification failed but records no mismatch, read error or note")
    if v["method"] == "none" and v["result"] != "not-run":
        out.append(f"verification method none but result {v['result']}")

    # The destination must be the outcome table's for the facts recorded (certificates
    # issued before the codes existed carry none, and are judged on the rest).
    d = p["destination"]
    if "code" in d or "reason" in d:
        want = outcome_table.decide_payload(p)
        if (d.get("code"), d.get("reason")) != (str(want.destination), str(want.reason)):
            out.append(f"destination {d.get('code')}/{d.get('reason')} does not follow from the recorded facts "
                       f"(the outcome table gives {want.destination}/{want.reason})")
        elif d["type"] != outcome_table.NIST_TYPE[want.destination]:
            out.append(f"destination type {d['type']} does not match destination {want.destination}")

    _ranges_ok(s["error_ranges"], "sanitization.error_ranges", out)
    _ranges_ok(v["mismatches"], "verification.mismatches", out)
    _ranges_ok(v["read_errors"], "verification.read_errors", out)
    return out
