"""DSSE envelopes (https://github.com/secure-systems-lab/dsse, protocol v1).

The signature covers the pre-authentication encoding (PAE) of the payload type and the
exact payload bytes, so neither can be swapped without breaking it, and nothing has to be
re-serialized to verify: the verifier checks the bytes it decoded from base64.

The digest that names a certificate (QR code, collector idempotency) is the SHA-256 of the
payload bytes, i.e. of ``base64decode(envelope["payload"])``: it does not depend on how the
envelope JSON around it is indented, and ``jq -r .payload f.json | base64 -d | sha256sum``
recomputes it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.certify.canonical import canonical_bytes
from agent.errors import CertificateError

ERASURE_TYPE = "application/vnd.ardoise.erasure+json"
AUDIT_TYPE = "application/vnd.ardoise.audit+json"
PAYLOAD_TYPES = (ERASURE_TYPE, AUDIT_TYPE)
# The collector's signed acknowledgement of one upload (docs/collector-api.md, receipts).
# Not in PAYLOAD_TYPES: a receipt is never accepted where a certificate is expected.
RECEIPT_TYPE = "application/vnd.ardoise.receipt+json"
# The collector's signed lot report (docs/lots.md); like a receipt, never a certificate.
LOT_REPORT_TYPE = "application/vnd.ardoise.lot-report+json"
# The collector's signed list of every file of a donor's bundle, with its SHA-256.
BUNDLE_MANIFEST_TYPE = "application/vnd.ardoise.bundle-manifest+json"
SIGNABLE_TYPES = (*PAYLOAD_TYPES, RECEIPT_TYPE, LOT_REPORT_TYPE, BUNDLE_MANIFEST_TYPE)

# A certificate carries one signature. Without a keyid each signature is tried against
# every trusted key, so an envelope stuffed with thousands of them costs seconds of CPU
# (issue 17); a few leave room for a co-signature, nothing more.
MAX_SIGNATURES = 4

# Reason codes: stable words the CLI, the collector and tests can rely on; the message
# after them is for humans.
NOT_JSON = "not-json"
TRUNCATED = "truncated"
SHAPE = "envelope-shape"
PAYLOAD_TYPE = "payload-type"
ENCODING = "payload-encoding"
UNKNOWN_KEY = "unknown-key"
BAD_SIGNATURE = "bad-signature"
NOT_CANONICAL = "not-canonical"


def fail(code: str, message: str) -> CertificateError:
    return CertificateError(f"{code}: {message}", code=code)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSEv1 pre-authentication encoding: "DSSEv1 <len> <type> <len> <body>"."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sign_envelope(payload: dict, payload_type: str, key) -> dict:
    """Serialize ``payload`` canonically and sign it with ``key`` (a ``StationKey``)."""
    if payload_type not in SIGNABLE_TYPES:
        raise CertificateError(f"unknown payloadType {payload_type!r}")
    body = canonical_bytes(payload)
    sig = key.sign(pae(payload_type, body))
    return {"payloadType": payload_type, "payload": _b64(body), "signatures": [{"keyid": key.key_id, "sig": _b64(sig)}]}


def dump_envelope(envelope: dict) -> bytes:
    """File form of an envelope: indented for people, ends with a newline."""
    return (json.dumps(envelope, indent=2, sort_keys=False) + "\n").encode("ascii")


def digest_of_payload(payload_bytes: bytes) -> str:
    return hashlib.sha256(payload_bytes).hexdigest()


def envelope_digest(envelope: dict | bytes | str) -> str:
    """SHA-256 (hex) of the envelope's payload bytes: the certificate's digest."""
    env = parse_envelope(envelope) if not isinstance(envelope, dict) else envelope
    return digest_of_payload(_decode_b64(env.get("payload"), "payload"))


def _decode_b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise fail(SHAPE, f"{what} is not a string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise fail(ENCODING, f"{what} is not valid base64") from None
    # Base64 has spare bits in its last character; a lenient decoder would accept a
    # flipped spare bit as the same bytes. Only the canonical encoding is accepted.
    if _b64(raw) != value:
        raise fail(ENCODING, f"{what} is not canonical base64")
    return raw


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict[str, Any] = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError(f"duplicate key {k!r}")
        seen[k] = v
    return seen


def parse_json(data: bytes | str, what: str = "file") -> Any:
    """JSON with duplicate keys refused (a second "payload" must not shadow the first)."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise fail(NOT_JSON, f"{what} is not UTF-8 text (byte {exc.start})") from None
    else:
        text = data
    if not text.strip():
        raise fail(TRUNCATED if text == "" else NOT_JSON, f"{what} is empty")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        stripped = text.rstrip(" \t\r\n")  # JSON whitespace only
        # A file cut short fails at its very end (or inside a string that never closes);
        # a corrupted byte fails where it sits.
        cut = exc.pos >= len(stripped) or (exc.msg.startswith("Unterminated string") and '"' not in stripped[exc.pos + 1:])
        if stripped.lstrip().startswith("{") and cut:
            raise fail(TRUNCATED, f"{what} ends early, at character {len(stripped)}: truncated") from None
        raise fail(NOT_JSON, f"{what} is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except ValueError as exc:
        if str(exc).startswith("duplicate key"):
            raise fail(NOT_JSON, f"{what} has a {exc}") from None
        # Python refuses integers of more than 4300 digits (CVE-2020-10735).
        raise fail(NOT_JSON, f"{what} has a number too long to read") from None
    except RecursionError:
        raise fail(NOT_JSON, f"{what} is nested too deeply to be a certificate") from None


def parse_envelope(data: bytes | str | dict) -> dict:
    """The envelope as a dict, checked for DSSE shape (not for signature)."""
    env = data if isinstance(data, dict) else parse_json(data)
    if not isinstance(env, dict):
        raise fail(SHAPE, "not a DSSE envelope (the JSON is not an object)")
    missing = [k for k in ("payloadType", "payload", "signatures") if k not in env]
    if missing:
        raise fail(SHAPE, "not a DSSE envelope (missing " + ", ".join(missing) + ")")
    extra = sorted(set(env) - {"payloadType", "payload", "signatures"})
    if extra:
        raise fail(SHAPE, "unexpected envelope field " + ", ".join(extra))
    if not isinstance(env["payloadType"], str):
        raise fail(SHAPE, "payloadType is not a string")
    _printable(env["payloadType"], "payloadType")
    sigs = env["signatures"]
    if not isinstance(sigs, list) or not sigs:
        raise fail(SHAPE, "signatures must be a non-empty list")
    if len(sigs) > MAX_SIGNATURES:
        raise fail(SHAPE, f"{len(sigs)} signatures (a certificate has one; at most {MAX_SIGNATURES} are read)")
    for i, s in enumerate(sigs):
        if not isinstance(s, dict) or not isinstance(s.get("sig"), str):
            raise fail(SHAPE, f"signature {i} has no sig string")
        if "keyid" in s and not isinstance(s["keyid"], str):
            raise fail(SHAPE, f"signature {i} keyid is not a string")
        if "keyid" in s:
            _printable(s["keyid"], f"signature {i} keyid")
        extra = sorted(set(s) - {"keyid", "sig"})
        if extra:
            raise fail(SHAPE, f"signature {i} has unexpected field " + ", ".join(extra))
    return env


def _printable(value: str, what: str) -> None:
    """Envelope strings are ASCII words (a type, a hex key id): anything else (a lone
    surrogate, a control character) is refused here, before a message or page echoes it."""
    if not value.isascii() or not value.isprintable():
        raise fail(SHAPE, f"{what} is not printable ASCII")


@dataclass(frozen=True)
class Opened:
    """A verified envelope: which key signed it, and the bytes and object it carries."""

    payload_type: str
    payload_bytes: bytes
    payload: Any
    key_id: str
    digest: str


def verify_envelope(
    data: bytes | str | dict,
    trusted: dict[str, Ed25519PublicKey],
    *,
    payload_type: str | tuple[str, ...] = PAYLOAD_TYPES,
) -> Opened:
    """Shape, payload type and signature; raises ``CertificateError`` with the reason."""
    env = parse_envelope(data)
    allowed = (payload_type,) if isinstance(payload_type, str) else tuple(payload_type)
    if env["payloadType"] not in allowed:
        raise fail(PAYLOAD_TYPE, f"wrong payloadType {env['payloadType']!r} (expected {' or '.join(allowed)})")
    body = _decode_b64(env["payload"], "payload")
    message = pae(env["payloadType"], body)
    unknown: list[str] = []
    bad: list[str] = []
    for i, s in enumerate(env["signatures"]):
        sig = _decode_b64(s["sig"], f"signature {i}")
        kid = s.get("keyid") or None
        if kid is not None and kid not in trusted:
            unknown.append(kid)
            continue
        # keyid is a hint (DSSE says so); without it, every trusted key is tried.
        candidates = [(kid, trusted[kid])] if kid is not None else list(trusted.items())
        for cid, pub in candidates:
            try:
                pub.verify(sig, message)
            except InvalidSignature:
                continue
            return Opened(env["payloadType"], body, _payload_object(body), cid, digest_of_payload(body))
        bad.append(kid or "(no keyid)")
    if bad:
        raise fail(BAD_SIGNATURE, f"signature by key {bad[0][:16]} does not match the payload (changed or swapped)")
    raise fail(UNKNOWN_KEY, f"signed by unknown key {unknown[0][:16]}... (not among the {len(trusted)} trusted keys)")


def _payload_object(body: bytes) -> Any:
    try:
        payload = parse_json(body, "payload")
    except CertificateError as exc:
        # Signed but unparseable: the signer itself produced garbage.
        raise fail(ENCODING, str(exc).split(": ", 1)[-1]) from None
    # Only the exact bytes canonical_bytes() produces are a certificate (docs/certificate.md):
    # no floats, NaN or Infinity, no indentation, no needless \u escapes, no lone
    # surrogates. Whatever a signer put there, two readers then see the same thing.
    try:
        canonical = canonical_bytes(payload)
    except CertificateError as exc:
        raise fail(NOT_CANONICAL, f"payload is not canonical JSON ({exc})") from None
    if canonical != body:
        raise fail(NOT_CANONICAL, "payload is not canonical JSON (keys sorted, no spaces, UTF-8 without \\u escapes)")
    return payload


def open_envelope(data: bytes | str | dict, trusted: dict[str, Ed25519PublicKey], *, payload_type=PAYLOAD_TYPES) -> dict:
    """The verified payload object; raises ``CertificateError`` with a one-line reason."""
    opened = verify_envelope(data, trusted, payload_type=payload_type)
    if not isinstance(opened.payload, dict):
        raise fail(ENCODING, "payload is not a JSON object")
    return opened.payload
