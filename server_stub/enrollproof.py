"""Proof that an enrolling station holds its private key.

The collector hands out a challenge (``POST /api/v1/stations/challenge``); the station
signs ``agent.deliver.client.enrollment_message(challenge, token, key_id)`` with its
Ed25519 key and sends challenge and signature with the enrollment. Challenges are
stateless: a random nonce and the issue time, authenticated with the collector's secret
(shared by its workers), good for ``CHALLENGE_TTL_S``. A token and a public key alone,
which is all a used token and a published key give an attacker, are not enough.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.deliver.client import enrollment_message
from server_stub.errors import Unauthorized

CHALLENGE_PREFIX = "ardch_"
CHALLENGE_TTL_S = 300


def _mac(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), b"enrollment-challenge\0" + raw, hashlib.sha256).hexdigest()[:32]


def new_challenge(secret: str, now: float | None = None) -> str:
    raw = struct.pack(">Q", int(now if now is not None else time.time())) + secrets.token_bytes(16)
    return CHALLENGE_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + _mac(secret, raw)


def check(secret: str, challenge: str, signature: str, token: str, public_key: Ed25519PublicKey, key_id: str,
          now: float | None = None) -> None:
    """Raise ``Unauthorized`` unless ``signature`` is the key's signature of a fresh challenge
    of ours, bound to this token and key."""
    body, _, mac = challenge.removeprefix(CHALLENGE_PREFIX).partition(".")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if (not challenge.startswith(CHALLENGE_PREFIX) or len(raw) != 24
            or not secrets.compare_digest(mac.encode(), _mac(secret, raw).encode())):
        raise Unauthorized("enrollment challenge unknown to this collector: ask for a new one")
    age = (now if now is not None else time.time()) - struct.unpack(">Q", raw[:8])[0]
    if not -5 <= age <= CHALLENGE_TTL_S:
        raise Unauthorized("enrollment challenge expired: ask for a new one")
    try:
        sig = base64.b64decode(signature, validate=True)
        public_key.verify(sig, enrollment_message(challenge, token, key_id))
    except (binascii.Error, ValueError, InvalidSignature):
        raise Unauthorized("enrollment signature does not verify with public_key: "
                           "enrollment needs the station's private key") from None
