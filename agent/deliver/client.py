"""The collector's HTTP client: enrollment, envelope upload, live progress.

The shapes are those of docs/collector-api.md. Uploads are retried with exponential
back-off and jitter because a workshop's network comes and goes; retrying a POST is safe
since the collector is idempotent on the envelope digest (a second copy answers 200).
"""

from __future__ import annotations

import base64
import json
import logging
import random
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import requests

from agent.config import CollectorConfig
from agent.deliver.spool import atomic_write
from agent.errors import DeliveryError

log = logging.getLogger("ardoise.deliver")

ENROLLMENT_FILE = "collector.json"
MAX_BACKOFF_S = 60.0
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
PERMANENT_STATUS = {400, 413, 422}


@dataclass
class Answer:
    """The collector's answer to one upload, reduced to what the spool needs."""

    http_status: int
    status: str
    id: str | None = None
    reason: str | None = None
    body: dict | None = None

    @property
    def delivered(self) -> bool:
        return self.http_status in (200, 201)

    @property
    def permanent(self) -> bool:
        return self.http_status in PERMANENT_STATUS


class Unreachable(DeliveryError):
    """Network error or repeated 5xx: keep the spool, try later."""

    kind = "collector-unreachable"


class Unauthorized(DeliveryError):
    kind = "collector-unauthorized"


def enrollment_message(challenge: str, token: str, key_id: str) -> bytes:
    """What a station signs to enroll (docs/collector-api.md): the collector's challenge,
    bound to the token and the key, under a label no certificate signature can carry."""
    return f"ardoise-enrollment-v1\n{challenge}\n{token}\n{key_id}\n".encode("utf-8")


def local_macs(sys_net: Path = Path("/sys/class/net")) -> list[str]:
    """This machine's NIC addresses (aa-bb-cc-dd-ee-ff): a token the netboot service bound
    to the MAC that booted enrolls only a station that has that NIC (docs/netboot.md)."""
    macs = []
    try:
        entries = sorted(sys_net.iterdir())
    except OSError:
        return []
    for nic in entries:
        try:
            mac = (nic / "address").read_text().strip().lower().replace(":", "-")
        except OSError:
            continue
        if len(mac) == 17 and mac != "00-00-00-00-00-00":
            macs.append(mac)
    return macs[:16]


def backoff_delays(retries: int, base: float, cap: float = MAX_BACKOFF_S, rng: random.Random | None = None) -> list[float]:
    """Delays before retry 1..retries: doubling from ``base``, each drawn in [d/2, d].

    "Equal jitter": never less than half the nominal delay (so a flapping link is not
    hammered) and spread out so a shelf of stations does not retry in lockstep.
    """
    rng = rng or random.Random()
    out = []
    for attempt in range(retries):
        d = min(cap, base * (2**attempt))
        out.append(rng.uniform(d / 2, d))
    return out


