"""One verdict: what happened to a drive, the NIST category reached, and where it goes next.

Every surface (the screen, the plain log, the certificate and its PDF, the machine
report, the collector's dashboard, lot page, lot PDF and CSV) renders the codes decided
here and nothing else, so none of them can contradict another. The table is documented
in docs/outcome.md; ``TABLE`` below is that table, row for row.

Codes are what the signed JSON and the records carry (language-neutral). The English
text of each code lives in the ``*_TEXT`` dicts, marked with ``N_``; the ``describe_*``
functions say it in the current language (agent.i18n: the agent's, or the reader's inside
``i18n.speaking``), so translating them never touches the decisions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from agent import i18n
from agent.records import Outcome
from agent.i18n import N_, _


# What happened to the drive (the certificate's ``sanitization.outcome``): the record's own
# enum, not a second copy of it.
Result = Outcome


class CategoryCode(enum.StrEnum):
    """The NIST SP 800-88 category achieved, as a code (``sanitization.category`` lowercased)."""

    CLEAR = "clear"
    PURGE = "purge"
    NONE = "none"


class Destination(enum.StrEnum):
    REUSE = "reuse"
    REUSE_AFTER_CHECK = "reuse_after_check"
    WIPE_AGAIN = "wipe_again"
    DESTROY = "destroy"
    RECYCLE = "recycle"


class Reason(enum.StrEnum):
    HEALTHY = "healthy"
    NO_HEALTH_DATA = "no_health_data"
    HEALTH_UNCLEAR = "health_unclear"
    DRIVE_WORN = "drive_worn"
    DRIVE_FAILING = "drive_failing"
    INTERRUPTED = "interrupted"
    WIPE_FAILED = "wipe_failed"
    MEDIA_ERRORS = "media_errors"


class Health(enum.StrEnum):
    """The SMART verdict, reduced to what matters for the drive's next life."""

    GOOD = "good"
    WORN = "worn"
    FAILING = "failing"
    UNKNOWN = "unknown"  # no SMART data at all
    UNCLEAR = "unclear"  # a verdict word this table does not know


class MachineCode(enum.StrEnum):
    """The machine's verdict: the audit's (reuse / repair / recycle), or ``attention``
    while one of its drives is not sanitized."""

    REUSE = "reuse"
    REPAIR = "repair"
    RECYCLE = "recycle"
    ATTENTION = "attention"


# SMART/audit verdict words (DiskHealth values and common synonyms).
_HEALTH_WORDS: dict[str, Health] = {
    **{w: Health.GOOD for w in ("good", "ok", "healthy", "pass", "passed")},
    **{w: Health.WORN for w in ("warning", "worn", "degraded", "marginal", "poor")},
    **{w: Health.FAILING for w in ("bad", "failing", "failed", "fail", "critical", "dead")},
    "unknown": Health.UNKNOWN,
}


def health_of(verdict: str | None) -> Health:
    if verdict is None or not str(verdict).strip():
        return Health.UNKNOWN
    return _HEALTH_WORDS.get(str(verdict).strip().lower(), Health.UNCLEAR)


# The table. Key: (result, health, media errors recorded); None matches any value.
# Rows are tried in order; the first that matches decides.
# An interrupted wipe never sends a drive to destruction: nothing is wrong with the drive,
# the wipe just did not finish, so it goes back on the station.
TABLE: tuple[tuple[Result, Health | None, bool | None, Destination, Reason], ...] = (
    (Result.INTERRUPTED, None, None, Destination.WIPE_AGAIN, Reason.INTERRUPTED),
    (Result.FAILED, Health.FAILING, None, Destination.DESTROY, Reason.DRIVE_FAILING),
    (Result.FAILED, None, True, Destination.DESTROY, Reason.MEDIA_ERRORS),
    (Result.FAILED, None, False, Destination.WIPE_AGAIN, Reason.WIPE_FAILED),
    (Result.SUCCESS, Health.GOOD, None, Destination.REUSE, Reason.HEALTHY),
    (Result.SUCCESS, Health.UNKNOWN, None, Destination.REUSE_AFTER_CHECK, Reason.NO_HEALTH_DATA),
    (Result.SUCCESS, Health.UNCLEAR, None, Destination.REUSE_AFTER_CHECK, Reason.HEALTH_UNCLEAR),
    (Result.SUCCESS, Health.WORN, None, Destination.RECYCLE, Reason.DRIVE_WORN),
    (Result.SUCCESS, Health.FAILING, None, Destination.RECYCLE, Reason.DRIVE_FAILING),
)

