"""Signed certificates that break the canonical form or the schema in the ways the security
review (issue 17) found accepted, each signed over its exact bytes by a real station key so
that only the canonical/schema checks can refuse it. Shared by the CLI, upload and public
verify tests: the three must refuse the same inputs."""

from __future__ import annotations

import base64
import json

from agent.certify.canonical import canonical_bytes
from agent.certify.envelope import ERASURE_TYPE, pae
from agent.certify.keys import StationKey

import certs


def sign_raw(body: bytes, key: StationKey, payload_type: str = ERASURE_TYPE) -> bytes:
    """An envelope over exactly ``body``, whatever it is (the signer's canonical form bypassed)."""
    sig = key.sign(pae(payload_type, body))
    return json.dumps({"payloadType": payload_type, "payload": base64.b64encode(body).decode(),
                       "signatures": [{"keyid": key.key_id, "sig": base64.b64encode(sig).decode()}]}).encode()


def _dumps(p: dict) -> str:
    return json.dumps(p, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _nested(depth: int):
    value: object = "deep"
    for _ in range(depth):
        value = [value]
    return value


def bad_payloads(key: StationKey) -> dict[str, bytes]:
    """name -> payload bytes, each signed validly but not a certificate."""
    def p(**media) -> dict:
        out = certs.erasure_payload(key, "SER-HOSTILE")
        out["media"].update(media)
        return out

    def smart(value) -> dict:
        out = p()
        out["health"]["smart"] = {"attr": value}
        return out

    canonical = canonical_bytes(p()).decode()
    out = {
        "nan": _dumps(smart(float("nan"))),
        "infinity": _dumps(smart(float("inf"))),
        "float": _dumps(smart(1.5)),
        "indented": json.dumps(p(), sort_keys=True, indent=2, ensure_ascii=False),
        "needless-escape": canonical.replace('"verification"', '"\\u0076erification"', 1),
        "unsorted-keys": json.dumps(dict(reversed(p().items())), separators=(",", ":"), ensure_ascii=False),
        "lone-surrogate-serial": canonical.replace('"SER-HOSTILE"', '"\\ud800"', 1),
        "size-10^30": _dumps(p(size_bytes=10**30)),
        "nested-400-deep": _dumps(smart(_nested(400))),
        "nested-900-deep": _dumps(smart(_nested(900))),
        "key-with-newline": _dumps(p(**{"serial_reason\n": "x"})),
    }
    for name, field, suffix in (("id-ending-in-newline", "certificate_id", "\n"),
                                ("timestamp-ending-in-newline", "issued_at", "\n")):
        q = p()
        q[field] += suffix
        out[name] = _dumps(q)
    q = p()
    q["issued_at"] = "٢٠٢٦-11-27T10:00:00Z"  # Arabic-Indic digits: Python's \d matches them
    out["non-ascii-digits"] = _dumps(q)
    assert "\ud800" not in out["indented"]
    return {k: v.encode("utf-8", "surrogatepass") for k, v in out.items()}


def bad_envelopes(key: StationKey) -> dict[str, bytes]:
    return {name: sign_raw(body, key) for name, body in bad_payloads(key).items()}
