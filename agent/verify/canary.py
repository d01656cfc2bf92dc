"""Canaries: distinctive blocks written before a firmware purge that must be gone after it.

A drive can answer "sanitize completed" and erase nothing (firmware bugs, bridges that
swallow the command, counterfeit controllers). Sampled read-back after a crypto erase
cannot tell random-looking ciphertext from "never touched" on its own; a canary can: we
know exactly what we wrote, so if any canary reads back intact the purge did not happen.

Reads and writes use O_DIRECT so the kernel's page cache, which the firmware command
bypasses, cannot hand us back the canary we just wrote.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import mmap
import os
import random
import secrets
import time
from dataclasses import dataclass, field

from agent.errors import MediaError
from agent.records import LbaRange, VerificationResult

MAGIC = b"ARDOISE-CANARY\x00"
BLOCK = 4096  # one canary; a multiple of every logical sector size and O_DIRECT-aligned
DEFAULT_COUNT = 32
_BLKFLSBUF = 0x1261  # linux/fs.h: flush the buffer cache of a block device


@dataclass
class Canary:
    offset: int  # byte offset, BLOCK-aligned
    digest: str  # sha256 of the block we wrote

    @property
    def lba_range(self) -> LbaRange:
        return LbaRange(self.offset // 512, (self.offset + BLOCK) // 512)


@dataclass
class CanarySet:
    device: str
    run_id: str
    canaries: list[Canary] = field(default_factory=list)


def positions(size_bytes: int, count: int = DEFAULT_COUNT, seed: str = "") -> list[int]:
    """Spread-out, BLOCK-aligned offsets: the first and last block, and one random block in
    each of ``count - 2`` equal segments between them (so a drive erasing only the start,
    or only what the OS touched, is caught)."""
    blocks = size_bytes // BLOCK
    if blocks <= 0:
        return []
    count = max(1, min(count, blocks))
    rng = random.Random(seed)
    picks = {0, blocks - 1}
    inner = count - len(picks)
    if inner > 0 and blocks > 2:
        seg = (blocks - 2) / inner
        for i in range(inner):
            lo = 1 + int(i * seg)
            hi = max(lo, 1 + int((i + 1) * seg) - 1)
            picks.add(rng.randint(lo, min(hi, blocks - 2)))
    return sorted(b * BLOCK for b in picks)


def _content(run_id: str, index: int, offset: int) -> bytes:
    head = MAGIC + run_id.encode() + b"\x00" + index.to_bytes(8, "little") + offset.to_bytes(8, "little")
    # The rest is pseudorandom so neither compression nor deduplicating firmware can
    # store all canaries as one block.
    body = hashlib.shake_256(head).digest(BLOCK - len(head))
    return head + body


class _Dev:
    """One O_DIRECT file descriptor with an aligned buffer; buffered when O_DIRECT is refused
    (regular files on tmpfs)."""

    def __init__(self, path: str, write: bool):
        flags = (os.O_RDWR if write else os.O_RDONLY) | os.O_CLOEXEC
        self.direct = True
        try:
            self.fd = os.open(path, flags | os.O_DIRECT | (os.O_DSYNC if write else 0))
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self.direct = False
            self.fd = os.open(path, flags)
        self.buf = mmap.mmap(-1, BLOCK)

    def close(self) -> None:
        self.buf.close()
        os.close(self.fd)

    def write(self, offset: int, data: bytes) -> None:
        self.buf.seek(0)
        self.buf.write(data)
        n = os.pwritev(self.fd, [self.buf], offset)
        if n != BLOCK:
            raise OSError(errno.EIO, f"short write at {offset}")

    def read(self, offset: int) -> bytes:
        n = os.preadv(self.fd, [self.buf], offset)
        return bytes(self.buf[:n])


def plant(device: str, size_bytes: int, *, count: int = DEFAULT_COUNT, run_id: str | None = None) -> CanarySet:
    """Write the canaries. Raises MediaError if the device cannot take them."""
    run_id = run_id or secrets.token_hex(8)
    out = CanarySet(device=device, run_id=run_id)
    try:
        dev = _Dev(device, write=True)
    except OSError as exc:
        raise MediaError(f"cannot open {device} to write canaries: {exc.strerror}") from None
    try:
        for i, off in enumerate(positions(size_bytes, count, seed=run_id)):
            data = _content(run_id, i, off)
            dev.write(off, data)
            out.canaries.append(Canary(offset=off, digest=hashlib.sha256(data).hexdigest()))
        os.fsync(dev.fd)
    except OSError as exc:
        raise MediaError(f"writing canaries to {device} failed: {exc.strerror or exc}") from None
    finally:
        dev.close()
    return out


def drop_cache(device: str) -> None:
    """Forget cached blocks: after a firmware purge the cache describes data that is gone."""
    try:
        fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.ioctl(fd, _BLKFLSBUF, 0)
    except OSError:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def check(canaries: CanarySet) -> VerificationResult:
    """Read every canary position back: passed only if none of them survived."""
    start = time.monotonic()
    result = VerificationResult(method="canary", status="passed")
    drop_cache(canaries.device)
    marker = MAGIC + canaries.run_id.encode()
    try:
        dev = _Dev(canaries.device, write=False)
    except OSError as exc:
        result.status = "error"
        result.notes.append(f"cannot open {canaries.device} to check canaries: {exc.strerror}")
        return result
    survived = 0
    try:
        for c in canaries.canaries:
            try:
                data = dev.read(c.offset)
            except OSError:
                result.read_errors.append(c.lba_range)
                continue
            result.bytes_read += len(data)
            result.sampled.append(c.lba_range)
            if hashlib.sha256(data).hexdigest() == c.digest or marker in data:
                survived += 1
                result.mismatches.append(c.lba_range)
    finally:
        dev.close()
    result.duration_s = round(time.monotonic() - start, 3)
    total = len(canaries.canaries)
    if survived:
        result.status = "failed"
        result.notes.append(f"{survived} of {total} canaries survived the purge: the drive did not erase them")
    elif result.read_errors:
        result.status = "error"
        result.notes.append(f"{len(result.read_errors)} of {total} canary blocks could not be read back")
    else:
        result.notes.append(f"all {total} canaries written before the purge are gone")
    return result
