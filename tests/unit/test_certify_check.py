"""Tampering and inconsistency: every forged or broken certificate is rejected, with the right reason."""

from __future__ import annotations

import base64
import copy
import json

import pytest

import certify_samples as S
from agent.certify import envelope
from agent.certify.canonical import canonical_bytes
from agent.certify.check import check_certificate, check_file
from agent.certify.keys import StationKey
from agent.certify.payload import build_payload


@pytest.fixture(scope="module")
def key():
    return StationKey.generate()


@pytest.fixture(scope="module")
def trusted(key):
    return {key.key_id: key.public_key}


def signed(key, result=None, mutate=None) -> dict:
    p = build_payload(result or S.overwrite_success(), S.audit_for(result or S.overwrite_success()), S.config(), key_id=key.key_id)
    if mutate:
        mutate(p)
    return envelope.sign_envelope(p, envelope.ERASURE_TYPE, key)


def codes(report) -> set[str]:
    return set(report.codes)


def test_an_untouched_certificate_is_valid(key, trusted):
    data = envelope.dump_envelope(signed(key))
    report = check_certificate(data, trusted)
    assert report.valid, report.reasons
    assert report.key_id == key.key_id
    assert report.digest == envelope.envelope_digest(data)
    assert report.payload["sanitization"]["outcome"] == "success"


def _spans(text: str, env: dict) -> dict[str, range]:
    """Where each value of the envelope sits in its file text (inside the quotes)."""
    spans = {}
    for name, value in (("payloadType", env["payloadType"]), ("payload", env["payload"]),
                        ("keyid", env["signatures"][0]["keyid"]), ("sig", env["signatures"][0]["sig"])):
        start = text.index(f'"{name}": "') + len(name) + 5
        assert text[start:start + len(value)] == value
        spans[name] = range(start, start + len(value))
    return spans


EXPECTED = {
    "payloadType": {"payload-type"},
    "payload": {"bad-signature", "payload-encoding"},
    "keyid": {"unknown-key"},
    "sig": {"bad-signature", "payload-encoding"},
}


def test_flipping_any_of_a_spread_of_bytes_is_caught_with_the_reason_of_its_region(key, trusted):
    env = signed(key)
    data = envelope.dump_envelope(env)
    spans = _spans(data.decode(), env)
    positions = sorted(set(range(0, len(data), 53)) | {len(data) - 2, len(data) - 1} | {r[0] for r in spans.values()}
                       | {r[-1] for r in spans.values()})
    assert len(positions) > 40
    for pos in positions:
        for bit in (0x01, 0x20):
            broken = bytearray(data)
            broken[pos] ^= bit
            report = check_certificate(bytes(broken), trusted)
            where = next((n for n, r in spans.items() if pos in r), "structure")
            expected = EXPECTED.get(where, {"not-json", "envelope-shape"})
            if broken[pos] < 0x20 or broken[pos] >= 0x7f or broken[pos] in b'"\\':
                expected = {"not-json"}  # a control char, quote or non-ASCII byte breaks the JSON itself
            assert not report.valid, f"flip {bit:#x} at {pos} ({where}) accepted"
            assert codes(report) <= expected, f"flip at {pos} ({where}): {report.reasons}"


def test_changed_payload_field_reencoded_is_a_bad_signature(key, trusted):
    env = signed(key)
    payload = json.loads(base64.b64decode(env["payload"]))
    payload["media"]["serial"] = "SOMEONE-ELSES-DRIVE"
    env["payload"] = base64.b64encode(canonical_bytes(payload)).decode()
    report = check_certificate(env, trusted)
    assert codes(report) == {"bad-signature"}


def test_failed_outcome_rewritten_as_success_is_a_bad_signature(key, trusted):
    env = signed(key, S.failed_with_media_errors())
    payload = json.loads(base64.b64decode(env["payload"]))
    payload["sanitization"]["outcome"] = "success"
    env["payload"] = base64.b64encode(canonical_bytes(payload)).decode()
    assert codes(check_certificate(env, trusted)) == {"bad-signature"}


def test_signature_reused_from_another_certificate_is_rejected(key, trusted):
    a, b = signed(key), signed(key, S.purge_success())
    a["signatures"] = copy.deepcopy(b["signatures"])
    assert codes(check_certificate(a, trusted)) == {"bad-signature"}


def test_swapped_payload_is_rejected(key, trusted):
    a, b = signed(key), signed(key, S.interrupted())
    a["payload"] = b["payload"]
    assert codes(check_certificate(a, trusted)) == {"bad-signature"}


