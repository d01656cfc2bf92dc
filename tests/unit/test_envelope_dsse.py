from __future__ import annotations

import base64
import json

import pytest

from agent.certify import envelope
from agent.certify.canonical import canonical_bytes
from agent.certify.keys import StationKey
from agent.errors import CertificateError


@pytest.fixture(scope="module")
def key():
    return StationKey.generate()


def test_pae_matches_the_dsse_spec_example():
    assert envelope.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters():
    assert envelope.pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


def test_payload_serialization_is_deterministic_and_sorted():
    a = canonical_bytes({"b": 1, "a": {"z": "é", "y": [True, None]}})
    b = canonical_bytes({"a": {"y": [True, None], "z": "é"}, "b": 1})
    assert a == b == '{"a":{"y":[true,null],"z":"é"},"b":1}'.encode()


def test_floats_are_refused_in_a_payload():
    with pytest.raises(CertificateError, match=r"\$\.x\.y is a float"):
        canonical_bytes({"x": {"y": 1.5}})


def test_signed_envelope_verifies_and_names_its_key(key):
    env = envelope.sign_envelope({"hello": "world"}, envelope.ERASURE_TYPE, key)
    assert env["signatures"][0]["keyid"] == key.key_id
    opened = envelope.verify_envelope(envelope.dump_envelope(env), {key.key_id: key.public_key})
    assert opened.payload == {"hello": "world"}
    assert opened.key_id == key.key_id
    assert opened.digest == envelope.envelope_digest(env)


def test_signature_is_over_the_pae_of_the_exact_payload_bytes(key):
    env = envelope.sign_envelope({"n": 1}, envelope.ERASURE_TYPE, key)
    body = base64.b64decode(env["payload"])
    key.public_key.verify(base64.b64decode(env["signatures"][0]["sig"]), envelope.pae(envelope.ERASURE_TYPE, body))


def test_digest_ignores_envelope_formatting_and_is_the_payload_sha256(key):
    import hashlib

    env = envelope.sign_envelope({"n": 1}, envelope.AUDIT_TYPE, key)
    compact = json.dumps(env, separators=(",", ":")).encode()
    assert envelope.envelope_digest(compact) == envelope.envelope_digest(envelope.dump_envelope(env))
    assert envelope.envelope_digest(env) == hashlib.sha256(b'{"n":1}').hexdigest()


def test_payload_type_is_bound_by_the_signature(key):
    env = envelope.sign_envelope({"n": 1}, envelope.AUDIT_TYPE, key)
    env["payloadType"] = envelope.ERASURE_TYPE
    with pytest.raises(CertificateError, match="bad-signature"):
        envelope.open_envelope(env, {key.key_id: key.public_key})


def test_unexpected_payload_type_is_refused(key):
    env = envelope.sign_envelope({"n": 1}, envelope.AUDIT_TYPE, key)
    with pytest.raises(CertificateError, match="payload-type: wrong payloadType"):
        envelope.open_envelope(env, {key.key_id: key.public_key}, payload_type=envelope.ERASURE_TYPE)


def test_unknown_key_is_named_as_such(key):
    env = envelope.sign_envelope({"n": 1}, envelope.ERASURE_TYPE, key)
    other = StationKey.generate()
    with pytest.raises(CertificateError, match="unknown-key"):
        envelope.open_envelope(env, {other.key_id: other.public_key})


def test_non_canonical_base64_is_refused_even_when_it_decodes_the_same(key):
    env = envelope.sign_envelope({"n": 1}, envelope.ERASURE_TYPE, key)
    # '{"n":1}' is 7 bytes: its base64 ends in '=' with 2 spare bits in the last char.
    p = env["payload"]
    assert p.endswith("=")
    last = p.rstrip("=")[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    twin = alphabet[alphabet.index(last) + 1]
    pad = len(p) - len(p.rstrip("="))
    env["payload"] = p.rstrip("=")[:-1] + twin + "=" * pad
    assert base64.b64decode(env["payload"]) == base64.b64decode(p)
    with pytest.raises(CertificateError, match="payload-encoding"):
        envelope.open_envelope(env, {key.key_id: key.public_key})


@pytest.mark.parametrize(
    "data, code",
    [
        (b"", "truncated"),
        (b"%PDF-1.7 not json", "not-json"),
        (b"\xff\xfe", "not-json"),
        (b'{"payloadType": "x", "payl', "truncated"),
        (b"[1, 2]", "envelope-shape"),
        (b'{"payload": "", "payload": "", "payloadType": "", "signatures": []}', "not-json"),
        (b'{"payloadType": "x", "payload": ""}', "envelope-shape"),
        (b'{"a":' + b"[" * 100000 + b"]" * 100000 + b"}", "not-json"),
        (b'{"payloadType": "x", "payload": "", "signatures": []}', "envelope-shape"),
    ],
)
def test_malformed_inputs_are_refused_with_their_reason(key, data, code):
    with pytest.raises(CertificateError) as err:
        envelope.open_envelope(data, {key.key_id: key.public_key})
    assert err.value.detail["code"] == code
    assert "\n" not in str(err.value)


def test_any_valid_signature_among_several_suffices(key):
    other = StationKey.generate()
    env = envelope.sign_envelope({"n": 1}, envelope.ERASURE_TYPE, key)
    env2 = envelope.sign_envelope({"n": 1}, envelope.ERASURE_TYPE, other)
    env["signatures"] = env2["signatures"] + env["signatures"]
    assert envelope.open_envelope(env, {key.key_id: key.public_key}) == {"n": 1}
