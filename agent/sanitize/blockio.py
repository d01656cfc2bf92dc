"""Low-level I/O on a block device (or a regular file named with --allow-file).

This is the only layer of the overwrite engine that touches a file descriptor. Everything
above it (passes, retries, verification) talks to a ``Device``: an object with ``size``,
``logical_block``, ``physical_block``, ``pwrite``, ``preadinto``, ``sync``, ``drop_cache``,
``is_present`` and ``close``. Tests substitute a faulty ``Device`` to exercise the engine's
real error paths (EIO in a range, a device that vanishes), which loop devices cannot do.

Why O_DIRECT: the page cache would both slow a multi-terabyte pass (copying every byte
through the cache and evicting it again) and lie to verification (reading back what we
just wrote from RAM, not from the medium). When the kernel or filesystem refuses O_DIRECT
(EINVAL: tmpfs files, some FUSE mounts) we fall back to buffered I/O, flush with fdatasync
and drop the cached pages before reading back.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import stat
import struct
import threading
from contextlib import contextmanager
from typing import Iterator, Protocol

from agent.discover import stat_named
from agent.errors import DeviceError

# <linux/fs.h> ioctl numbers (x86-64 and every other Linux architecture we boot on).
BLKGETSIZE64 = 0x80081272
BLKSSZGET = 0x1268
BLKPBSZGET = 0x127B
BLKFLSBUF = 0x1261

# errno values meaning the device itself is gone (pulled from a bay, USB reset), as
# opposed to a bad sector: the wipe of that device stops as "interrupted".
GONE_ERRNOS = frozenset({errno.ENODEV, errno.ENXIO, errno.ESHUTDOWN, errno.ENOMEDIUM})


class Device(Protocol):
    """What the engine needs from a device. ``BlockDevice`` is the real one."""

    path: str
    size: int
    logical_block: int
    physical_block: int
    direct: bool

    def pwrite(self, buf: memoryview, offset: int) -> int: ...

    def preadinto(self, buf: memoryview, offset: int) -> int: ...

    def sync(self) -> None: ...

    def drop_cache(self) -> None: ...

    def is_present(self) -> bool: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- buffers

_libc = ctypes.CDLL(None, use_errno=True)  # CDLL (not PyDLL): calls release the GIL
_memcmp = _libc.memcmp
_memcmp.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_memcmp.restype = ctypes.c_int


class AlignedBuffer:
    """A page-aligned anonymous mapping, as O_DIRECT requires.

    ``mmap`` gives page alignment for free; ``os.preadv``/``os.pwritev`` read and write it
    without copying and release the GIL, so one thread can write while another generates.
    """

    def __init__(self, size: int, *, slack: int = 0) -> None:
        # ``slack``: cryptography's update_into wants room for one extra cipher block.
        self.size = size
        self._mm = mmap.mmap(-1, size + slack)
        self._anchor = ctypes.c_char.from_buffer(self._mm)
        self.address = ctypes.addressof(self._anchor)
        self.whole = memoryview(self._mm)
        self.view = self.whole[:size]

    def fill(self, pattern: bytes) -> "AlignedBuffer":
        """Fill with ``pattern`` repeated (its length divides the buffer size)."""
        if pattern == b"\0" * len(pattern):
            # Anonymous memory is zero already; touching it makes O_DIRECT pin real pages.
            self._mm[: self.size] = bytes(self.size)
        else:
            self._mm[: self.size] = pattern * (self.size // len(pattern))
        return self

    def find(self, needle: bytes, start: int, end: int) -> int:
        return self._mm.find(needle, start, end)

    def close(self) -> None:
        self.view.release()
        self.whole.release()
        self._anchor = None
        try:
            self._mm.close()
        except BufferError:
            # A slice is still referenced (say, by a traceback being reported); the
            # mapping is freed with it by the garbage collector instead.
            pass


_patterns: dict[tuple[bytes, int], AlignedBuffer] = {}
_patterns_lock = threading.Lock()


def pattern_buffer(pattern: bytes, size: int) -> AlignedBuffer:
    """A read-only buffer of ``pattern`` repeated, shared by every device and pass that
    writes or expects it: 16 devices zeroing at once share one buffer, not sixteen."""
    with _patterns_lock:
        buf = _patterns.get((pattern, size))
        if buf is None:
            buf = _patterns[(pattern, size)] = AlignedBuffer(size).fill(pattern)
        return buf


def same_bytes(a: AlignedBuffer, a_off: int, b: AlignedBuffer, b_off: int, length: int) -> bool:
    """C-speed comparison (glibc memcmp, GIL released); Python per-byte loops would cap
    verification far below the device's speed."""
    return _memcmp(a.address + a_off, b.address + b_off, length) == 0


