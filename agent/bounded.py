"""Reading the small files the agent is handed (a config, a key, a certificate) with a
size cap, and only when they are regular files.

Why: ``ardoise verify /dev/zero`` or ``--config /dev/zero`` used to read until the OOM
killer stopped it, and a FIFO would block forever. Each caller names its cap; a refusal is
an ``OSError`` with a readable ``strerror``, so the callers' existing "cannot read X: ..."
messages stay one line.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

KiB, MiB = 1 << 10, 1 << 20
# A signed certificate is a few KiB, tens with long command logs; the collector refuses
# uploads over 1 MiB. 4 MiB leaves room without letting a mistake eat the station's RAM.
CERTIFICATE_MAX = 4 * MiB
CONFIG_MAX = 1 * MiB  # a hand-written ardoise.yaml is a few hundred bytes
KEY_MAX = 64 * KiB  # a PEM Ed25519 key is under 200 bytes


class NotRegularFile(OSError):
    pass


class FileTooLarge(OSError):
    pass


def _human(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB and n % MiB == 0 else f"{n // KiB} KiB"


def read_bounded(path: str | os.PathLike, limit: int) -> bytes:
    """The whole content of the regular file ``path``, refused above ``limit`` bytes."""
    p = Path(path)
    st = os.stat(p)  # FileNotFoundError, PermissionError... pass through unchanged
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", str(p))
    if not stat.S_ISREG(st.st_mode):
        # Checked before open(): opening a FIFO would block, reading /dev/zero never ends.
        raise NotRegularFile(errno.EINVAL, "not a regular file (a device, a pipe or a socket)", str(p))
    with open(p, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped between stat and open
            raise NotRegularFile(errno.EINVAL, "not a regular file (a device, a pipe or a socket)", str(p))
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(errno.EFBIG, f"larger than {_human(limit)}, too large to be one", str(p))
    return data