# The legacy NIST "destination type" word of certificate schema v1 for each destination.
NIST_TYPE: dict[Destination, str] = {
    Destination.REUSE: "reuse",
    Destination.REUSE_AFTER_CHECK: "reuse",
    Destination.RECYCLE: "recycle",
    Destination.WIPE_AGAIN: "other",
    Destination.DESTROY: "other",
}


@dataclass(frozen=True)
class Decision:
    result: Result
    category: CategoryCode
    destination: Destination
    reason: Reason

    @property
    def sanitized(self) -> bool:
        return self.result == Result.SUCCESS

    @property
    def needs_attention(self) -> bool:
        """Not sanitized: the drive must not leave the workshop as it is."""
        return self.result != Result.SUCCESS


def category_code(category: Any) -> CategoryCode:
    text = str(getattr(category, "value", category) or "").strip().lower()
    return CategoryCode(text) if text in (CategoryCode.CLEAR, CategoryCode.PURGE) else CategoryCode.NONE


def result_code(outcome: Any) -> Result:
    text = str(getattr(outcome, "value", outcome) or "").strip().lower()
    # Anything that is not a known result is not a success: treat it as failed.
    return Result(text) if text in {r.value for r in Result} else Result.FAILED


def decide(outcome: Any, category: Any = None, health: str | None = None, media_errors: bool = False) -> Decision:
    """The one decision: ``outcome`` success/failed/interrupted, ``category`` Clear/Purge/None,
    ``health`` the SMART verdict word (None when unknown), ``media_errors`` whether the wipe
    recorded unreadable or unwritable ranges."""
    result = result_code(outcome)
    h = health_of(health)
    for r, want_health, want_errors, destination, reason in TABLE:
        if r == result and want_health in (None, h) and want_errors in (None, bool(media_errors)):
            cat = category_code(category) if result == Result.SUCCESS else CategoryCode.NONE
            return Decision(result, cat, destination, reason)
    raise AssertionError(f"the outcome table has no row for {result}, {h}, {media_errors}")  # pragma: no cover


def _ranges_in(obj: Mapping, *keys: str) -> bool:
    return any(obj.get(k) for k in keys if isinstance(obj, Mapping))


def media_errors_in(payload: Mapping) -> bool:
    """Whether a certificate payload records error ranges (the write's or the read-back's)."""
    s = payload.get("sanitization") or {}
    v = payload.get("verification") or {}
    if _ranges_in(s, "error_ranges") or _ranges_in(v, "read_errors"):
        return True
    for step in s.get("steps") or []:
        if _ranges_in(step, "error_ranges") or any(_ranges_in(p, "error_ranges") for p in step.get("passes") or []):
            return True
    return any(_ranges_in(p, "error_ranges") for p in s.get("passes") or [])


def decide_payload(payload: Mapping) -> Decision:
    """The decision a certificate payload's facts call for (any schema v1 certificate,
    including those issued before the destination codes were recorded)."""
    s = payload.get("sanitization") or {}
    health = (payload.get("health") or {}).get("verdict")
    return decide(s.get("outcome"), s.get("category"), health, media_errors_in(payload))


