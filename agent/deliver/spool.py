"""The spool: every certificate, audit report and log lands here first, on the stick.

Why a spool: a donated laptop often has no network, and the stick is pulled right after
the final screen. So nothing is sent before it is safely on the data partition, and a file
is only marked delivered after the collector answered 201 or 200. Delivered files are never
deleted: they are the workshop's local copy.

Layout under ``<state_dir>/spool``::

    certificates/<id>.json   the signed DSSE envelope (what is uploaded)
    certificates/<id>.pdf    its PDF rendering (local copy only)
    audits/<id>.json         the signed machine audit report
    logs/<name>.log          run logs (local only)
    <kind>/<id>.json.delivered   marker: the collector's answer, written atomically
    <kind>/<id>.json.rejected    marker: a permanent refusal (400/413/422), with the reason
    <kind>/<id>.json.receipt     the collector's signed receipt (DSSE, its own key): proof
                                 of what it received and when, kept with the certificate

Every write is temp file + fsync + rename + fsync of the directory, so a power cut leaves
either the old state or the new one, never a half-written certificate.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from agent.atomic import atomic_write
from agent.errors import ConfigError


KINDS = ("certificates", "audits", "logs")
UPLOADED_KINDS = ("audits", "certificates")  # audits first: certificates refer to them
DELIVERED = ".delivered"
REJECTED = ".rejected"
RECEIPT = ".receipt"
STALE_TMP_S = 3600  # a temporary file older than this was left by a power cut


@dataclass(frozen=True)
class SpoolEntry:
    kind: str  # "certificates" | "audits"
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def read(self) -> bytes:
        return self.path.read_bytes()


@dataclass
class SpoolCounts:
    spooled: int = 0  # uploadable files in the spool, delivered or not
    delivered: int = 0
    rejected: int = 0

    @property
    def pending(self) -> int:
        return self.spooled - self.delivered - self.rejected


class Spool:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._lock = threading.Lock()

    @classmethod
    def for_state_dir(cls, state_dir: str | os.PathLike) -> "Spool":
        return cls(Path(state_dir) / "spool")

    def ensure(self) -> "Spool":
        try:
            for kind in KINDS:
                (self.root / kind).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the spool in {self.root}: {exc.strerror}") from None
        self._sweep_temporaries()
        return self

    def _sweep_temporaries(self, older_than_s: float = STALE_TMP_S) -> None:
        """Remove what a power cut left half-written (``.<name>.<pid>.<thread>.tmp``, see
        agent.atomic). The finished file was never renamed over, so nothing is lost; an
        hour's margin leaves alone a write another process may have in progress."""
        cutoff = time.time() - older_than_s
        for kind in KINDS:
            for tmp in (self.root / kind).glob(".*.tmp"):
                try:
                    if tmp.stat().st_mtime < cutoff:
                        tmp.unlink()
                except OSError:
                    pass  # gone already, or a read-only stick: harmless either way

    def put(self, kind: str, name: str, data: bytes) -> Path:
        """Store one file atomically; an existing file of the same name is replaced."""
        if kind not in KINDS:
            raise ValueError(f"unknown spool kind {kind!r}")
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad spool file name {name!r}")
        path = self.root / kind / name
        atomic_write(path, data)
        return path

    def entries(self, kind: str) -> list[SpoolEntry]:
        d = self.root / kind
        if not d.is_dir():
            return []
        return [SpoolEntry(kind, p) for p in sorted(d.glob("*.json")) if not p.name.startswith(".")]

    def is_delivered(self, entry: SpoolEntry) -> bool:
        return entry.path.with_name(entry.name + DELIVERED).exists()

    def is_rejected(self, entry: SpoolEntry) -> bool:
        return entry.path.with_name(entry.name + REJECTED).exists()

    def pending(self, *, include_rejected: bool = False) -> list[SpoolEntry]:
        """Uploadable files not yet acknowledged by the collector, audits first."""
        out = []
        for kind in UPLOADED_KINDS:
            for entry in self.entries(kind):
                if self.is_delivered(entry):
                    continue
                if self.is_rejected(entry) and not include_rejected:
                    continue
                out.append(entry)
        return out

    def mark_delivered(self, entry: SpoolEntry, answer: dict) -> None:
        """Record the collector's acknowledgement; its receipt, if any, first and in its own
        file (a delivered certificate then always has its receipt beside it)."""
        receipt = answer.get("receipt")
        with self._lock:
            if isinstance(receipt, dict):
                atomic_write(entry.path.with_name(entry.name + RECEIPT), _marker(receipt))
            atomic_write(entry.path.with_name(entry.name + DELIVERED), _marker(answer))
            rejected = entry.path.with_name(entry.name + REJECTED)
            if rejected.exists():
                rejected.unlink()

    def mark_rejected(self, entry: SpoolEntry, answer: dict) -> None:
        with self._lock:
            atomic_write(entry.path.with_name(entry.name + REJECTED), _marker(answer))

    def receipt(self, entry: SpoolEntry) -> dict | None:
        """The collector's signed receipt for this file, once delivered to a collector that
        gives receipts."""
        try:
            value = json.loads(entry.path.with_name(entry.name + RECEIPT).read_text())
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def rejection(self, entry: SpoolEntry) -> str | None:
        marker = entry.path.with_name(entry.name + REJECTED)
        try:
            return json.loads(marker.read_text()).get("reason") or "rejected"
        except (OSError, ValueError):
            return None

    def counts(self, kinds: tuple[str, ...] = UPLOADED_KINDS) -> SpoolCounts:
        c = SpoolCounts()
        for kind in kinds:
            for entry in self.entries(kind):
                c.spooled += 1
                if self.is_delivered(entry):
                    c.delivered += 1
                elif self.is_rejected(entry):
                    c.rejected += 1
        return c


def _marker(answer: dict) -> bytes:
    return (json.dumps(answer, sort_keys=True) + "\n").encode()