class CollectorClient:
    def __init__(
        self,
        cfg: CollectorConfig,
        state_dir: str | Path,
        key,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        name: str | None = None,
    ):
        self.cfg = cfg
        self.state_dir = Path(state_dir)
        self.key = key
        self.session = session or requests.Session()
        self.sleep = sleep
        self.name = name or socket.gethostname()
        self._lock = threading.Lock()
        self._bearer: str | None = None
        self.status = "not contacted yet"

    # ------------------------------------------------------------------ plumbing

    @property
    def verify(self) -> bool | str:
        # requests verifies TLS by default; a CA bundle replaces the system store.
        return self.cfg.ca_bundle or True

    def _post(self, path: str, body: bytes, headers: dict, timeout: float | None = None) -> requests.Response:
        return self.session.post(
            self.cfg.url + path,
            data=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=timeout or self.cfg.timeout_s,
            verify=self.verify,
        )

    def _with_retries(self, what: str, send: Callable[[], requests.Response]) -> requests.Response:
        delays = backoff_delays(self.cfg.retries, self.cfg.backoff_s)
        last = ""
        for attempt in range(self.cfg.retries + 1):
            try:
                resp = send()
            except requests.exceptions.SSLError as exc:
                # A certificate problem will not fix itself by retrying.
                self.status = "TLS error"
                raise Unreachable(f"collector {self.cfg.url}: TLS verification failed ({_first_line(exc)})",
                                  reason="TLS verification failed") from None
            except requests.RequestException as exc:
                last = network_reason(exc)
            else:
                if resp.status_code not in TRANSIENT_STATUS:
                    return resp
                last = f"HTTP {resp.status_code}"
                retry_after = _retry_after(resp)
                if retry_after is not None and attempt < len(delays):
                    delays[attempt] = max(delays[attempt], min(retry_after, MAX_BACKOFF_S))
            if attempt < len(delays):
                log.info("%s: %s; retrying in %.1f s", what, last, delays[attempt])
                self.sleep(delays[attempt])
        self.status = "unreachable"
        raise Unreachable(f"collector {self.cfg.url} unreachable ({what}: {last}); certificates stay in the spool",
                          reason=last)

    # ------------------------------------------------------------------ enrollment

    def _enrollment_path(self) -> Path:
        return self.state_dir / ENROLLMENT_FILE

    def _load_bearer(self) -> str | None:
        try:
            saved = json.loads(self._enrollment_path().read_text())
        except (OSError, ValueError):
            return None
        # An enrollment belongs to one collector and one key; a new stick config or a
        # regenerated key needs a new one.
        if saved.get("url") != self.cfg.url or saved.get("key_id") != self.key.key_id:
            return None
        return saved.get("bearer")

    def enroll(self) -> str:
        """Enroll the station key with the one-time token; store and return the bearer."""
        if not self.cfg.token:
            self.status = "not enrolled"
            raise Unauthorized(
                f"station key is not enrolled at {self.cfg.url} and the config has no collector.token"
            )
        # Proof of the private key: sign a fresh challenge of the collector's, so a token
        # and the public key alone (a used token, a published key) enroll nothing.
        resp = self._with_retries("enrollment", lambda: self._post("/api/v1/stations/challenge", b"{}", {}))
        challenge = _json(resp).get("challenge")
        if resp.status_code != 200 or not isinstance(challenge, str):
            self.status = "enrollment refused"
            raise Unauthorized(f"collector gave no enrollment challenge (HTTP {resp.status_code}): "
                               f"{_json(resp).get('reason') or 'no reason given'}")
        signature = base64.b64encode(
            self.key.sign(enrollment_message(challenge, self.cfg.token, self.key.key_id))).decode("ascii")
        body = json.dumps(
            {"token": self.cfg.token, "public_key": self.key.public_pem, "name": self.name, "key_id": self.key.key_id,
             "challenge": challenge, "signature": signature, "macs": local_macs()}
        ).encode()
        resp = self._with_retries("enrollment", lambda: self._post("/api/v1/stations", body, {}))
        data = _json(resp)
        if resp.status_code not in (200, 201) or not data.get("bearer"):
            self.status = "enrollment refused"
            raise Unauthorized(
                f"collector refused enrollment (HTTP {resp.status_code}): {data.get('reason') or 'no reason given'}"
            )
        saved = {
            "url": self.cfg.url,
            "station_id": data.get("station_id"),
            "key_id": data.get("key_id") or self.key.key_id,
            "bearer": data["bearer"],
            "lot": data.get("lot"),
        }
        atomic_write(self._enrollment_path(), (json.dumps(saved, indent=2) + "\n").encode(), mode=0o600)
        log.info("enrolled at %s as station %s", self.cfg.url, saved["station_id"])
        return data["bearer"]

    def bearer(self, *, renew: bool = False) -> str:
        with self._lock:
            if renew or self._bearer is None:
                self._bearer = None if renew else self._load_bearer()
                if self._bearer is None:
                    self._bearer = self.enroll()
            return self._bearer

    # ------------------------------------------------------------------ uploads

    def upload(self, envelope: bytes, *, path: str = "/api/v1/certificates") -> Answer:
        """POST one envelope; re-enroll once on 401 (the collector forgot us or revoked)."""
        for renew in (False, True):
            bearer = self.bearer(renew=renew)
            resp = self._with_retries(
                "upload", lambda: self._post(path, envelope, {"Authorization": f"Bearer {bearer}"})
            )
            if resp.status_code != 401:
                break
        data = _json(resp)
        if resp.status_code == 401:
            self.status = "unauthorized"
            raise Unauthorized(f"collector refused the station (HTTP 401): {data.get('reason') or 'unauthorized'}")
        self.status = "connected"
        return Answer(resp.status_code, str(data.get("status") or ""), data.get("id"), data.get("reason"), data)

    def send_progress(self, drives: list[dict]) -> bool:
        """Best effort, one attempt, short timeout: live progress is worthless when late."""
        if not drives:
            return True
        try:
            bearer = self.bearer()
            body = json.dumps({"drives": drives[:64]}).encode()
            resp = self._post("/api/v1/progress", body, {"Authorization": f"Bearer {bearer}"}, timeout=5)
        except (requests.RequestException, DeliveryError) as exc:
            log.debug("progress not sent: %s", exc)
            return False
        return resp.status_code == 202


def _json(resp: requests.Response) -> dict:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(resp: requests.Response) -> float | None:
    try:
        return float(resp.headers.get("Retry-After", ""))
    except ValueError:
        return None


def network_reason(exc: BaseException) -> str:
    """A person's few words for a failed connection ("connection refused", "timed out"),
    not urllib3's repr of its connection pool. The OS error is found down the chain of
    causes requests and urllib3 wrap around it."""
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        e = todo.pop(0)
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, socket.gaierror):
            return "collector name not found"
        if isinstance(e, (socket.timeout, TimeoutError)):
            return "timed out"
        if isinstance(e, OSError) and e.errno and e.strerror:
            return e.strerror[:1].lower() + e.strerror[1:]
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
    return "connection failed"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
