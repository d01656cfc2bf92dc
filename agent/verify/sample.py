"""Sampled verification per NIST SP 800-88 Rev. 1 §4.7.

§4.7 asks for a representative sample: the media divided into at least 1,000 equal
subsections, at least two non-overlapping pseudorandom locations read in each, plus the
first and last addressable blocks; each location at least 5 % of its subsection, so at
least 10 % of the media is read in all.

Here each subsection is split into two halves and one location of ceil(5 %) of the
subsection is drawn in each half, which keeps the two locations apart without rejection
sampling. Positions come from SHA-256 over (seed, subsection, location), so anyone can
recompute the sampled ranges from (size, block size, seed) alone, in any language.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Iterator

from agent.records import LbaRange, VerificationResult
from agent.sanitize import blockio
from agent.sanitize.blockio import Device
from agent.sanitize.progress import Meter, ProgressCallback
from agent.verify.expect import Expectation
from agent.verify.full import DEFAULT_CHUNK, batches, read_back, result_from

SUBSECTIONS = 1000
LOCATIONS = 2
FRACTION = 0.05
# A subsection smaller than this cannot hold two 5 % samples of at least one block each
# without rounding the fraction far above 5 %; smaller devices get fewer subsections.
MIN_SUBSECTION_BLOCKS = 40


def new_seed() -> str:
    return os.urandom(16).hex()


def _draw(seed: str, subsection: int, location: int, choices: int) -> int:
    digest = hashlib.sha256(f"{seed}:{subsection}:{location}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % choices


def plan_subsections(blocks: int) -> tuple[int, list[str]]:
    """How many subsections a device of ``blocks`` blocks gets, and why if fewer than 1,000."""
    if blocks >= SUBSECTIONS * MIN_SUBSECTION_BLOCKS:
        return SUBSECTIONS, []
    count = blocks // MIN_SUBSECTION_BLOCKS
    if count == 0:
        return 0, [f"device has only {blocks} blocks: every block is read instead of sampling"]
    return count, [
        f"device has only {blocks} blocks: {count} subsections of at least {MIN_SUBSECTION_BLOCKS} "
        f"blocks instead of {SUBSECTIONS} (NIST SP 800-88 §4.7 assumes larger media)"
    ]


def sample_plan(size: int, block: int, seed: str) -> list[LbaRange]:
    """The sampled LBA ranges for a device of ``size`` bytes, sorted and merged."""
    blocks = size // block
    if blocks == 0:
        return []
    count, _ = plan_subsections(blocks)
    if count == 0:
        return [LbaRange(0, blocks)]
    ranges: list[tuple[int, int]] = [(0, 1), (blocks - 1, blocks)]
    for i in range(count):
        lo, hi = i * blocks // count, (i + 1) * blocks // count
        length = hi - lo
        take = max(1, -(-length * 5 // 100))  # ceil(5 %), in integers to stay exact
        half = length // 2
        for j, (a, b) in enumerate(((lo, lo + half), (lo + half, hi))):
            start = a + _draw(seed, i, j, (b - a) - take + 1)
            ranges.append((start, start + take))
    merged: list[LbaRange] = []
    for s, e in sorted(ranges):
        if merged and s <= merged[-1].end:
            merged[-1].end = max(merged[-1].end, e)
        else:
            merged.append(LbaRange(s, e))
    return merged


def _byte_chunks(ranges: list[LbaRange], block: int, chunk: int) -> Iterator[tuple[int, int]]:
    for r in ranges:
        offset, end = r.start * block, r.end * block
        while offset < end:
            n = min(chunk, end - offset)
            yield offset, n
            offset += n


def verify_sample(
    dev: Device | str,
    expect: Expectation,
    *,
    seed: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    chunk: int = DEFAULT_CHUNK,
    pass_index: int = 0,
    pass_count: int = 1,
    workers: int | None = None,
) -> VerificationResult:
    """Read the §4.7 sample back. ``dev`` is an open ``Device`` or a path (opened read-only)."""
    with blockio.reading(dev) as device:
        seed = seed or new_seed()
        block = device.logical_block
        ranges = sample_plan(device.size, block, seed)
        total = sum(r.count for r in ranges) * block
        meter = Meter(progress, device.path, "verify", pass_index, pass_count, total, pattern=expect.label)
        work = batches(_byte_chunks(ranges, block, chunk), chunk)
        # More readers than a full pass: many small requests in flight is what makes a
        # sparse read fast (on NVMe as on loop devices).
        rb = read_back(device, work, expect, chunk=chunk, meter=meter, cancel=cancel, workers=workers or 4)
        meter.finish()
        result = result_from(rb, "sample", device, expect, device.size)
        result.seed = seed
        result.sampled = ranges
        result.notes[:0] = plan_subsections(device.size // block)[1]
        return result
