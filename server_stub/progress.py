"""Live progress from running agents: rate-limited per station, kept one row per drive.

The rows live in the database, not in memory, so every collector process sharing one
PostgreSQL shows the same dashboard. The rate limiter is per process: with N processes a
station could send N times the rate, which is harmless for best-effort progress.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from server_stub.db import Database
from server_stub.stations import StationRef
from server_stub.errors import Malformed, RateLimited
from server_stub.models import LiveProgress, Station, utcnow

MAX_BATCH = 64
STATES = ("running", "done", "failed")
_INT_FIELDS = ("pass_index", "pass_count", "bytes_done", "bytes_total")
_NUM_FIELDS = ("throughput_bps", "eta_s")
_TEXT_FIELDS = {"serial": 200, "model": 200, "phase": 64}


class TokenBucket:
    """``rate`` requests per second per key, with bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    MAX_KEYS = 10_000  # keys may be client addresses: the table must not grow without end

    def take(self, key: str) -> float:
        """0 if allowed, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            if key not in self._state and len(self._state) >= self.MAX_KEYS:
                self._forget_refilled(now)
            tokens, last = self._state.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._state[key] = (tokens - 1, now)
                return 0.0
            self._state[key] = (tokens, now)
            return (1 - tokens) / self.rate

    def _forget_refilled(self, now: float) -> None:
        """Drop keys whose bucket is full again (forgetting them changes nothing); if none
        is, the oldest half: a flood of fresh keys then only resets other fresh keys."""
        full = [k for k, (t, last) in self._state.items() if t + (now - last) * self.rate >= self.burst]
        for k in full or sorted(self._state, key=lambda k: self._state[k][1])[: len(self._state) // 2]:
            del self._state[k]


@dataclass
class DriveProgress:
    device: str
    serial: str | None = None
    model: str | None = None
    phase: str | None = None
    state: str = "running"
    pass_index: int | None = None
    pass_count: int | None = None
    bytes_done: int | None = None
    bytes_total: int | None = None
    throughput_bps: float | None = None
    eta_s: float | None = None

    @property
    def percent(self) -> float | None:
        if self.bytes_total and self.bytes_done is not None:
            return max(0.0, min(100.0, 100.0 * self.bytes_done / self.bytes_total))
        return None


def parse_items(body: object) -> list[DriveProgress]:
    """One drive object or ``{"drives": [...]}``; ``Malformed`` names the bad field."""
    if isinstance(body, dict) and "drives" in body:
        items = body["drives"]
        if not isinstance(items, list) or not items:
            raise Malformed("drives must be a non-empty list")
        if len(items) > MAX_BATCH:
            raise Malformed(f"at most {MAX_BATCH} drives per request")
    else:
        items = [body]
    return [_one(item, i) for i, item in enumerate(items)]


def _one(item: object, i: int) -> DriveProgress:
    where = f"drives[{i}]" if i else "progress"
    if not isinstance(item, dict):
        raise Malformed(f"{where} is not a JSON object")
    device = item.get("device")
    if not isinstance(device, str) or not device or len(device) > 200:
        raise Malformed(f"{where}.device must be a non-empty string")
    p = DriveProgress(device=device)
    for name, limit in _TEXT_FIELDS.items():
        value = item.get(name)
        if value is not None and not isinstance(value, str):
            raise Malformed(f"{where}.{name} must be a string")
        setattr(p, name, value[:limit] if value else None)
    state = item.get("state", "running")
    if state not in STATES:
        raise Malformed(f"{where}.state must be one of {', '.join(STATES)}")
    p.state = state
    for name in _INT_FIELDS:
        value = item.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63):
            raise Malformed(f"{where}.{name} must be a non-negative integer")
        setattr(p, name, value)
    for name in _NUM_FIELDS:
        value = item.get(name)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                  or not 0 <= value < 1e18):
            raise Malformed(f"{where}.{name} must be a non-negative number")
        setattr(p, name, float(value) if value is not None else None)
    return p


class ProgressBoard:
    def __init__(self, db: Database, *, rate: float, burst: float, timeout_s: float) -> None:
        self.db = db
        self.bucket = TokenBucket(rate, burst)
        self.timeout_s = timeout_s
        self._pruned_at = 0.0

    def admit(self, station: StationRef) -> None:
        wait = self.bucket.take(station.id)
        if wait:
            raise RateLimited(f"progress from station {station.id} is over {self.bucket.rate:g} requests/s",
                              retry_after=max(1.0, round(wait, 1)))

    def record(self, station: StationRef, items: list[DriveProgress]) -> int:
        now = utcnow()
        for attempt in range(2):
            try:
                with self.db.session() as s, s.begin():
                    for p in items:
                        row = s.get(LiveProgress, (station.id, p.device))
                        if row is None:
                            row = LiveProgress(station_id=station.id, device=p.device)
                            s.add(row)
                        for name in ("serial", "model", "phase", "state", *_INT_FIELDS, *_NUM_FIELDS):
                            setattr(row, name, getattr(p, name))
                        row.updated_at = now
                return len(items)
            except IntegrityError:
                # Another process inserted the same drive's first row meanwhile: update it.
                if attempt:
                    raise
        return 0

    def live(self, visible=None) -> list[tuple[LiveProgress, Station]]:
        """Running drives heard from within the timeout, by station then device; ``visible``
        is the asker's access condition on Station (None: every station)."""
        if time.monotonic() - self._pruned_at > 60:
            self._pruned_at = time.monotonic()
            self.prune()
        cutoff = utcnow() - timedelta(seconds=self.timeout_s)
        with self.db.session() as s:
            rows = s.execute(
                select(LiveProgress, Station).join(Station, Station.id == LiveProgress.station_id)
                .where(LiveProgress.updated_at >= cutoff, LiveProgress.state == "running",
                       *([visible] if visible is not None else []))
                .order_by(Station.name, Station.id, LiveProgress.device)).all()
            return [(r[0], r[1]) for r in rows]

    def prune(self) -> None:
        """Forget drives not heard from for ten timeouts (keeps the table small)."""
        cutoff = utcnow() - timedelta(seconds=10 * self.timeout_s)
        with self.db.session() as s, s.begin():
            s.execute(delete(LiveProgress).where(LiveProgress.updated_at < cutoff))
