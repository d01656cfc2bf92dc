"""Live progress to the collector's dashboard, throttled.

The wipe engine calls back many times a second per disk; the collector wants at most one
request every 2 s per station. So updates only replace the latest state of each disk, and
one background thread sends the changed ones as a single batch every ``interval`` seconds.
Final states are sent by ``close()``. Failures are dropped: progress is not a record.
"""

from __future__ import annotations

import threading
from typing import Any

MIN_INTERVAL_S = 2.0


class ProgressReporter:
    def __init__(self, client, interval: float = 5.0):
        self.client = client
        self.interval = max(MIN_INTERVAL_S, interval)
        self._latest: dict[str, dict] = {}
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "ProgressReporter":
        self._thread = threading.Thread(target=self._loop, name="ardoise-progress", daemon=True)
        self._thread.start()
        return self

    def update(self, device: str, **fields: Any) -> None:
        with self._lock:
            entry = self._latest.setdefault(device, {"device": device})
            entry.update({k: v for k, v in fields.items() if v is not None})
            self._dirty.add(device)

    def flush(self) -> bool:
        with self._lock:
            batch = [dict(self._latest[d]) for d in sorted(self._dirty)]
            self._dirty.clear()
        return self.client.send_progress(batch) if batch else True

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()
