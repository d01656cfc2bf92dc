"""Run the slow half of a pass ahead of the other: generation ahead of writes, reads ahead
of comparisons.

Worker threads take a free slot (reusable aligned buffers), take the next chunk, fill the
slot (generate keystream, or read from the device) and hand it over; the consumer takes
chunks strictly in order and gives the slot back. Only a few slots exist, so memory stays
bounded (16 devices at once must fit in 100 MB) and workers never run far ahead.

The heavy calls in ``fill`` (AES ``update_into``, ``os.preadv``) release the GIL, so the
threads really overlap on separate cores.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Generic, Iterable, Iterator, TypeVar

S = TypeVar("S")
W = TypeVar("W")

Chunk = tuple[int, int]  # (offset, length) in bytes


def chunks(start: int, end: int, size: int) -> Iterator[Chunk]:
    """[start, end) cut into pieces of ``size`` bytes (the last may be shorter)."""
    offset = start
    while offset < end:
        n = min(size, end - offset)
        yield offset, n
        offset += n


class Pipeline(Generic[S, W]):
    """Iterate ``(item, slot, error)`` in work order; ``error`` is the OSError ``fill``
    raised for that item, so the consumer can retry it piece by piece."""

    def __init__(
        self,
        work: Iterable[W],
        slots: list[S],
        fill: Callable[[S, W], None],
        *,
        workers: int = 1,
    ) -> None:
        self._work = iter(work)
        self._fill = fill
        self._free: queue.Queue[S] = queue.Queue()
        for s in slots:
            self._free.put(s)
        self._ready: dict[int, tuple[W, S, OSError | None]] = {}
        self._cond = threading.Condition()
        self._next_index = 0
        self._finished_at: int | None = None  # index past the last chunk, once known
        self._stop = threading.Event()
        self._crash: BaseException | None = None
        self._threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(max(1, workers))]
        for t in self._threads:
            t.start()

    def _worker(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    slot = self._free.get(timeout=0.1)
                except queue.Empty:
                    continue
                # Take the slot before the index: the lowest pending index always owns a
                # slot, so the consumer can never wait on a chunk that waits on a slot.
                with self._cond:
                    try:
                        item = next(self._work)
                    except StopIteration:
                        if self._finished_at is None:
                            self._finished_at = self._next_index
                        self._cond.notify_all()
                        self._free.put(slot)
                        return
                    index = self._next_index
                    self._next_index += 1
                error: OSError | None = None
                try:
                    self._fill(slot, item)
                except OSError as exc:
                    exc.__traceback__ = None  # its frames hold slices of the slot's buffer
                    error = exc
                with self._cond:
                    self._ready[index] = (item, slot, error)
                    self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - surfaced in the consumer
            with self._cond:
                self._crash = exc
                self._cond.notify_all()

    def __iter__(self) -> Iterator[tuple[W, S, OSError | None]]:
        index = 0
        try:
            while True:
                with self._cond:
                    while index not in self._ready:
                        if self._crash is not None:
                            raise self._crash
                        if self._finished_at is not None and index >= self._finished_at:
                            return
                        self._cond.wait(0.5)
                    item = self._ready.pop(index)
                yield item
                self._free.put(item[1])
                index += 1
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()
