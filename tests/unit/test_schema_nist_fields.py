"""The certificate schema carries every field of the NIST SP 800-88 sample certificate."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

import certify_samples as S
from agent.certify import envelope
from agent.certify.check import load_schema, schema_errors
from agent.certify.payload import build_payload

# NIST SP 800-88 Rev. 1 Appendix G / Rev. 2 Appendix C, field by field, as JSON paths.
NIST_FIELDS = [
    ("person", "name"), ("person", "title"), ("person", "organization"), ("person", "location"), ("person", "contact"),
    ("media", "manufacturer"), ("media", "model"), ("media", "serial"), ("media", "property_number"),
    ("media", "media_type"), ("media", "source"), ("media", "source", "vendor"), ("media", "source", "model"),
    ("media", "source", "serial"), ("media", "source", "asset_tag"), ("media", "classification"),
    ("media", "data_backed_up"), ("media", "backup_location"),
    ("sanitization", "category"), ("sanitization", "technique"), ("sanitization", "method"),
    ("sanitization", "method_details"), ("sanitization", "tool"), ("sanitization", "tool", "version"),
    ("verification", "method"), ("verification", "result"),
    ("post_sanitization_classification",), ("notes",),
    ("destination",), ("destination", "type"), ("destination", "details"),
    ("attestation",), ("attestation", "statement"), ("attestation", "name"), ("attestation", "date"),
    ("attestation", "signature"),
    ("validation", "name"), ("validation", "title"), ("validation", "organization"), ("validation", "date"),
]
ARDOISE_FIELDS = [
    ("certificate_id",), ("lot",), ("customer",), ("sanitization", "hidden_areas"), ("sanitization", "steps"),
    ("sanitization", "passes"), ("sanitization", "bytes_written"), ("sanitization", "duration_ms"),
    ("sanitization", "throughput_bps"), ("sanitization", "error_ranges"), ("sanitization", "resumed"),
    ("health", "smart"), ("health", "verdict"), ("station", "key_id"), ("agent", "version"), ("schema_version",),
]


@pytest.fixture(scope="module")
def payload():
    r = S.overwrite_success()
    return build_payload(r, S.audit_for(r), S.config(), key_id="ab" * 32)


def test_the_schema_is_valid_draft_2020_12():
    for t in (envelope.ERASURE_TYPE, envelope.AUDIT_TYPE):
        jsonschema.Draft202012Validator.check_schema(load_schema(t))


def test_the_schema_shipped_in_the_package_is_the_file_in_the_repo():
    repo = Path(__file__).parents[2] / "agent" / "schemas" / "erasure-certificate.v1.json"
    assert load_schema() == json.loads(repo.read_text())


def test_a_built_payload_is_schema_valid(payload):
    assert schema_errors(payload) == []


@pytest.mark.parametrize("path", NIST_FIELDS + ARDOISE_FIELDS, ids=lambda p: ".".join(p))
def test_removing_a_field_makes_the_certificate_invalid(payload, path):
    broken = copy.deepcopy(payload)
    obj = broken
    for part in path[:-1]:
        obj = obj[part]
    del obj[path[-1]]
    errors = schema_errors(broken)
    assert errors, f"schema accepted a certificate without {'.'.join(path)}"
    assert any(repr(path[-1]) in e for e in errors)


def test_unknown_fields_are_refused(payload):
    broken = copy.deepcopy(payload)
    broken["media"]["colour"] = "blue"
    assert schema_errors(broken)


def test_a_float_is_refused_where_an_integer_is_expected(payload):
    broken = copy.deepcopy(payload)
    broken["sanitization"]["duration_ms"] = 1.5
    assert schema_errors(broken)


def test_category_is_one_of_clear_purge_destroy(payload):
    broken = copy.deepcopy(payload)
    broken["sanitization"]["category"] = "Wipe"
    assert schema_errors(broken)
