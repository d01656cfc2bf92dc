"""A small journal per device, so a wipe survives a power loss.

It records the device identity (WWN or serial, or the path for loop devices and files),
the method, the pass being written and how far it got. The position is only recorded
after the device has flushed its write cache, so a resumed pass never skips bytes that
were still in a volatile cache when the power went. Fixed-pattern passes resume from the
recorded position; a random pass restarts, because its key never touches the disk.

Writes are atomic (temporary file, fsync, rename, fsync of the directory): a journal is
either the old one or the new one, never half of each.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from agent.atomic import atomic_write

JOURNAL_DIR = "journal"


def default_state_dir() -> Path:
    return Path(os.environ.get("ARDOISE_STATE_DIR") or "/var/lib/ardoise")


@dataclass
class JournalEntry:
    identity: str
    path: str
    method: str
    size_bytes: int
    pass_index: int
    pass_count: int
    phase: str  # "write" | "verify"
    position: int  # bytes of pass ``pass_index`` known to be on the medium
    started_at: str
    updated_at: str = ""
    resumes: int = 0


class Journal:
    def __init__(self, state_dir: str | os.PathLike | None = None) -> None:
        self.dir = Path(state_dir or default_state_dir()) / JOURNAL_DIR

    def _file(self, identity: str) -> Path:
        # Readable name for the technician, plus a digest so two identities never collide.
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", identity).strip("_")[:64]
        digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
        return self.dir / f"{safe}-{digest}.json"

    def load(self, identity: str) -> JournalEntry | None:
        try:
            data = json.loads(self._file(identity).read_text())
            return JournalEntry(**data)
        except FileNotFoundError:
            return None
        except OSError:
            return None  # unreadable state dir: nothing to resume; save() reports the problem
        except (ValueError, TypeError):
            # A corrupt journal cannot be trusted to skip anything: start over.
            return None

    def save(self, entry: JournalEntry) -> None:
        entry.updated_at = now_iso()
        self.dir.mkdir(parents=True, exist_ok=True)
        target = self._file(entry.identity)
        atomic_write(target, json.dumps(asdict(entry)).encode())

    def clear(self, identity: str) -> None:
        try:
            self._file(identity).unlink()
        except OSError:
            pass  # absent, or the state dir is unusable (already reported by save)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
