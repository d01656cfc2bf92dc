"""Atomic file writes for everything the agent keeps on the stick: certificates, spool
markers, journals, enrollment. A power cut (the usual end of a donated laptop's session)
must leave either the old file or the new one, never half of one."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers see all of it or none of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, path)
            # On FAT (the stick's data partition) a rename writes the new directory entry
            # with size 0 and no first cluster; the real ones reach the disk only when the
            # inode is written back, up to 30 s later. Power cut in between: an empty
            # certificate. A second fsync, after the rename, writes them now (on ext4 it
            # costs next to nothing).
            os.fsync(f.fileno())
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # The rename is only durable once the directory entry is; FAT may refuse, which is fine.
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
