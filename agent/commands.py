"""The one gateway through which the agent runs external tools.

Why one gateway: every command that touches hardware must be logged with its argv and
output (the certificate lists them), must run with ``LC_ALL=C`` so that parsers see the
same text on every station, must time out instead of hanging a shelf bay forever, and
must be replaceable in tests by a fake that serves recorded real outputs keyed by argv.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator, Protocol, Sequence

from agent.errors import ToolError, ToolMissing, ToolOutputError, ToolTimeout

log = logging.getLogger("ardoise.commands")

DEFAULT_TIMEOUT = 120.0
_LOG_LIMIT = 4000
REDACTED = "***"


class Secret(str):
    """An argv element the tool needs but no record may keep (an ATA security password).

    The runner receives the real value; the log lines, the ``CommandResult`` handed back
    (whose ``to_record`` goes into the signed certificate) and any error message show
    ``***`` instead, wherever the value appears: hdparm echoes the password in its output.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return REDACTED


def _redact(text: str, secrets: Sequence[str]) -> str:
    for value in secrets:
        if value:
            text = text.replace(value, REDACTED)
    return text


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float = 0.0

    @property
    def tool(self) -> str:
        return self.argv[0]

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def check(self, ok_codes: Sequence[int] = (0,)) -> "CommandResult":
        if self.returncode not in ok_codes:
            msg = (self.stderr.strip() or self.stdout.strip()).splitlines()
            reason = msg[-1] if msg else "no output"
            raise ToolError(
                f"{' '.join(self.argv)} exited {self.returncode}: {reason}",
                argv=list(self.argv),
                returncode=self.returncode,
            )
        return self

    def json(self) -> object:
        """Parse stdout as JSON, or raise a one-line ToolOutputError naming the tool."""
        try:
            return json.loads(self.stdout)
        except ValueError as exc:
            raise ToolOutputError(
                f"{self.tool} printed output that is not JSON ({exc.msg} at line {exc.lineno})",
                argv=list(self.argv),
            ) from None

    def to_record(self) -> dict:
        """What a certificate keeps of a command: enough to audit it, bounded in size."""
        return {
            "argv": list(self.argv),
            "exit_code": self.returncode,
            "stdout_tail": self.stdout[-1000:],
            "stderr_tail": self.stderr[-1000:],
            "duration_s": round(self.duration, 3),
        }


class Runner(Protocol):
    def __call__(self, argv: Sequence[str], *, timeout: float, input: str | None) -> CommandResult: ...

    def which(self, tool: str) -> str | None: ...


class SystemRunner:
    """Runs real processes."""

    def which(self, tool: str) -> str | None:
        return shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")

    def __call__(self, argv: Sequence[str], *, timeout: float, input: str | None) -> CommandResult:
        exe = self.which(argv[0])
        if exe is None:
            raise ToolMissing(f"{argv[0]} is not installed (needed for: {' '.join(argv)})", tool=argv[0])
        env = dict(os.environ, LC_ALL="C", LANG="C")
        start = time.monotonic()
        try:
            proc = subprocess.run(
                [exe, *argv[1:]],
                input=input,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                env=env,
                stdin=None if input is not None else subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise ToolTimeout(f"{' '.join(argv)} did not finish within {timeout:g} s", argv=list(argv)) from None
        except OSError as exc:
            raise ToolError(f"cannot run {argv[0]}: {exc.strerror}", argv=list(argv)) from None
        return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


_lock = threading.Lock()
_runner: Runner = SystemRunner()


def run(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    input: str | None = None,
    check: bool = False,
    ok_codes: Sequence[int] = (0,),
) -> CommandResult:
    """Run ``argv`` through the current runner, log it, and return its result.

    Elements wrapped in ``Secret`` reach the tool unchanged and appear nowhere else: the
    returned result (argv, stdout, stderr), the log and the errors say ``***``.

    ``check`` raises ``ToolError`` unless the exit code is in ``ok_codes``. Tools whose exit
    code is a bitmask (smartctl) are called with ``check=False`` and decoded by the caller.
    """
    secrets = [str(a) for a in argv if isinstance(a, Secret)]
    real = tuple(str(a) for a in argv)
    argv = tuple(REDACTED if isinstance(a, Secret) else str(a) for a in argv)
    log.debug("run: %s", " ".join(argv))
    try:
        result = _runner(real, timeout=timeout, input=input)
    except ToolError as exc:
        if not secrets:
            raise
        detail = {k: _redact(str(v), secrets) if isinstance(v, str) else v for k, v in exc.detail.items()}
        if "argv" in detail:
            detail["argv"] = list(argv)
        raise type(exc)(_redact(exc.message, secrets), **detail) from None
    if secrets:
        result = CommandResult(
            argv, result.returncode, _redact(result.stdout, secrets), _redact(result.stderr, secrets), result.duration
        )
    log.info(
        "ran: %s -> exit %d in %.2fs", " ".join(argv), result.returncode, result.duration
    )
    if result.stdout:
        log.debug("stdout of %s: %s", argv[0], result.stdout[:_LOG_LIMIT])
    if result.stderr:
        log.debug("stderr of %s: %s", argv[0], result.stderr[:_LOG_LIMIT])
    if check:
        result.check(ok_codes)
    return result


def which(tool: str) -> str | None:
    """Where the current runner finds ``tool``, or None. Fakes answer from their recordings."""
    return _runner.which(tool)


def get_runner() -> Runner:
    return _runner


@contextlib.contextmanager
def use_runner(runner: Runner) -> Iterator[Runner]:
    """Replace the runner for the duration of a block (tests, dry runs)."""
    global _runner
    with _lock:
        previous, _runner = _runner, runner
    try:
        yield runner
    finally:
        with _lock:
            _runner = previous


@dataclass
class CommandLog:
    """Collects the commands one stage ran, for the certificate's list of commands."""

    entries: list[dict] = field(default_factory=list)

    def add(self, result: CommandResult) -> CommandResult:
        self.entries.append(result.to_record())
        return result
