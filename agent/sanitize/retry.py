"""Retry a failed request, narrowing it down to the bad sectors (nwipe-style).

A failed large request is retried once, then split in halves down to the logical block
size; each block that still fails is recorded and skipped, and the wipe carries on. A
device that is gone (ENODEV, ENXIO, or a node that disappeared) raises ``DeviceGone`` so
that one device ends "interrupted" while the others continue. Any other error (read-only
device, no permission) is not a media error: it raises ``SanitizeError`` and the step fails.
"""

from __future__ import annotations

import errno
import logging

from agent.errors import DeviceGone, SanitizeError
from agent.sanitize.blockio import GONE_ERRNOS, Device

log = logging.getLogger("ardoise.sanitize")

# errno values a medium reports for unreadable/unwritable sectors.
MEDIA_ERRNOS = frozenset({errno.EIO, errno.ENODATA, errno.EILSEQ, errno.EBADMSG, errno.EREMOTEIO, errno.ETIMEDOUT})

ByteRange = tuple[int, int]  # [start, end) in bytes


def classify(dev: Device, exc: OSError) -> None:
    """Raise unless ``exc`` is a media error worth retrying around."""
    if exc.errno in GONE_ERRNOS or not dev.is_present():
        raise DeviceGone(f"{dev.path}: device disappeared ({exc.strerror or exc})") from None
    if exc.errno not in MEDIA_ERRNOS:
        raise SanitizeError(f"{dev.path}: {exc.strerror or exc}") from None


def _io(op, view: memoryview, offset: int) -> None:
    done = 0
    while done < len(view):
        n = op(view[done:], offset + done)
        if n <= 0:
            # A zero-length transfer before the end: the device shrank or ended early.
            raise OSError(errno.ENXIO, "device ended early")
        done += n


def write_all(dev: Device, view: memoryview, offset: int, first_error: OSError | None = None) -> list[ByteRange]:
    """Write ``view`` at ``offset``; return the byte ranges that could not be written."""
    return _with_retry(dev, dev.pwrite, view, offset, first_error)


def read_all(dev: Device, view: memoryview, offset: int, first_error: OSError | None = None) -> list[ByteRange]:
    """Read into ``view`` from ``offset``; return the byte ranges that could not be read."""
    return _with_retry(dev, dev.preadinto, view, offset, first_error)


def _with_retry(dev: Device, op, view: memoryview, offset: int, first_error: OSError | None) -> list[ByteRange]:
    if first_error is None:
        try:
            _io(op, view, offset)
            return []
        except OSError as exc:
            first_error = exc
    classify(dev, first_error)
    log.warning("%s: I/O error at byte %d (+%d): %s; retrying", dev.path, offset, len(view), first_error)
    return _narrow(dev, op, view, offset, retry=True)


def _narrow(dev: Device, op, view: memoryview, offset: int, *, retry: bool) -> list[ByteRange]:
    try:
        _io(op, view, offset)
        return []
    except OSError as exc:
        classify(dev, exc)
    block = dev.logical_block
    if len(view) <= block:
        if retry:
            return _narrow(dev, op, view, offset, retry=False)
        return [(offset, offset + len(view))]
    half = (len(view) // 2 + block - 1) // block * block
    bad = _narrow(dev, op, view[:half], offset, retry=False)
    bad += _narrow(dev, op, view[half:], offset + half, retry=False)
    return bad


def merge(ranges: list[ByteRange]) -> list[ByteRange]:
    out: list[ByteRange] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