def decision_of(payload: Mapping) -> Decision:
    """What a stored certificate says: its signed codes, else the table applied to its facts."""
    derived = decide_payload(payload)
    d = payload.get("destination") or {}
    try:
        return Decision(derived.result, derived.category, Destination(d["code"]), Reason(d["reason"]))
    except (KeyError, ValueError, TypeError):
        return derived


def machine_verdict(audit_verdict: Any, drive_results: Iterable[Any]) -> MachineCode | None:
    """The machine's verdict: ``attention`` as long as one of its drives is not sanitized
    (failed or interrupted), else the audit's hardware verdict; None when there is no
    audit verdict to stand on (never a guessed "reuse")."""
    if any(result_code(r) != Result.SUCCESS for r in drive_results):
        return MachineCode.ATTENTION
    text = str(getattr(audit_verdict, "value", audit_verdict) or "").strip().lower()
    return MachineCode(text) if text in (MachineCode.REUSE, MachineCode.REPAIR, MachineCode.RECYCLE) else None


# --------------------------------------------------------------------------- words

RESULT_TEXT: dict[Result, str] = {
    Result.SUCCESS: N_("sanitized"),
    Result.FAILED: N_("failed: not sanitized"),
    Result.INTERRUPTED: N_("interrupted: not sanitized"),
}
# Clear and Purge keep their NIST names; a French reader gets them glossed
# (« Effacement (Clear) », « Purge ») by i18n.nist_category, like every other surface.
CATEGORY_TEXT: dict[CategoryCode, str] = {
    CategoryCode.CLEAR: "Clear",
    CategoryCode.PURGE: "Purge",
    CategoryCode.NONE: N_("no category"),
}
DESTINATION_TEXT: dict[Destination, str] = {
    Destination.REUSE: N_("ready for reuse"),
    Destination.REUSE_AFTER_CHECK: N_("reuse after a check of the drive"),
    Destination.WIPE_AGAIN: N_("put it back and wipe it again"),
    Destination.DESTROY: N_("destroy it physically (shred or drill)"),
    Destination.RECYCLE: N_("recycle the drive"),
}
REASON_TEXT: dict[Reason, str] = {
    Reason.HEALTHY: N_("SMART health is good"),
    Reason.NO_HEALTH_DATA: N_("no SMART health data"),
    Reason.HEALTH_UNCLEAR: N_("SMART verdict not recognised"),
    Reason.DRIVE_WORN: N_("the drive is worn (SMART)"),
    Reason.DRIVE_FAILING: N_("the drive is failing (SMART)"),
    Reason.INTERRUPTED: N_("the wipe was interrupted"),
    Reason.WIPE_FAILED: N_("the wipe failed"),
    Reason.MEDIA_ERRORS: N_("the wipe hit unreadable or unwritable sectors"),
}
MACHINE_TEXT: dict[MachineCode, str] = {
    MachineCode.REUSE: N_("reuse"),
    MachineCode.REPAIR: N_("repair before reuse"),
    MachineCode.RECYCLE: N_("recycle"),
    MachineCode.ATTENTION: N_("attention: a drive is not sanitized"),
}


def describe_result(code: Any) -> str:
    return _(RESULT_TEXT[result_code(code)])


def describe_category(code: Any) -> str:
    c = category_code(code)
    return _(CATEGORY_TEXT[c]) if c == CategoryCode.NONE else i18n.current().nist_category(c.value)


def describe_destination(code: Any) -> str:
    return _(DESTINATION_TEXT[Destination(str(code))])


def describe_reason(code: Any) -> str:
    return _(REASON_TEXT[Reason(str(code))])


def describe_machine(code: Any) -> str:
    if code is None:
        return _(N_("unknown (no audit verdict)"))
    return _(MACHINE_TEXT[MachineCode(str(code))])


def advice(d: Decision) -> str:
    """The one line every surface shows for a drive: where it goes, and why."""
    return _("{destination} ({reason})").format(destination=describe_destination(d.destination),
                                                 reason=describe_reason(d.reason))
