"""Receipts: the collector's signed word that it received one certificate, and when.

A station's private key sits unencrypted on its stick; whoever holds the stick can sign
for it until the station is revoked. A receipt bounds that: it is signed by the collector's
own key (never on a stick), names the certificate's digest and the time it arrived, and
the station keeps it beside the certificate. A certificate that surfaces later without a
receipt, or received after its lot was closed, stands out. Same DSSE/Ed25519 scheme as the
certificates (agent/certify/envelope.py), payloadType ``RECEIPT_TYPE``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.certify import envelope as env
from agent.certify.keys import StationKey
from agent.errors import ConfigError
from server_stub.db import _sqlite_file
from server_stub.stations import iso

KEY_URL = "/api/v1/receipt-key"


def default_key_path(db_url: str) -> Path | None:
    """Beside the SQLite file; in the working directory for PostgreSQL; None in memory."""
    if db_url.startswith("sqlite"):
        f = _sqlite_file(db_url)
        return Path(f + ".receipt-key.pem") if f else None
    return Path("ardoise-collector-receipt-key.pem").absolute()


def key_path(settings) -> Path | None:
    return Path(settings.receipt_key_path) if settings.receipt_key_path else default_key_path(settings.db_url)


def load_or_create(path: Path | None) -> StationKey:
    """The receipt key at ``path``, created (mode 0600) the first time; an in-memory key
    when there is no path (an in-memory database keeps nothing either)."""
    if path is None:
        return StationKey.generate()
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        try:
            # O_EXCL: two workers starting together keep the first key, never two.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
        except FileExistsError:
            pass
        except OSError as exc:
            raise ConfigError(f"cannot create the receipt key {path}: {exc.strerror}") from None
    return StationKey.from_file(path, "receipt key")


@dataclass
class Receipt:
    kind: str  # erasure | audit
    id: str
    digest: str
    station_id: str
    station_key_id: str
    received_at: datetime


def sign(key: StationKey, r: Receipt) -> dict:
    payload = {"receipt": 1, "kind": r.kind, "id": r.id, "digest": r.digest, "station_id": r.station_id,
               "station_key_id": r.station_key_id, "received_at": iso(r.received_at),
               "collector_key_id": key.key_id}
    return env.sign_envelope(payload, env.RECEIPT_TYPE, key)


def public_json(key: StationKey) -> dict:
    return {"key_id": key.key_id, "public_key": key.public_pem, "payload_type": env.RECEIPT_TYPE}
