"""What a read-back expects to find, and where a buffer disagrees.

- ``Content``: exactly what a pass wrote (a fixed pattern, or the random stream, which is
  regenerated from its in-memory key at the same offsets).
- ``Absent``: none of some marker strings (the canaries written before a firmware purge:
  after a crypto erase the medium reads as noise, so "not the canaries" is all one can ask).

Comparisons run in C (glibc memcmp, ``mmap.find``); only a mismatching chunk is examined
block by block, to name its LBAs.
"""

from __future__ import annotations

from typing import Protocol

from agent.sanitize.blockio import AlignedBuffer, pattern_buffer, same_bytes
from agent.sanitize.methods import PassSpec, PatternSource, RandomStream
from agent.sanitize.retry import merge

ByteRange = tuple[int, int]


class Expectation(Protocol):
    label: str
    needs_scratch: bool  # whether ``mismatches`` needs a per-slot buffer for the expected bytes

    def prepare(self, scratch: AlignedBuffer | None, offset: int, length: int, at: int = 0) -> None: ...

    def agrees(self, got: AlignedBuffer, scratch: AlignedBuffer | None, rel: int, length: int) -> bool:
        """Fast path: whether buffer bytes [rel, rel+length) are all as expected."""
        ...

    def mismatches(self, got: AlignedBuffer, scratch: AlignedBuffer | None, rel: int, length: int, base: int, block: int) -> list[ByteRange]:
        """Device byte ranges in buffer bytes [rel, rel+length) that are not as expected;
        buffer byte 0 is device byte ``base``."""
        ...


class Content:
    """The device must hold exactly this source's bytes."""

    def __init__(self, source: PatternSource | RandomStream) -> None:
        self.source = source
        self.label = source.label
        self.needs_scratch = not source.constant
        self._constant: AlignedBuffer | None = None

    @classmethod
    def of_pass(cls, spec: PassSpec) -> "Content":
        return cls(spec.source())

    @classmethod
    def zeros(cls) -> "Content":
        return cls(PatternSource(b"\x00", "zero"))

    def prepare(self, scratch: AlignedBuffer | None, offset: int, length: int, at: int = 0) -> None:
        # Random: regenerate the stream for this chunk (done by the reader threads, so it
        # overlaps the comparison of the previous chunk).
        if scratch is not None:
            self.source.fill(scratch, offset, length, at)

    def _expected(self, scratch: AlignedBuffer | None, length: int) -> AlignedBuffer:
        if scratch is not None:
            return scratch
        if self._constant is None or self._constant.size < length:
            # Powers of two only: the shared buffers are cached for the process's lifetime.
            size = 1 << 20
            while size < length:
                size *= 2
            self._constant = pattern_buffer(self.source.pattern, size)
        return self._constant

    def agrees(self, got: AlignedBuffer, scratch: AlignedBuffer | None, rel: int, length: int) -> bool:
        expected = self._expected(scratch, rel + length)
        if scratch is None:
            # A fixed pattern: the head matches and every byte equals the one ``shift``
            # further on (a multiple of the period). One memory stream instead of two:
            # about twice the speed of comparing against a pattern buffer.
            shift = max(64, len(self.source.pattern))
            if length > shift:
                return same_bytes(got, rel, expected, rel, shift) and same_bytes(got, rel, got, rel + shift, length - shift)
        return same_bytes(got, rel, expected, rel, length)

    def mismatches(self, got: AlignedBuffer, scratch: AlignedBuffer | None, rel: int, length: int, base: int, block: int) -> list[ByteRange]:
        expected = self._expected(scratch, rel + length)
        if same_bytes(got, rel, expected, rel, length):
            return []
        bad: list[ByteRange] = []
        for at in range(rel, rel + length, block):
            n = min(block, rel + length - at)
            if not same_bytes(got, at, expected, at, n):
                if bad and bad[-1][1] == base + at:
                    bad[-1] = (bad[-1][0], base + at + n)
                else:
                    bad.append((base + at, base + at + n))
        return bad


class Absent:
    """The device must contain none of ``markers`` (canaries, planted strings)."""

    needs_scratch = False

    def __init__(self, markers: list[bytes], label: str = "no canary") -> None:
        if not markers or any(not m for m in markers):
            raise ValueError("Absent needs non-empty markers")
        self.markers = list(markers)
        self.label = label

    def prepare(self, scratch, offset, length, at=0) -> None:
        pass

    def agrees(self, got: AlignedBuffer, scratch, rel: int, length: int) -> bool:
        return all(got.find(m, rel, rel + length) < 0 for m in self.markers)

    def mismatches(self, got: AlignedBuffer, scratch, rel: int, length: int, base: int, block: int) -> list[ByteRange]:
        bad: list[ByteRange] = []
        end = rel + length
        for marker in self.markers:
            pos = got.find(marker, rel, end)
            while pos >= 0:
                first = pos // block * block
                last = (pos + len(marker) - 1) // block * block + block
                bad.append((base + first, base + min(last, end)))
                pos = got.find(marker, pos + 1, end)
        return merge(bad)