def test_another_stations_key_is_an_unknown_key(key, trusted):
    other = StationKey.generate()
    report = check_certificate(signed(other), trusted)
    assert codes(report) == {"unknown-key"}
    assert "unknown key" in report.reason


def test_another_stations_signature_under_our_key_id_is_a_bad_signature(key, trusted):
    other = StationKey.generate()
    env = signed(other)
    env["signatures"][0]["keyid"] = key.key_id
    assert codes(check_certificate(env, trusted)) == {"bad-signature"}


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file_is_reported_as_truncated(key, trusted, keep):
    data = envelope.dump_envelope(signed(key))
    cut = data[: int(len(data) * keep)]
    assert codes(check_certificate(cut, trusted)) == {"truncated"}


def test_wrong_payload_type_is_rejected(key, trusted):
    env = signed(key)
    env["payloadType"] = "application/json"
    assert codes(check_certificate(env, trusted)) == {"payload-type"}
    audit_env = envelope.sign_envelope({"x": 1}, envelope.AUDIT_TYPE, key)
    assert codes(check_certificate(audit_env, trusted)) == {"payload-type"}


def test_not_json_at_all_is_rejected(trusted):
    assert codes(check_certificate(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", trusted)) == {"not-json"}
    assert codes(check_certificate(b"hello, world\n", trusted)) == {"not-json"}


def test_missing_file_is_reported(tmp_path, trusted):
    assert codes(check_file(tmp_path / "nope.json", trusted)) == {"missing-file"}


# ---------------------------------------------------------------- signed but inconsistent


def _inconsistent(key, trusted, mutate, result=None) -> str:
    report = check_certificate(signed(key, result, mutate), trusted)
    assert not report.valid
    assert codes(report) == {"inconsistent"}, report.reasons
    return " ".join(report.reasons)


def test_purge_claimed_without_passed_verification_is_inconsistent(key, trusted):
    def m(p):
        p["verification"].update(result="failed", read_errors=[{"start": 1, "end": 2}])
    assert "Purge is claimed but verification failed" in _inconsistent(key, trusted, m, S.purge_success())


def test_purge_claimed_from_a_clear_step_is_inconsistent(key, trusted):
    def m(p):
        p["sanitization"]["category"] = "Purge"
    assert "no Purge step succeeded" in _inconsistent(key, trusted, m)


def test_success_with_error_ranges_is_inconsistent(key, trusted):
    def m(p):
        p["sanitization"]["error_ranges"] = [{"start": 8, "end": 16}]
    assert "error range" in _inconsistent(key, trusted, m)


def test_failed_outcome_carrying_a_category_is_inconsistent(key, trusted):
    def m(p):
        p["sanitization"]["category"] = "Clear"
        p["sanitization"].pop("category_reason")
    assert "outcome is failed" in _inconsistent(key, trusted, m, S.failed_with_media_errors())


def test_verification_passed_with_mismatches_is_inconsistent(key, trusted):
    def m(p):
        p["verification"]["mismatches"] = [{"start": 0, "end": 1}]
    assert "passed but lists mismatches" in _inconsistent(key, trusted, m)


def test_verification_failed_under_a_success_is_inconsistent(key, trusted):
    def m(p):
        p["verification"].update(result="failed", mismatches=[{"start": 0, "end": 1}])
    assert "verification failed" in _inconsistent(key, trusted, m)


def test_sample_verification_without_samples_cannot_pass(key, trusted):
    def m(p):
        p["verification"].update(samples=0, bytes_read=0)
    assert "without reading anything" in _inconsistent(key, trusted, m)


def test_null_without_a_reason_is_inconsistent(key, trusted):
    def m(p):
        p["person"].pop("name")
        p["person"]["name"] = None
    assert "person.name is null without a name_reason" in _inconsistent(key, trusted, m, None)


def test_payload_naming_another_station_key_is_inconsistent(key, trusted):
    def m(p):
        p["station"]["key_id"] = "0" * 64
    assert "names station key" in _inconsistent(key, trusted, m)


def test_schema_violation_in_a_signed_payload_is_reported_as_schema(key, trusted):
    def m(p):
        p["sanitization"]["outcome"] = "mostly-done"
    report = check_certificate(signed(key, None, m), trusted)
    assert codes(report) == {"schema"}
    assert "/sanitization/outcome" in report.reason


def test_a_destination_the_outcome_table_does_not_give_is_inconsistent(key, trusted):
    # A failed drive signed as "reuse" would send unsanitized data out of the workshop.
    def m(p):
        p["destination"].update(type="reuse", code="reuse", reason="healthy", details="reuse")
    assert "does not follow from the recorded facts" in _inconsistent(key, trusted, m, S.failed_with_media_errors())


def test_a_certificate_issued_before_the_destination_codes_still_verifies(key, trusted):
    p = build_payload(S.interrupted(), None, S.config(), key_id=key.key_id)
    del p["destination"]["code"], p["destination"]["reason"], p["audit_id"], p["audit_id_reason"]
    p["destination"].update(type="other", details="Not sanitized: wipe it again, or destroy it (NIST Destroy) before it leaves the site.")
    report = check_certificate(envelope.sign_envelope(p, envelope.ERASURE_TYPE, key), trusted)
    assert report.valid, report.reasons
# --------------------------------------------------------------------------- canonical form (issue 17)

def _resigned(key, text: str) -> dict:
    """An envelope over exactly ``text``: a valid signature, whatever the bytes are."""
    body = text.encode("utf-8", "surrogatepass")
    sig = key.sign(envelope.pae(envelope.ERASURE_TYPE, body))
    return {"payloadType": envelope.ERASURE_TYPE, "payload": base64.b64encode(body).decode(),
            "signatures": [{"keyid": key.key_id, "sig": base64.b64encode(sig).decode()}]}


def _payload(key) -> dict:
    return build_payload(S.overwrite_success(), None, S.config(), key_id=key.key_id)


@pytest.mark.parametrize("rewrite", [
    lambda t: json.dumps(json.loads(t), indent=1, sort_keys=True, ensure_ascii=False),
    lambda t: json.dumps(json.loads(t), sort_keys=True, separators=(",", ":")),  # ASCII escapes
    lambda t: t.replace('"verification"', '"\\u0076erification"', 1),
    lambda t: t.replace('"smart":null', '"smart":{"x":NaN}', 1),
    lambda t: t.replace('"smart":null', '"smart":{"x":-Infinity}', 1),
    lambda t: t.replace('"smart":null', '"smart":{"x":0.5}', 1),
    lambda t: t.replace('"smart":null', '"smart":{"x":"\\ud800"}', 1),
    lambda t: t.replace('"smart":null', '"smart":' + "[" * 60 + "]" * 60, 1),
], ids=["indented", "ascii-escaped", "needless-escape", "nan", "infinity", "float", "lone-surrogate", "deep"])
def test_signed_bytes_that_are_not_the_canonical_form_are_refused(key, trusted, rewrite):
    text = canonical_bytes(_payload(key)).decode()
    assert '"smart":null' in text
    changed = rewrite(text)
    assert changed != text
    report = check_certificate(_resigned(key, changed), trusted)
    assert not report.valid and report.codes == ["not-canonical"], report.reasons
    assert check_certificate(_resigned(key, text), trusted).valid  # the control


@pytest.mark.parametrize("field,value", [
    ("certificate_id", "0b7e5f1c-3a49-4c1e-9b1e-6f0d2f3c9a10\n"),
    ("issued_at", "2026-11-27T10:00:00Z\n"),
    ("issued_at", "٢٠٢٦-11-27T10:00:00Z"),
])
def test_ids_and_timestamps_must_match_their_pattern_in_full_in_both_schema_validators(key, trusted, field, value):
    from agent.certify.check import _fast_validator, _validator
    p = _payload(key)
    p[field] = value
    assert not _validator(envelope.ERASURE_TYPE).is_valid(p)  # Python's "$" and "\d" no longer let it in
    fast = _fast_validator(envelope.ERASURE_TYPE)
    if fast is not None:
        assert not fast.is_valid(p)
    report = check_certificate(envelope.sign_envelope(p, envelope.ERASURE_TYPE, key), trusted)
    assert not report.valid and report.codes[0] == "schema"


def test_a_size_beyond_64_bits_is_a_schema_error(key, trusted):
    p = _payload(key)
    p["media"]["size_bytes"] = 10**30
    report = check_certificate(envelope.sign_envelope(p, envelope.ERASURE_TYPE, key), trusted)
    assert not report.valid and "/media/size_bytes" in report.reason


def test_keys_with_control_characters_cannot_be_signed_or_verified(key, trusted):
    p = _payload(key)
    p["media"]["serial_reason\n"] = "x"
    with pytest.raises(Exception, match="control character"):
        envelope.sign_envelope(p, envelope.ERASURE_TYPE, key)
    text = json.dumps(p, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert check_certificate(_resigned(key, text), trusted).codes == ["not-canonical"]


def test_a_number_of_thousands_of_digits_is_refused_in_one_clear_line(trusted):
    report = check_certificate(b'{"payloadType": "x", "payload": "", "signatures": [], "n": ' + b"9" * 5000 + b"}", trusted)
    assert report.codes == ["not-json"] and report.reason == "not-json: file has a number too long to read"
