"""Secrets handed out by the collector: enrollment tokens and station bearers.

They are 256-bit random strings, so a plain SHA-256 is enough to store them: there is no
password to brute-force, and a fast hash keeps the per-upload bearer check cheap.
"""

from __future__ import annotations

import hashlib
import secrets

ENROLLMENT_PREFIX = "ardenr_"
BEARER_PREFIX = "ardst_"


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_station_id() -> str:
    return "st_" + secrets.token_hex(8)
