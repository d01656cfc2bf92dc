"""Full verification: read every block back and compare it with what should be there.

``read_back`` is the engine shared with sampled verification: reader threads read ahead
(and regenerate the random stream for the same chunk) while this thread compares, so a
full read-back runs at the device's read speed. Reads bypass the page cache (O_DIRECT, or
the cache is dropped first), so verification sees the medium, not what we just wrote.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from agent.errors import DeviceGone, SanitizeError
from agent.records import LbaRange, VerificationResult
from agent.sanitize import blockio
from agent.sanitize.blockio import AlignedBuffer, Device
from agent.sanitize.pipeline import Pipeline, chunks
from agent.sanitize.progress import Meter, ProgressCallback
from agent.sanitize.retry import ByteRange, merge, read_all
from agent.verify.expect import Expectation

# Read-back buffers are smaller than write requests: a 2 MiB buffer read by the kernel
# is still in the CPU cache when it is compared; with 8 MiB buffers the comparison goes
# back to RAM, and verification on a fast device ran ~25 % slower (bench/).
DEFAULT_CHUNK = 2 << 20
# A certificate must stay readable: past this many bad ranges, we count instead of list.
MAX_RANGES = 10_000
# Mismatching bytes located to the exact block before reporting whole requests instead.
MAX_EXACT_BYTES = 4 << 20


@dataclass
class ReadBack:
    bytes_read: int = 0
    mismatches: list[ByteRange] = field(default_factory=list)
    read_errors: list[ByteRange] = field(default_factory=list)
    cancelled: bool = False
    gone: str | None = None
    error: str | None = None
    coarse: bool = False  # some mismatch ranges are whole extents, not exact blocks
    exact_bytes: int = 0  # bytes of mismatches located block by block
    duration_s: float = 0.0


Extent = tuple[int, int]  # (device offset, length) in bytes
Batch = tuple[Extent, ...]  # extents read back to back into one buffer


def batches(extents: Iterable[Extent], chunk: int) -> Iterator[Batch]:
    """Pack extents (each at most ``chunk`` bytes) into batches of at most ``chunk`` bytes.

    A §4.7 sample is ~2,000 small extents: handing them to the reader threads one buffer
    at a time, not one extent at a time, keeps thread hand-offs off the critical path."""
    batch: list[Extent] = []
    used = 0
    for off, n in extents:
        if used + n > chunk and batch:
            yield tuple(batch)
            batch, used = [], 0
        batch.append((off, n))
        used += n
    if batch:
        yield tuple(batch)


def read_back(
    dev: Device,
    work: Iterable[Batch],
    expect: Expectation,
    *,
    chunk: int = DEFAULT_CHUNK,
    meter: Meter | None = None,
    cancel: threading.Event | None = None,
    workers: int = 2,
) -> ReadBack:
    """Read each batch of extents (at most ``chunk`` bytes per batch) and compare."""
    out = ReadBack()
    start = time.monotonic()
    dev.drop_cache()
    slack = 16
    slots = [
        (AlignedBuffer(chunk), AlignedBuffer(chunk, slack=slack) if expect.needs_scratch else None)
        for _ in range(workers + 1)
    ]

    def fill(slot, batch: Batch) -> None:
        got, scratch = slot
        rel = 0
        for offset, length in batch:
            expect.prepare(scratch, offset, length, rel)
            _read_exact(dev, got.view[rel : rel + length], offset)
            rel += length

    try:
        for batch, (got, scratch), error in Pipeline(work, slots, fill, workers=workers):
            if cancel is not None and cancel.is_set():
                out.cancelled = True
                break
            used = sum(n for _, n in batch)
            if error is None and expect.agrees(got, scratch, 0, used):
                # The common case: the whole batch is as expected, in one C call.
                out.bytes_read += used
                if meter is not None:
                    meter.advance(used)
                continue
            rel = 0
            for offset, length in batch:
                bad_reads: list[ByteRange] = []
                if error is not None:
                    # Something in this batch failed: redo each extent, narrowing errors.
                    expect.prepare(scratch, offset, length, rel)
                    bad_reads = read_all(dev, got.view[rel : rel + length], offset)
                    out.read_errors.extend(bad_reads)
                # Compare only what could be read: the gaps between unreadable ranges.
                base = offset - rel
                at = rel
                for bad_start, bad_end in [*bad_reads, (offset + length, offset + length)]:
                    if bad_start - base > at:
                        n = bad_start - base - at
                        if len(out.mismatches) < MAX_RANGES and out.exact_bytes < MAX_EXACT_BYTES:
                            found = expect.mismatches(got, scratch, at, n, base, dev.logical_block)
                            out.mismatches.extend(found)
                            out.exact_bytes += sum(e - s for s, e in found)
                        elif not expect.agrees(got, scratch, at, n):
                            # Past the limits, a whole extent per range: naming every block
                            # of a wholly wrong device would take minutes, not seconds.
                            out.mismatches.append((base + at, base + at + n))
                            out.coarse = True
                    at = bad_end - base
                rel += length
            out.bytes_read += rel
            if meter is not None:
                meter.advance(rel)
    except DeviceGone as exc:
        out.gone = str(exc)
    except SanitizeError as exc:
        out.error = str(exc)
    finally:
        for got, scratch in slots:
            got.close()
            if scratch is not None:
                scratch.close()
    out.mismatches = merge(out.mismatches)
    out.read_errors = merge(out.read_errors)
    out.duration_s = time.monotonic() - start
    return out


def _read_exact(dev: Device, view: memoryview, offset: int) -> None:
    done = 0
    while done < len(view):
        n = dev.preadinto(view[done:], offset + done)
        if n <= 0:
            raise OSError(6, "device ended early")  # ENXIO: treated as the device gone
        done += n


def to_lba(ranges: list[ByteRange], block: int, limit: int = MAX_RANGES) -> list[LbaRange]:
    return [LbaRange(s // block, (e + block - 1) // block) for s, e in ranges[:limit]]


def result_from(rb: ReadBack, method: str, dev: Device, expect: Expectation, total: int) -> VerificationResult:
    if rb.gone or rb.error or rb.cancelled:
        status = "error"
    elif rb.mismatches or rb.read_errors:
        status = "failed"
    else:
        status = "passed"
    notes: list[str] = []
    if rb.gone:
        notes.append(rb.gone)
    if rb.error:
        notes.append(rb.error)
    if rb.cancelled:
        notes.append("verification cancelled before the end")
    if rb.coarse:
        notes.append("many mismatches: after the first ones, ranges are reported per request, not per block")
    for name, ranges in (("mismatching", rb.mismatches), ("unreadable", rb.read_errors)):
        if len(ranges) > MAX_RANGES:
            notes.append(f"{len(ranges)} {name} ranges; the first {MAX_RANGES} are listed")
    return VerificationResult(
        method=method,
        status=status,
        bytes_read=rb.bytes_read,
        duration_s=round(rb.duration_s, 3),
        mismatches=to_lba(rb.mismatches, dev.logical_block),
        read_errors=to_lba(rb.read_errors, dev.logical_block),
        coverage=round(rb.bytes_read / total, 6) if total else None,
        notes=notes,
        block_size=dev.logical_block,
        expected=expect.label,
    )


def verify_full(
    dev: Device | str,
    expect: Expectation,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    chunk: int = DEFAULT_CHUNK,
    pass_index: int = 0,
    pass_count: int = 1,
    workers: int | None = None,
) -> VerificationResult:
    """Read the whole device back. ``dev`` is an open ``Device`` or a path (opened read-only)."""
    with blockio.reading(dev) as device:
        meter = Meter(progress, device.path, "verify", pass_index, pass_count, device.size, pattern=expect.label)
        work = (((off, n),) for off, n in chunks(0, device.size, chunk))
        rb = read_back(device, work, expect, chunk=chunk, meter=meter, cancel=cancel, workers=workers or 3)
        meter.finish()
        return result_from(rb, "full", device, expect, device.size)
