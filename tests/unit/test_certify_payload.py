"""The payload says what happened, from the records, and never more."""

from __future__ import annotations

import json
import os
import stat

import pytest

import certify_samples as S
from agent.certify import certificate_basename, issue_certificate, sign_audit_report
from agent.certify import envelope
from agent.certify.canonical import canonical_bytes
from agent.certify.check import check_certificate, check_file, schema_errors
from agent.certify.keys import StationKey
from agent.certify.payload import build_payload, recommend
from agent.config import Config


@pytest.fixture(scope="module")
def key():
    return StationKey.generate()


@pytest.fixture(scope="module")
def trusted(key):
    return {key.key_id: key.public_key}


@pytest.mark.parametrize("make, outcome", [(S.failed_with_media_errors, "failed"), (S.interrupted, "interrupted")])
def test_failed_or_interrupted_wipe_gives_a_valid_signed_certificate_that_says_so(tmp_path, key, trusted, make, outcome):
    files = issue_certificate(make(), None, S.config(), key, tmp_path)
    report = check_file(files.json_path, trusted)
    assert report.valid, report.reasons
    s = report.payload["sanitization"]
    assert s["outcome"] == outcome
    assert s["category"] is None and s["category_reason"]
    assert report.payload["destination"]["type"] != "reuse"
    assert "success" not in json.dumps(s["outcome"])


def test_outcome_and_category_are_copied_never_upgraded(key):
    r = S.failed_with_media_errors()
    r.steps[0].status = "failed"
    p = build_payload(r, S.audit_for(r), S.config(), key_id=key.key_id)
    assert p["sanitization"]["outcome"] == "failed"
    assert p["sanitization"]["category"] is None
    assert p["sanitization"]["error_ranges"] == [{"start": 1000, "end": 1016}, {"start": 90000, "end": 90008}]


def test_purge_certificate_records_every_step_attempted_with_its_commands(key):
    p = build_payload(S.purge_success(), None, S.config(), key_id=key.key_id)
    steps = p["sanitization"]["steps"]
    assert [s["method"] for s in steps] == ["nvme-sanitize-crypto", "nvme-format-crypto"]
    assert steps[0]["status"] == "unsupported" and steps[0]["error"]
    assert steps[1]["commands"][0]["argv"] == ["nvme", "format", "/dev/nvme0n1", "--ses=2", "--force"]
    assert steps[1]["commands"][0]["duration_ms"] == 3500
    assert p["sanitization"]["category"] == "Purge"
    assert p["sanitization"]["technique"] == "Cryptographic Erase"  # Format NVM with SES=2
    assert p["sanitization"]["tool"]["external"] == ["nvme"]


def test_operator_and_lot_come_from_the_config(key):
    p = build_payload(S.overwrite_success(), None, S.config(), key_id=key.key_id)
    assert p["person"]["name"] == "Camille Martin"
    assert p["person"]["organization"] == "Atelier Réemploi"
    assert p["attestation"]["name"] == "Camille Martin"
    assert p["lot"] == "LOT-2026-11"


def test_missing_values_are_null_with_a_reason_never_made_up(key):
    p = build_payload(S.overwrite_success(serial=None), None, Config.default(), key_id=key.key_id)
    assert p["media"]["serial"] is None and "serial" in p["media"]["serial_reason"]
    assert p["person"]["name"] is None and "operator.name" in p["person"]["name_reason"]
    assert p["media"]["source"]["vendor"] is None and "audit" in p["media"]["source"]["vendor_reason"]
    assert p["health"]["verdict"] is None and p["health"]["verdict_reason"]
    assert p["lot"] is None and p["lot_reason"]


def test_payload_has_no_floats_and_durations_are_milliseconds(key):
    r = S.overwrite_success()
    p = build_payload(r, S.audit_for(r), S.config(), key_id=key.key_id)
    canonical_bytes(p)  # raises on any float, including SMART's temperature
    assert p["sanitization"]["duration_ms"] == 1_200_500
    assert p["sanitization"]["passes"][0]["duration_ms"] == 1_190_250
    assert p["verification"]["coverage_ppm"] == 100_000
    assert p["verification"]["samples"] == 1000
    assert "raw" not in p["health"]["smart"]


def test_source_machine_and_smart_verdict_come_from_the_audit(key):
    r = S.overwrite_success()
    p = build_payload(r, S.audit_for(r, verdict="failing"), S.config(), key_id=key.key_id)
    assert p["media"]["source"]["model"] == "ThinkPad T480"
    assert p["media"]["source"]["asset_tag"] is None and p["media"]["source"]["asset_tag_reason"]
    assert p["health"]["verdict"] == "failing"
    assert p["destination"]["type"] == "recycle"


