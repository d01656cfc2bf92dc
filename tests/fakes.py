"""Test doubles that keep the real mechanism.

``FakeRunner`` replaces the command gateway's runner: it serves recorded real outputs keyed
by the exact argv, and an argv nobody recorded fails the test (it raises, and the
``fake_commands`` fixture also fails at teardown in case the code swallowed the error).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from agent.commands import CommandResult
from agent.errors import ToolMissing

FIXTURES = Path(__file__).parent / "fixtures"


class UnrecordedCommand(AssertionError):
    pass


@dataclass
class Recording:
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    # Called with the argv when served: lets a test change the drive's state after a command
    # (a security erase that clears the password, a sanitize that finishes...).
    effect: Callable[[tuple[str, ...]], None] | None = None


@dataclass
class FakeRunner:
    recordings: dict[tuple[str, ...], list[Recording]] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    unrecorded: list[tuple[str, ...]] = field(default_factory=list)
    # sedutil-cli is not packaged in Debian 12: a recorded station has none unless a test
    # records its outputs and removes it from this set.
    missing_tools: set[str] = field(default_factory=lambda: {"sedutil-cli"})

    def add(
        self,
        argv: Sequence[str],
        stdout: str = "",
        *,
        returncode: int = 0,
        stderr: str = "",
        fixture: str | None = None,
        effect: Callable[[tuple[str, ...]], None] | None = None,
        times: int = 1,
    ) -> "FakeRunner":
        """Record an answer for ``argv``. ``fixture`` is a path under tests/fixtures.

        Several answers for one argv are served in order (a status poll that progresses);
        the last one repeats.
        """
        if fixture is not None:
            stdout = (FIXTURES / fixture).read_text()
        rec = Recording(returncode, stdout, stderr, effect)
        self.recordings.setdefault(tuple(argv), []).extend([rec] * times)
        return self

    def which(self, tool: str) -> str | None:
        if tool in self.missing_tools:
            return None
        return f"/usr/sbin/{tool}"

    def __call__(self, argv: Sequence[str], *, timeout: float, input: str | None) -> CommandResult:
        argv = tuple(argv)
        self.calls.append(argv)
        if argv[0] in self.missing_tools:
            raise ToolMissing(f"{argv[0]} is not installed", tool=argv[0])
        queue = self.recordings.get(argv)
        if not queue:
            self.unrecorded.append(argv)
            raise UnrecordedCommand(f"unrecorded command: {' '.join(argv)}")
        rec = queue.pop(0) if len(queue) > 1 else queue[0]
        if rec.effect is not None:
            rec.effect(argv)
        return CommandResult(argv, rec.returncode, rec.stdout, rec.stderr, 0.0)

    def ran(self, *prefix: str) -> list[tuple[str, ...]]:
        """The calls whose argv starts with ``prefix``."""
        return [c for c in self.calls if c[: len(prefix)] == prefix]


# --------------------------------------------------------------------------- faulty I/O


class FaultyDevice:
    """A real device with a bad byte range, or one that disappears after some bytes."""

    def __init__(self, inner, *, bad=None, bad_reads=None, gone_after=None, gone_errno=errno.ENODEV):
        self.inner = inner
        self.path, self.size = inner.path, inner.size
        self.logical_block, self.physical_block = inner.logical_block, inner.physical_block
        self.bad, self.bad_reads = bad, bad_reads
        self.gone_after, self.gone_errno = gone_after, gone_errno
        self.written = 0
        self.gone = False
        self.attempts = 0

    @property
    def direct(self):
        return self.inner.direct

    def _hits(self, rng, offset, length):
        return rng is not None and offset < rng[1] and offset + length > rng[0]

    def pwrite(self, buf, offset):
        if self.gone or (self.gone_after is not None and self.written >= self.gone_after):
            self.gone = True
            raise OSError(self.gone_errno, os.strerror(self.gone_errno))
        if self._hits(self.bad, offset, len(buf)):
            self.attempts += 1
            raise OSError(errno.EIO, "Input/output error")
        n = self.inner.pwrite(buf, offset)
        self.written += n
        return n

    def preadinto(self, buf, offset):
        if self.gone:
            raise OSError(self.gone_errno, os.strerror(self.gone_errno))
        if self._hits(self.bad_reads, offset, len(buf)) or self._hits(self.bad, offset, len(buf)):
            raise OSError(errno.EIO, "Input/output error")
        return self.inner.preadinto(buf, offset)

    def sync(self):
        if self.gone:
            raise OSError(self.gone_errno, os.strerror(self.gone_errno))
        self.inner.sync()

    def drop_cache(self):
        self.sync()
        self.inner.drop_cache()

    def is_present(self):
        return not self.gone

    def close(self):
        self.inner.close()
