"""`ardoise wipe DEV... [--method M] [--verify full|sample|none] --yes [--out DIR]`.

Sanitizes the named devices now, all at once (one worker thread per device), and writes a
signed certificate per device to DIR (or, if certificates cannot be issued, the
``SanitizeResult`` as JSON). Exit 0 only if every device ended in success.

Every named device goes through ``discover.require_targets`` first: a protected device
(boot medium, mounted, swap, member of an array...) is refused before anything is
written, and so is the whole command without ``--yes`` or with an ``--out`` that cannot
be written. A record that cannot go to ``--out`` after the wipe goes to the next of
``output_dirs`` (docs/certificate.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Callable

from agent import i18n
from agent.atomic import atomic_write
from agent.cli.output import emit_json, say, show
from agent.errors import ArdoiseError, SanitizeError, UsageError
from agent.i18n import T_, _
from agent.records import Disk, Outcome, SanitizeResult, StepResult, StepStatus, to_dict
from agent.sanitize import overwrite
from agent.sanitize.journal import Journal, default_state_dir
from agent.sanitize.methods import describe_methods, get_method
from agent.sanitize.progress import StderrPrinter

log = logging.getLogger("ardoise.wipe")

Worker = Callable[[Disk], SanitizeResult]


def register(sub) -> None:
    p = sub.add_parser(
        "wipe",
        help=_("sanitize the named devices now (destructive; needs --yes)"),
        description=_("Sanitize the named devices in parallel and write a certificate per device."),
        epilog=describe_methods()
        + "\n\n" + _("verification:\n  full    read every block back and compare"
                      "\n  sample  NIST SP 800-88 Rev. 1 4.7: >=1000 subsections, 2 pseudorandom locations each,"
                      "\n          first and last blocks, >={share} of the media; seed recorded"
                      "\n  none    no read-back (hmg-is5-enhanced still verifies)").format(share="10 %"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("devices", nargs="+", metavar="DEV", help=_("block devices (or regular files with --allow-file)"))
    p.add_argument("--method", help=_("overwrite method (see below); default: the sanitization policy"))
    p.add_argument("--verify", choices=("full", "sample", "none"), help=_("read-back after the wipe (default: config, else sample)"))
    p.add_argument("--yes", action="store_true", help=_("confirm that the devices' contents are to be destroyed"))
    p.add_argument("--out", default=".", metavar="DIR", help=_("where certificates are written (default: .)"))
    p.add_argument("--json", action="store_true", help=_("print the results as JSON on stdout"))
    p.add_argument("--allow-file", action="store_true", help=_("accept regular files as targets (demos, tests)"))
    p.add_argument("--config", metavar="FILE", help=_("config file (default: ARDOISE partition, else defaults)"))
    p.add_argument("--max-rate", type=_rate, metavar="MiB/s", help=_("limit each device's write speed (a weak USB hub, a hot shelf); runs the overwrite engine directly, no firmware step"))
    p.add_argument("--state-dir", metavar="DIR", help=_("journal and station key directory (default: config)"))
    p.set_defaults(func=run)


def _load_config(path: str | None):
    from agent.config import load_config

    return load_config(path)


def run(args) -> int:
    if args.method:
        get_method(args.method)  # unknown method: one-line UsageError before anything else
    config = _load_config(args.config)
    i18n.use_config(config)
    # Only an explicit --verify overrides the policy: flash media default to full read-back.
    verify = args.verify
    state_dir = Path(args.state_dir) if args.state_dir else Path(getattr(config, "state_dir", None) or default_state_dir())

    from agent import discover

    disks = discover.require_targets(
        args.devices, allow_file=args.allow_file, exclude_serials=getattr(config, "exclude_serials", ()) or ()
    )
    if not args.yes:
        names = ", ".join(d.path for d in disks)
        raise UsageError(T_("wiping destroys everything on {devices}: add --yes to confirm", devices=names))
    # A wipe whose outcome cannot be written is the worst result there is: the donor's data
    # is gone and nothing proves it. Refuse a bad --out while the disks are still intact.
    require_writable_dir(Path(args.out))

    journal = Journal(state_dir)
    cancel = threading.Event()
    printer = StderrPrinter()
    worker = make_worker(
        args.method, verify, config=config, journal=journal, cancel=cancel, progress=printer, max_rate=args.max_rate
    )
    overwrite.set_concurrency_hint(len(disks))
    with _cancel_on_signals(cancel):
        results = wipe_all(disks, worker)
    printer.close()

    outputs: list[list[str]] = []
    unrecorded = False
    for r in results:
        try:
            outputs.append(_write_outputs(r, Path(args.out), config, state_dir))
        except SanitizeError as exc:  # the summary line below is then the only record left
            say(f"ardoise: {exc.localized()}")
            outputs.append([])
            unrecorded = True
    if args.json:
        emit_json([{**to_dict(r), "files": files} for r, files in zip(results, outputs)])
    else:
        for r, files in zip(results, outputs):
            show(summary_line(r) + (f" -> {files[0]}" if files else ""))
    ok = results and all(r.outcome is Outcome.SUCCESS for r in results) and not unrecorded
    return 0 if ok else SanitizeError.exit_code


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(_("--max-rate wants a positive number of MiB/s, not {value!r}").format(value=text))
    return value * (1 << 20)


def make_worker(
    method: str | None, verify: str | None, *, config=None, journal=None, cancel=None, progress=None, max_rate=None
) -> Worker:
    """The per-device job: the policy's plan when the firmware-purge executor is present
    (``ardoise wipe`` without --method), else a one-step overwrite."""
    execute = policy = None
    try:
        from agent.sanitize import execute, policy  # noqa: F811 - optional until issue 4 lands
    except ImportError:
        pass

    if execute is not None and policy is not None and max_rate is None:

        def via_policy(disk: Disk) -> SanitizeResult:
            plan = policy.make_plan(disk, config=config, method=method, verify=verify)
            return execute.sanitize(plan, config=config, progress=progress, journal=journal, cancel=cancel)

        return via_policy

    chosen = method or "zero"
    verify = verify or getattr(config, "verify", None) or "sample"

    def via_overwrite(disk: Disk) -> SanitizeResult:
        step = overwrite.run_overwrite(
            disk, chosen, verify=verify, progress=progress, journal=journal, cancel=cancel, max_rate=max_rate
        )
        result = overwrite.result_from_step(disk, step)
        if method is None:
            result.notes.append("no firmware purge in this build: overwrite with zeros (NIST Clear)")
        return result

    return via_overwrite


def wipe_all(disks: list[Disk], worker: Worker) -> list[SanitizeResult]:
    """Run ``worker`` on every disk at once, one thread each; results in the disks' order.

    A worker that raises gives a failed result for its disk only."""
    results: list[SanitizeResult | None] = [None] * len(disks)

    def one(i: int, disk: Disk) -> None:
        try:
            results[i] = worker(disk)
        except Exception as exc:  # noqa: BLE001 - one disk's bug must not lose the others' results
            log.debug("wipe of %s crashed", disk.path, exc_info=True)
            message = str(exc) if isinstance(exc, ArdoiseError) else f"internal error: {type(exc).__name__}: {exc}"
            step = StepResult(method="wipe", category=None, status=StepStatus.FAILED, error=message)
            results[i] = SanitizeResult(disk=disk, outcome=Outcome.FAILED, category=None, method="wipe", steps=[step], notes=[message])

    threads = [threading.Thread(target=one, args=(i, d), name=f"wipe-{d.name}") for i, d in enumerate(disks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


class _cancel_on_signals:
    """SIGINT/SIGTERM stop every worker cleanly (journals kept, results say interrupted)."""

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel
        self.previous: dict[int, object] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, lambda *_: self.cancel.set())
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def require_writable_dir(path: Path) -> None:
    """``--out`` must be a directory we can create files in (created if missing)."""
    if path.exists() and not path.is_dir():
        raise UsageError(T_("--out {path} is not a directory", path=path))
    try:
        path.mkdir(parents=True, exist_ok=True)
        # os.access says yes to root on a read-only mount or an immutable directory: try.
        fd, probe = tempfile.mkstemp(dir=path, prefix=".ardoise-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(T_("--out {path} is not writable: {why}", path=path, why=exc.strerror)) from None


FALLBACK_DIRS = (Path("/var/lib/ardoise/certificates"), Path(tempfile.gettempdir()) / "ardoise-certificates")


def output_dirs(out_dir: Path, state_dir: Path) -> list[Path]:
    """Where a finished wipe's record may go, in order: --out, then the state directory
    (the stick's ``ardoise/`` in the image), then the station's disk, then a temporary
    directory, so that something always says what happened to the disk."""
    dirs: list[Path] = []
    for d in (out_dir, state_dir / "certificates", *FALLBACK_DIRS):
        if d not in dirs:
            dirs.append(d)
    return dirs


def _write_outputs(result: SanitizeResult, out_dir: Path, config, state_dir: Path) -> list[str]:
    """A signed certificate; if that cannot be issued, the raw result as JSON. The disk is
    already wiped here, so a directory that stopped being writable during the wipe is not
    the end: the next place of ``output_dirs`` is tried, and the technician told."""
    dirs = output_dirs(out_dir, state_dir)
    problems: list[str] = []
    try:
        from agent.certify import issue_certificate
        from agent.certify.keys import StationKey

        key = StationKey.load_or_create(state_dir)
    except ImportError:
        key, reason = None, _("certificates are not available in this build")
    except ArdoiseError as exc:
        key, reason = None, _("certificate not issued: {error}").format(error=exc.localized())
    if key is not None:
        for d in dirs:
            try:
                files = issue_certificate(result, None, config, key, d)
            except (OSError, ArdoiseError) as exc:
                why = getattr(exc, "strerror", None) or (exc.localized() if isinstance(exc, ArdoiseError) else exc)
                problems.append(f"{d}: {why}")
                continue
            _say_fallback(result, out_dir, d, problems)
            return [str(p) for p in (files.json_path, files.pdf_path) if p is not None]
        reason = _("certificate not written")
    say(_("{device}: {reason}; writing the result record instead").format(device=result.disk.path, reason=reason))
    name = result.disk.serial or result.disk.name
    filename = f"{''.join(c if c.isalnum() or c in '-_.' else '_' for c in name)}-result.json"
    data = (json.dumps(to_dict(result), indent=2) + "\n").encode()
    for d in dirs:
        try:
            atomic_write(d / filename, data)
        except OSError as exc:
            problems.append(f"{d}: {exc.strerror}")
            continue
        _say_fallback(result, out_dir, d, problems)
        return [str(d / filename)]
    raise SanitizeError(T_("{device} ended {outcome} but no record could be written anywhere ({problems})",
                           device=result.disk.path, outcome=result.outcome.value, problems="; ".join(problems)))


def _say_fallback(result: SanitizeResult, out_dir: Path, written: Path, problems: list[str]) -> None:
    if written != out_dir:
        say(_("{device}: cannot write to {dir} ({problems}): record written to {written} instead").format(
            device=result.disk.path, dir=out_dir, problems="; ".join(problems), written=written))


def summary_line(r: SanitizeResult) -> str:
    lang = i18n.current()
    v = r.verification
    verified = _(", verify {method} {status}").format(**dict(zip(("method", "status"), lang.verification(
        v.method, v.status)))) if v is not None else ""
    rate = _(" at {size}/s").format(size=lang.size(r.throughput_bps, binary=True)) if r.throughput_bps else ""
    problem = ""
    if r.outcome is not Outcome.SUCCESS:
        problem = ": " + (r.notes[0] if r.notes else _("see the result"))
        if r.error_ranges:
            problem += " (LBAs " + ", ".join(f"{x.start}-{x.end - 1}" for x in r.error_ranges[:5]) + ")"
    return _("{device}: {outcome} ({method}, {size} in {seconds} s{rate}{verified}){problem}").format(
        device=r.disk.path, outcome=lang.outcome(r.outcome.value), method=r.method,
        size=lang.size(r.bytes_written, binary=True), seconds=lang.decimal(r.duration_s), rate=rate,
        verified=verified, problem=problem)