# --------------------------------------------------------------------------- the real device


class BlockDevice:
    """An open block device or regular file, with O_DIRECT when the kernel allows it."""

    def __init__(self, path: str, *, writable: bool = True, allow_file: bool = False) -> None:
        self.path = path
        self.writable = writable
        st = stat_named(path)
        self.is_block = stat.S_ISBLK(st.st_mode)
        if not self.is_block and not (allow_file and stat.S_ISREG(st.st_mode)):
            raise DeviceError(f"{path}: not a block device (use --allow-file for a regular file)")
        self._flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_CLOEXEC
        if self.is_block:
            self._flags |= os.O_EXCL  # no one else may open it for writing while we wipe
        self.direct = True
        self.fd = self._open()
        if self.is_block:
            self.size = _ioctl_u64(self.fd, BLKGETSIZE64)
            self.logical_block = _ioctl_int(self.fd, BLKSSZGET)
            self.physical_block = _ioctl_int(self.fd, BLKPBSZGET) or self.logical_block
        else:
            self.size = os.fstat(self.fd).st_size
            self.logical_block = 512
            self.physical_block = 4096

    def _open(self) -> int:
        try:
            if self.direct:
                try:
                    return os.open(self.path, self._flags | os.O_DIRECT)
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    self.direct = False
            return os.open(self.path, self._flags)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise DeviceError(f"{self.path}: device is busy (mounted or opened by another program)") from None
            raise DeviceError(f"{self.path}: cannot open: {exc.strerror}") from None

    def _fall_back_to_buffered(self) -> None:
        # O_DIRECT opened but the first request was refused (EINVAL): some filesystems
        # accept the flag and reject the I/O. Reopen buffered; sync/drop_cache keep it honest.
        os.close(self.fd)
        self.direct = False
        self.fd = self._open()

    def pwrite(self, buf: memoryview, offset: int) -> int:
        try:
            return os.pwritev(self.fd, [buf], offset)
        except OSError as exc:
            if exc.errno == errno.EINVAL and self.direct:
                self._fall_back_to_buffered()
                return os.pwritev(self.fd, [buf], offset)
            raise

    def preadinto(self, buf: memoryview, offset: int) -> int:
        try:
            return os.preadv(self.fd, [buf], offset)
        except OSError as exc:
            if exc.errno == errno.EINVAL and self.direct:
                self._fall_back_to_buffered()
                return os.preadv(self.fd, [buf], offset)
            raise

    def sync(self) -> None:
        """Flush our writes and the drive's volatile write cache to the medium."""
        os.fdatasync(self.fd)

    def drop_cache(self) -> None:
        """Make the next reads come from the medium, not from the page cache."""
        self.sync()
        if self.is_block:
            try:
                fcntl.ioctl(self.fd, BLKFLSBUF)
            except OSError:
                pass  # not every block driver implements it; fadvise below still applies
        os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)

    def is_present(self) -> bool:
        """Whether the device is still there. A pulled disk may first answer EIO to
        everything before the kernel removes it: its sysfs entry goes, its size drops to
        zero, its node disappears; any of these means gone, not bad sectors."""
        if not os.path.exists(self.path):
            return False
        if self.is_block:
            rdev = os.fstat(self.fd).st_rdev
            if not os.path.exists(f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}"):
                return False
            try:
                return _ioctl_u64(self.fd, BLKGETSIZE64) == self.size
            except OSError:
                return False
        return True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_device(path: str, *, writable: bool = True, allow_file: bool = False) -> BlockDevice:
    return BlockDevice(path, writable=writable, allow_file=allow_file)


@contextmanager
def reading(dev: "Device | str") -> Iterator["Device"]:
    """An open ``Device`` as it is, or a path opened read-only for the block and closed after
    (verification is called both ways: on the wipe's open device after an overwrite, and on
    the path after a firmware purge, which the engine never opened)."""
    if not isinstance(dev, str):
        yield dev
        return
    device = open_device(dev, writable=False, allow_file=True)
    try:
        yield device
    finally:
        device.close()


def _ioctl_u64(fd: int, request: int) -> int:
    return struct.unpack("Q", fcntl.ioctl(fd, request, b"\0" * 8))[0]


def _ioctl_int(fd: int, request: int) -> int:
    return struct.unpack("i", fcntl.ioctl(fd, request, b"\0" * 4))[0]
