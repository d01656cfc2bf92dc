"""The outcome table (agent/outcome.py, docs/outcome.md): its decisions, read back from certificates."""

from __future__ import annotations

import pytest

import certify_samples as S
from agent import outcome
from agent.certify.payload import build_payload


@pytest.mark.parametrize("result, health, errors, destination, reason", [
    ("success", "good", False, "reuse", "healthy"),
    ("success", None, False, "reuse_after_check", "no_health_data"),
    ("success", "unknown", False, "reuse_after_check", "no_health_data"),
    ("success", "mystery", False, "reuse_after_check", "health_unclear"),
    ("success", "worn", False, "recycle", "drive_worn"),
    ("success", "failing", False, "recycle", "drive_failing"),
    ("failed", "good", False, "wipe_again", "wipe_failed"),
    ("failed", None, True, "destroy", "media_errors"),
    ("failed", "failing", False, "destroy", "drive_failing"),
    ("interrupted", "failing", True, "wipe_again", "interrupted"),
    ("something-else", "good", False, "wipe_again", "wipe_failed"),  # never mistaken for a success
])
def test_decide(result, health, errors, destination, reason):
    d = outcome.decide(result, "Purge", health, errors)
    assert (d.destination, d.reason) == (destination, reason)
    assert d.category == ("purge" if result == "success" else "none")


def test_a_certificate_without_codes_is_read_through_the_table():
    p = build_payload(S.failed_with_media_errors(), S.audit_for(S.failed_with_media_errors()), S.config(), key_id="ab" * 32)
    assert outcome.decision_of(p) == outcome.decide_payload(p)
    del p["destination"]["code"], p["destination"]["reason"]
    p["destination"]["details"] = "Not sanitized: wipe it again, or destroy it (NIST Destroy) before it leaves the site."
    assert outcome.decision_of(p).destination == "destroy"  # error ranges recorded


@pytest.mark.parametrize("audit, results, expected", [
    ("reuse", ["success", "success"], "reuse"),
    ("repair", ["success"], "repair"),
    ("reuse", ["success", "failed"], "attention"),
    ("recycle", ["interrupted"], "attention"),
    (None, ["failed"], "attention"),
    (None, ["success"], None),
    ("reuse", [], "reuse"),
])
def test_machine_verdict_turns_to_attention_while_a_drive_is_not_sanitized(audit, results, expected):
    assert outcome.machine_verdict(audit, results) == expected


def test_every_code_has_words_and_no_audit_is_not_reuse():
    for family, describe in ((outcome.Result, outcome.describe_result), (outcome.CategoryCode, outcome.describe_category),
                             (outcome.Destination, outcome.describe_destination), (outcome.Reason, outcome.describe_reason),
                             (outcome.MachineCode, outcome.describe_machine)):
        for code in family:
            assert describe(code)
    assert "reuse" not in outcome.describe_machine(None)