@pytest.mark.parametrize(
    "outcome, verdict, expected, code",
    [("success", "good", "reuse", "reuse"), ("success", "worn", "recycle", "recycle"),
     ("success", "unknown", "reuse", "reuse_after_check"), ("success", "failing", "recycle", "recycle"),
     ("success", None, "reuse", "reuse_after_check"), ("failed", "good", "other", "wipe_again"),
     ("failed", "failing", "other", "destroy"), ("interrupted", "failing", "other", "wipe_again")],
)
def test_destination_recommendation(outcome, verdict, expected, code):
    d = recommend(outcome, verdict)
    assert (d["type"], d["code"], d["details"]) == (expected, code, code)


def test_long_polling_sequences_are_cut_to_keep_the_certificate_small(key):
    r = S.purge_success()
    r.steps[1].commands = [{"argv": ["nvme", "sanitize-log", "/dev/nvme0"], "exit_code": 0, "stdout_tail": "x" * 5000}] * 500
    p = build_payload(r, None, S.config(), key_id=key.key_id)
    cmds = p["sanitization"]["steps"][1]["commands"]
    assert len(cmds) == 25 and "476 more commands" in cmds[12]["argv"][0]
    assert len(canonical_bytes(p)) < 32 * 1024


def test_issue_certificate_writes_serial_named_json_and_pdf_atomically(tmp_path, key, trusted):
    files = issue_certificate(S.overwrite_success(), None, S.config(), key, tmp_path)
    assert files.json_path.name == f"WD-WCC4N1234567-{files.id}.json"
    assert files.pdf_path.name == f"WD-WCC4N1234567-{files.id}.pdf"
    assert files.pdf_path.read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([files.json_path.name, files.pdf_path.name])
    assert check_file(files.json_path, trusted).digest == files.digest


def test_filename_falls_back_to_the_device_name_and_is_made_safe():
    assert certificate_basename(None, "loop7", "id") == "loop7-id"
    assert certificate_basename("  ", "sdb", "id") == "sdb-id"
    assert certificate_basename("AB 12/../x:y", "sdb", "id") == "AB_12_.._x_y-id"


def test_audit_report_is_signed_and_checks_against_its_own_schema(key, trusted):
    r = S.overwrite_success()
    env = sign_audit_report(S.audit_for(r), key, lot="LOT-1")
    assert env["payloadType"] == envelope.AUDIT_TYPE
    report = check_certificate(env, trusted, payload_type=envelope.AUDIT_TYPE)
    assert report.valid, report.reasons
    assert report.payload["machine"]["dmi"]["system_product"] == "ThinkPad T480"
    assert report.payload["disks"][0]["serial"] == "WD-WCC4N1234567"
    assert report.payload["disks"][0]["verdict"] == "good"
    assert report.payload["machine"]["batteries"][0]["health_percent"] == "81.5"
    assert report.payload["machine"]["batteries"][0]["design_capacity"] == 57000


def test_audit_payload_builder_takes_the_lot_from_the_config_and_the_id_from_the_key(key, trusted):
    from agent.certify.audit_report import build_audit_payload

    r = S.overwrite_success()
    payload = build_audit_payload(S.audit_for(r, verdict="worn"), S.config(), key)
    assert payload["lot"] == "LOT-2026-11" and payload["station"]["key_id"] == key.key_id
    assert payload["disks"][0]["verdict"] == "worn" and payload["disks"][0]["verdict_reasons"] == ["drive is worn"]
    assert "raw" not in payload["disks"][0]["smart"]
    env = envelope.sign_envelope(payload, envelope.AUDIT_TYPE, key)
    assert check_certificate(env, trusted, payload_type=envelope.AUDIT_TYPE).valid


@pytest.mark.parametrize(
    "method, technique",
    [("nvme-sanitize-crypto", "Cryptographic Erase"), ("nvme-format-crypto", "Cryptographic Erase"),
     ("nvme-sanitize-block", "Block Erase"), ("ata-sanitize-block", "Block Erase"),
     ("nvme-format-user-data", "Format NVM (User Data Erase)"), ("ata-security-erase-enhanced", "Secure Erase (ATA Security Erase Unit)"),
     ("scsi-sanitize-overwrite", "Overwrite"), ("overwrite:dod-3pass", "Overwrite"), ("zero", "Overwrite"),
     ("blkdiscard-secure", "Secure Discard (eMMC/SD secure trim)"), ("none", None)],
)
def test_nist_technique_is_named_from_the_policy_method(method, technique):
    from agent.certify.payload import technique_of

    assert technique_of(method) == technique


def test_the_certificate_names_the_signed_audit_report_of_its_run(key):
    r = S.overwrite_success()
    audit = S.audit_for(r)
    assert build_payload(r, audit, S.config(), key_id=key.key_id)["audit_id"] is None
    audit.report_id = "5f0d7a4e-0000-4000-8000-000000000001"
    p = build_payload(r, audit, S.config(), key_id=key.key_id)
    assert p["audit_id"] == "5f0d7a4e-0000-4000-8000-000000000001" and "audit_id_reason" not in p
    assert schema_errors(p) == []
