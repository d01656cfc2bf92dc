"""Station keys as a collector publishes them (``GET /api/v1/keys``, docs/collector-api.md):
what ``ardoise verify --collector URL`` trusts, with each key's enrollment and revocation.

A revoked key still vouches for what it signed before its revocation: a station is
revoked when it is lost or retired, and the drives it certified stay certified. What it
signs afterwards is refused. The date compared is the certificate's ``issued_at``, which
the signer writes itself: whoever stole a key can backdate, so a revocation bounds honest
mistakes, not a thief (docs/certificate.md says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.certify.keys import key_id, load_public_key
from agent.errors import CertificateError, DeliveryError

KEYS_PATH = "/api/v1/keys"
TIMEOUT_S = 10


@dataclass(frozen=True)
class PublishedKey:
    key_id: str
    station_id: str | None
    name: str | None
    enrolled_at: str | None
    revoked_at: str | None  # None: in service


@dataclass
class PublishedKeys:
    url: str
    keys: dict[str, Ed25519PublicKey]
    info: dict[str, PublishedKey]

    def revocation_problem(self, signer: str | None, issued_at: str | None) -> str | None:
        """Why a certificate signed by ``signer`` on ``issued_at`` is refused, or None."""
        k = self.info.get(signer or "")
        if k is None or k.revoked_at is None:
            return None
        issued, revoked = _when(issued_at), _when(k.revoked_at)
        # An undated certificate, or a revocation date nobody can read, cannot be placed before it.
        if issued is None or revoked is None or issued >= revoked:
            return (f"revoked-key: signed by station {k.station_id or '?'} whose key was revoked on {k.revoked_at}, "
                    f"and the certificate is dated {issued_at}, after that")
        return None

    def note(self, signer: str | None) -> str:
        k = self.info.get(signer or "")
        if k is None:
            return ""
        state = f"revoked on {k.revoked_at}, after this certificate" if k.revoked_at else "in service"
        return f"station {k.station_id or '?'} at {self.url}, enrolled {k.enrolled_at}, {state}"


def _when(text: str | None) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)  # the collector speaks UTC


def parse_keys(url: str, body: object) -> PublishedKeys:
    """The key list of a collector's answer; ``CertificateError`` if it is not one."""
    items = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise CertificateError(f"{url}{KEYS_PATH} did not answer a key list")
    keys: dict[str, Ed25519PublicKey] = {}
    info: dict[str, PublishedKey] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("public_pem"), str):
            raise CertificateError(f"{url}{KEYS_PATH}: key {i} has no public_pem")
        pub = load_public_key(item["public_pem"].encode("ascii", "replace"), source=f"{url}{KEYS_PATH} key {i}")
        kid = key_id(pub)
        if item.get("key_id") not in (None, kid):
            raise CertificateError(f"{url}{KEYS_PATH}: key {i} is named {str(item['key_id'])[:16]} but its id is {kid[:16]}")
        new = PublishedKey(kid, item.get("station_id"), item.get("name"), item.get("enrolled_at"), item.get("revoked_at"))
        old = info.get(kid)
        # One key enrolled again after a revocation: in service if any of its stations is.
        if old is None or new.revoked_at is None or (old.revoked_at is not None and new.revoked_at > old.revoked_at):
            info[kid] = new
        keys[kid] = pub
    return PublishedKeys(url, keys, info)


def fetch_keys(url: str) -> PublishedKeys:
    """Every key a collector publishes; ``DeliveryError`` in one line when it cannot tell."""
    import requests

    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise DeliveryError(f"collector URL must start with http:// or https:// (got {url!r})")
    try:
        r = requests.get(base + KEYS_PATH, timeout=TIMEOUT_S, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise DeliveryError(f"cannot fetch station keys from {base}: {_short(exc)}") from None
    if r.status_code != 200:
        raise DeliveryError(f"cannot fetch station keys from {base}: HTTP {r.status_code}")
    try:
        body = r.json()
    except ValueError:
        raise DeliveryError(f"cannot fetch station keys from {base}: the answer is not JSON") from None
    try:
        return parse_keys(base, body)
    except CertificateError as exc:
        raise DeliveryError(str(exc)) from None


def _short(exc: Exception) -> str:
    """A reason a person reads, not urllib3's nested repr."""
    import requests

    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        for hint, said in (("Connection refused", "connection refused"), ("Name or service not known", "unknown host"),
                           ("timed out", "timed out"), ("certificate verify failed", "TLS certificate not trusted")):
            if hint in text:
                return said
        return "cannot connect"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return type(exc).__name__
