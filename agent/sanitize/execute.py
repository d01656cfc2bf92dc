"""Run a ``SanitizePlan``: the first step that works, falling back on refusal, error or
timeout, and an honest account of what was achieved.

The rules that make the outcome honest:
- Purge only when a purge command completed *and* its verification passed: every
  canary written before the purge is gone and the sampled read-back found none of them.
  A drive that says "done" and keeps a canary has failed, and we fall back.
- A purge that fell back to overwrite is Clear.
- A hidden area (HPA/DCO) that could not be removed was not sanitized, so the disk was
  not sanitized: the outcome is failed, whatever the visible part received.
- The destructive path starts with ``discover.require_targets``, exactly like the
  overwrite: a protected device is refused before any command is sent.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from agent.commands import CommandLog
from agent.i18n import T_
from agent.errors import ArdoiseError, DeviceError, SanitizeError, ToolError, ToolMissing, ToolTimeout
from agent.records import (
    Category,
    Disk,
    Outcome,
    PlanStep,
    SanitizePlan,
    SanitizeResult,
    StepResult,
    StepStatus,
    Transport,
    VerificationResult,
)
from agent.sanitize import ata, discard, hpa, nvme, scsi, unfreeze
from agent.sanitize.journal import now_iso
from agent.verify import canary

SYS_BLOCK = Path("/sys/block")
# Crypto erase leaves ciphertext under a lost key: the read-back can only check that no
# canary is left. Firmware overwrites with a zero pattern must read back as zeros.
_ZERO_AFTER = {"ata-sanitize-overwrite", "scsi-sanitize-overwrite"}


# Sanitize runs in progress in this process (``ardoise run`` wipes a whole shelf at once).
# A suspend-to-RAM stops every one of them and can make USB drives re-enumerate, so the
# unfreeze is only done when this disk is the only one being sanitized.
_active_lock = threading.Lock()
_active_runs = 0


class _Run:
    """State of one execution: the disk as it is now, commands, and what prepare found."""

    def __init__(self, plan: SanitizePlan, config: Any, progress, journal, cancel):
        self.plan = plan
        self.disk = plan.disk
        self.config = config
        self.progress = progress
        self.journal = journal
        self.cancel = cancel or threading.Event()
        self.still_frozen = False
        self.hidden_failure: str | None = None
        self.state_dir = getattr(config, "state_dir", None) or os.environ.get("ARDOISE_STATE_DIR") or "/var/lib/ardoise"


def _guard(plan: SanitizePlan, config: Any) -> Disk:
    """Refuse protected devices, and a different drive now sitting at the planned path."""
    from agent.discover import require_targets

    if plan.not_target:
        # Same message shape as require_targets, without re-probing a device we know about.
        from agent.errors import ProtectedDeviceError

        raise ProtectedDeviceError(f"refusing to write {plan.disk.path}: {plan.not_target}", device=plan.disk.path)
    exclude = list(getattr(config, "exclude_serials", None) or [])
    disk = require_targets(
        [plan.disk.path], allow_file=plan.disk.transport == Transport.FILE, exclude_serials=exclude
    )[0]
    if plan.disk.identity != plan.disk.path and disk.identity != plan.disk.identity:
        raise DeviceError(
            f"{plan.disk.path} is now {disk.identity}, not the planned {plan.disk.identity}: plan again"
        )
    if plan.steps and any(s.method.startswith("nvme-") for s in plan.steps):
        from agent.sanitize.policy import _sibling_namespaces

        siblings = _sibling_namespaces(disk)
        if siblings:
            require_targets(siblings, exclude_serials=exclude)
    # Keep the plan's view (media, bridge) but the current size and sectors.
    plan.disk.size_bytes = disk.size_bytes or plan.disk.size_bytes
    return plan.disk


def sanitize(
    plan: SanitizePlan,
    *,
    config: Any = None,
    progress: Callable | None = None,
    journal: Any = None,
    cancel: threading.Event | None = None,
) -> SanitizeResult:
    """Execute ``plan``; raise only for a refused (protected or changed) device."""
    global _active_runs
    _guard(plan, config)
    with _active_lock:
        _active_runs += 1
    try:
        return _sanitize(plan, config, progress, journal, cancel)
    finally:
        with _active_lock:
            _active_runs -= 1


def _sanitize(plan: SanitizePlan, config: Any, progress, journal, cancel) -> SanitizeResult:
    run = _Run(plan, config, progress, journal, cancel)
    started, t0 = now_iso(), time.monotonic()
    result = SanitizeResult(
        disk=plan.disk, outcome=Outcome.FAILED, category=None, method="none", started_at=started
    )
    result.hidden_areas = plan.hidden_areas
    result.notes.extend(plan.notes)
    for skipped in plan.skipped:
        result.steps.append(
            StepResult(
                method=skipped.method,
                category=None,
                status=StepStatus.UNSUPPORTED if skipped.reason.startswith("unsupported") else StepStatus.SKIPPED,
                notes=[skipped.reason],
            )
        )
    for prep in plan.prepare:
        result.steps.append(_prepare(run, prep, result))

    if plan.hidden_areas is not None and hpa.has_hidden_area(plan.hidden_areas) and result.hidden_areas:
        if not result.hidden_areas.removed:
            run.hidden_failure = result.hidden_areas.note or "a hidden area (HPA/DCO) was not removed and was not sanitized"

    achieved: StepResult | None = None
    for step in plan.steps:
        if run.cancel.is_set():
            result.outcome = Outcome.INTERRUPTED
            break
        if step.method.startswith("overwrite:"):
            sr = _overwrite(run, step)
        else:
            sr = _firmware(run, step)
        result.steps.append(sr)
        if sr.status == StepStatus.SUCCESS:
            achieved = sr
            break
        if sr.status == StepStatus.INTERRUPTED:
            result.outcome = Outcome.INTERRUPTED
            break

    if achieved is not None:
        result.method = achieved.method
        result.verification = achieved.verification
        result.bytes_written = achieved.bytes_written
        result.error_ranges = list(achieved.error_ranges)
        result.resumed = achieved.resumed
        result.category = achieved.category
        result.outcome = Outcome.SUCCESS
        if achieved.method.startswith("overwrite:"):
            _after_overwrite(run, plan.steps, achieved, result)
        elif run.journal is not None:
            # A firmware purge supersedes any overwrite an earlier run left half done.
            run.journal.clear(plan.disk.identity)
        if not achieved.method.startswith("overwrite:") and getattr(config, "final_zero_pass", False):
            zero = _final_zero_pass(run)
            result.steps.append(zero)
            result.bytes_written += zero.bytes_written
            if zero.status != StepStatus.SUCCESS:
                result.outcome = Outcome.FAILED if zero.status != StepStatus.INTERRUPTED else Outcome.INTERRUPTED
                result.notes.append(T_("the final zero pass required by the config did not complete: {error}",
                                       error=str(zero.error)))
        fell_back = any(
            s.status in (StepStatus.FAILED, StepStatus.REFUSED, StepStatus.SKIPPED) and not s.method.startswith("overwrite:")
            and s.method in {p.method for p in plan.steps}
            for s in result.steps
        )
        if fell_back and achieved.category == Category.CLEAR:
            result.notes.append(T_("firmware purge failed or was refused: fell back to overwrite, which is NIST Clear"))
    else:
        # Nothing succeeded: the certificate still says what was attempted, how much was
        # written, which blocks could not be and what the read-back found, from the last
        # step that actually ran. An under-reporting certificate misleads as much as one
        # that over-reports.
        tried = [s for s in result.steps if s.method in {p.method for p in plan.steps}
                 and s.status in (StepStatus.FAILED, StepStatus.INTERRUPTED)]
        if tried:
            last = tried[-1]
            result.method = last.method
            result.verification = last.verification
            result.bytes_written = last.bytes_written
            result.error_ranges = list(last.error_ranges)
            result.resumed = last.resumed
    if achieved is None and result.outcome != Outcome.INTERRUPTED:
        result.outcome = Outcome.FAILED
        if not plan.steps:
            result.notes.append(plan.refused or T_("no sanitize step is possible for this disk"))
        else:
            result.notes.append(T_("every planned step failed: the disk is not sanitized"))

    if run.hidden_failure:
        # The visible blocks were sanitized, the hidden ones were not: the disk as a whole
        # was not, and a certificate must not say otherwise.
        result.notes.append(T_("hidden area not sanitized: {error}", error=str(run.hidden_failure)))
        if result.outcome == Outcome.SUCCESS:
            result.outcome = Outcome.FAILED
        result.category = None
    if result.outcome != Outcome.SUCCESS:
        result.category = None
    result.finished_at = now_iso()
    result.duration_s = round(time.monotonic() - t0, 3)
    if result.duration_s and result.bytes_written:
        result.throughput_bps = int(result.bytes_written / result.duration_s)
    return result


# --------------------------------------------------------------------------- prepare


def _prepare(run: _Run, prep: PlanStep, result: SanitizeResult) -> StepResult:
    log = CommandLog()
    sr = StepResult(method=prep.method, category=None, status=StepStatus.FAILED, started_at=now_iso())
    dev = run.disk.path
    try:
        if prep.method == "unfreeze":
            with _active_lock:
                others = _active_runs - 1
            if others > 0:
                out = unfreeze.UnfreezeOutcome(
                    False, False, None,
                    f"suspend-to-RAM not done: {others} other disk(s) are being sanitized and it would interrupt them",
                )
            else:
                out = unfreeze.unfreeze(
                    dev,
                    enabled=bool(prep.options.get("enabled", True)),
                    seconds=int(prep.options.get("seconds", unfreeze.DEFAULT_SECONDS)),
                    log=log,
                )
            sr.notes.append(out.note)
            sr.status = StepStatus.SUCCESS if out.unfrozen else StepStatus.FAILED
            run.still_frozen = not out.unfrozen
            if not out.unfrozen:
                result.notes.append(T_("drive stays frozen ({note}): security erase and HPA reset are not possible",
                                       note=str(out.note)))
        elif prep.method == "mmc-boot-writable":
            # The kernel's own switch (not the card's permanent write protection): write 0,
            # read it back; a card that also write-protects its boot area fails the overwrite.
            path = Path(prep.options["force_ro"])
            try:
                path.write_text("0\n")
                now = path.read_text().strip()
            except OSError as exc:
                sr.status, sr.error = StepStatus.FAILED, f"cannot clear {path}: {exc.strerror or exc}"
            else:
                sr.status = StepStatus.SUCCESS if now == "0" else StepStatus.FAILED
                sr.notes.append(f"{path}: {now}")
        elif prep.method == "ata-security-recover":
            _recover_security(run, log, sr)
        elif prep.method == "hpa-reset":
            areas = result.hidden_areas or run.plan.hidden_areas
            if areas is None:
                sr.status = StepStatus.SKIPPED
            else:
                allowed = bool(getattr(run.config, "hpa_reset", True)) and not run.still_frozen
                areas = hpa.reset(dev, areas, allowed=allowed, log=log)
                if run.still_frozen and not areas.removed:
                    areas.note = (areas.note or "") + " (drive frozen: SET MAX refused)"
                result.hidden_areas = areas
                sr.status = StepStatus.SUCCESS if areas.removed else StepStatus.FAILED
                if areas.note:
                    sr.notes.append(areas.note)
                if areas.removed:
                    _rescan(run.disk)
        else:
            sr.status, sr.error = StepStatus.SKIPPED, f"unknown preparation {prep.method}"
    except ArdoiseError as exc:
        sr.status, sr.error = StepStatus.FAILED, str(exc)
    sr.commands = log.entries
    sr.finished_at = now_iso()
    return sr


def _recover_security(run: _Run, log: CommandLog, sr: StepResult) -> None:
    dev, identity = run.disk.path, run.disk.identity
    journal = ata.PasswordJournal(run.state_dir)
    password = journal.load(identity)
    if password is None:
        raise SanitizeError("no journaled password for this drive")
    info = ata.read_identify(dev, log)
    if info.security.locked:
        ata.unlock(dev, password, log)
        sr.notes.append("unlocked with the password journaled by the interrupted run")
    if info.security.enabled:
        ata.disable(dev, password, log)
    after = ata.read_identify(dev, log)
    if after.security.enabled or after.security.locked:
        raise SanitizeError("security still enabled after unlock and disable")
    journal.clear(identity)
    sr.status = StepStatus.SUCCESS
    sr.notes.append("security disabled; the drive is writable again")


def _rescan(disk: Disk) -> None:
    """After SET MAX the kernel still believes the old size until the SCSI disk rescans."""
    try:
        (SYS_BLOCK / disk.name / "device" / "rescan").write_text("1")
        sectors = int((SYS_BLOCK / disk.name / "size").read_text().strip())
        disk.size_bytes = sectors * 512
    except (OSError, ValueError):
        pass


# --------------------------------------------------------------------------- steps


def _overwrite(run: _Run, step: PlanStep) -> StepResult:
    from agent.sanitize.overwrite import run_overwrite

    method = step.options.get("method") or step.method.split(":", 1)[1]
    sr = run_overwrite(
        run.disk, method, verify=run.plan.verify, progress=run.progress, journal=run.journal, cancel=run.cancel
    )
    if sr.status == StepStatus.SUCCESS:
        sr.category = Category.CLEAR
    return sr


def _after_overwrite(run: _Run, steps: list[PlanStep], achieved: StepResult, result: SanitizeResult) -> None:
    step = next((s for s in steps if s.method == achieved.method), None)
    if step is None or not step.options.get("secure_discard"):
        return
    log = CommandLog()
    sr = StepResult(method="blkdiscard-secure", category=None, status=StepStatus.FAILED, started_at=now_iso())
    res = discard.secure_discard(run.disk.path, log)
    if res is None:
        sr.status, sr.error = StepStatus.REFUSED, "blkdiscard could not run"
    elif res.ok:
        sr.status = StepStatus.SUCCESS
        sr.notes.append("secure discard after the overwrite; the category stays Clear (it cannot be verified)")
    else:
        sr.status = StepStatus.UNSUPPORTED
        sr.error = (res.stderr.strip() or "refused").splitlines()[-1]
    sr.commands = log.entries
    sr.finished_at = now_iso()
    result.steps.append(sr)


def _final_zero_pass(run: _Run) -> StepResult:
    from agent.sanitize.overwrite import run_overwrite

    sr = run_overwrite(
        run.disk, "zero", verify=run.plan.verify if run.plan.verify != "none" else "sample",
        progress=run.progress, journal=run.journal, cancel=run.cancel,
    )
    sr.method = "final-zero-pass"
    sr.category = None  # it adds deterministic content, not a category
    sr.notes.append("final zero pass (config final_zero_pass): the purge had already achieved the category")
    return sr


def _emit(run: _Run, method: str, percent: float) -> None:
    if run.progress is None:
        return
    from agent.sanitize.progress import Progress

    size = run.disk.size_bytes
    run.progress(Progress(run.disk.path, "purge", 0, 1, int(size * percent / 100), size, 0.0, None, pattern=method))


def _firmware(run: _Run, step: PlanStep) -> StepResult:
    log = CommandLog()
    sr = StepResult(method=step.method, category=None, status=StepStatus.FAILED, started_at=now_iso())
    t0 = time.monotonic()
    if run.still_frozen and step.method.startswith("ata-security-erase"):
        sr.status = StepStatus.SKIPPED
        sr.error = "drive still frozen after the unfreeze attempt: security erase refused, falling back"
        sr.finished_at = now_iso()
        return sr
    if step.method == "tcg-psid-revert":
        # A locked drive takes no canary: the revert is judged by what the drive reports
        # after it and by reading it back.
        _psid_revert(run, step, log, sr)
        sr.commands = log.entries
        sr.duration_s = round(time.monotonic() - t0, 3)
        sr.finished_at = now_iso()
        return sr
    try:
        canaries = canary.plant(run.disk.path, run.disk.size_bytes)
    except ArdoiseError as exc:
        sr.error = f"canaries could not be written, so the purge could not be verified: {exc}"
        sr.finished_at = now_iso()
        return sr
    sr.notes.append(f"{len(canaries.canaries)} canaries written before the purge")
    try:
        _run_firmware(run, step, log, sr)
    except ToolTimeout as exc:
        sr.status, sr.error = StepStatus.FAILED, f"timed out: {exc}"
    except ToolMissing as exc:
        sr.status, sr.error = StepStatus.REFUSED, str(exc)
    except SanitizeError as exc:
        sr.status = StepStatus.REFUSED if "refused" in str(exc) else StepStatus.FAILED
        sr.error = str(exc)
    except ToolError as exc:
        sr.status, sr.error = StepStatus.FAILED, str(exc)
    else:
        _verify_purge(run, step, canaries, sr)
    sr.commands = log.entries
    sr.duration_s = round(time.monotonic() - t0, 3)
    sr.finished_at = now_iso()
    return sr


def _run_firmware(run: _Run, step: PlanStep, log: CommandLog, sr: StepResult) -> None:
    dev, size = run.disk.path, run.disk.size_bytes
    report = lambda pct: _emit(run, step.method, pct)  # noqa: E731
    m = step.method
    if m.startswith("nvme-sanitize-"):
        action = step.options["action"]
        timeout = nvme.sanitize_timeout(step.options.get("estimate_s"), size)
        nvme.sanitize(step.options["controller"], action, timeout=timeout, log=log, progress=report)
    elif m.startswith("nvme-format-"):
        controller = step.options["controller"]
        for nsid in nvme.list_namespaces(controller, log):
            nvme.format_namespace(controller, nsid, int(step.options["ses"]), timeout=nvme.format_timeout(size), log=log)
            sr.notes.append(f"namespace {nsid} formatted with SES={step.options['ses']}")
    elif m.startswith("ata-sanitize-"):
        action = step.options["action"]
        timeout = 3600.0 + size / (50e6 if action == "overwrite" else 200e6)
        ata.sanitize(dev, action, timeout=timeout, log=log, progress=report)
    elif m.startswith("ata-security-erase"):
        _security_erase(run, step, log, sr)
    elif m == "mmc-discard-sanitize":
        from agent import commands

        log.add(commands.run(["blkdiscard", dev], timeout=3600, check=True))
        # Sanitize time grows with the unmapped area; the card reports nothing until done.
        log.add(commands.run(["mmc", "sanitize", dev], timeout=3600.0 + size / 20e6, check=True))
        sr.notes.append("whole user area discarded, then eMMC Sanitize")
    elif m.startswith("scsi-sanitize-"):
        action = step.options["action"]
        scsi.sanitize(dev, action, timeout=scsi.sanitize_timeout(size, action), log=log, progress=report)
    else:
        raise SanitizeError(f"unknown firmware method {m}")


def _psid_revert(run: _Run, step: PlanStep, log: CommandLog, sr: StepResult) -> None:
    """TCG PSID revert, then proof: Level 0 Discovery must show no locking enabled and no
    locked range, and a sampled read-back must read every block it asks for."""
    from agent import commands
    from agent.sanitize import sed
    from agent.verify import Absent, verify_sample

    dev = run.disk.path
    psid = None
    wanted = "".join((step.options.get("psid_for") or "").split()).upper()
    for serial, value in (getattr(run.config, "psid", None) or {}).items():
        if wanted and "".join(serial.split()).upper() == wanted:
            psid = value
    if psid is None:
        sr.status, sr.error = StepStatus.REFUSED, f"no PSID in the config for serial {step.options.get('psid_for')}"
        return
    try:
        log.add(commands.run(["sedutil-cli", "--PSIDrevert", commands.Secret(psid), dev], timeout=600, check=True))
        after = log.add(commands.run(["sedutil-cli", "--query", dev], timeout=60, check=True))
    except ToolError as exc:
        sr.status, sr.error = StepStatus.FAILED, f"PSID revert failed: {exc}"
        return
    info = sed.parse_query(after.stdout)
    if info is None or info.locked or info.locking_enabled:
        sr.status = StepStatus.FAILED
        sr.error = ("after the PSID revert the drive still reports "
                    + ("no TCG state" if info is None else "a locked range" if info.locked else "locking enabled"))
        return
    sr.notes.append("after the PSID revert, Level 0 Discovery: LockingEnabled = N, Locked = N")
    canary.drop_cache(dev)
    try:
        # Nothing known to look for after a crypto erase: the read proves every sampled
        # block is readable again (a marker no drive holds stands for "anything").
        check = verify_sample(dev, Absent([b"\0ardoise-psid-revert-read-check\0"], label="readable"), cancel=run.cancel)
    except ArdoiseError as exc:
        sr.status, sr.error = StepStatus.FAILED, f"read-back after the PSID revert failed: {exc}"
        return
    sr.verification = check
    if check.status != "passed":
        sr.status = StepStatus.FAILED
        sr.error = f"read-back after the PSID revert {check.status}: " + "; ".join(check.notes[-3:])
        return
    sr.status, sr.category = StepStatus.SUCCESS, step.category


def _security_erase(run: _Run, step: PlanStep, log: CommandLog, sr: StepResult) -> None:
    dev, identity = run.disk.path, run.disk.identity
    enhanced = bool(step.options.get("enhanced"))
    info = ata.read_identify(dev, log)
    if info.security.frozen:
        raise SanitizeError("security erase refused: the drive is frozen")
    if info.security.enabled:
        raise SanitizeError("security erase refused: security is already enabled with a password we do not know")
    if enhanced and not info.security.enhanced_supported:
        raise SanitizeError("enhanced security erase refused: not supported")
    password = ata.new_password()
    journal = ata.PasswordJournal(run.state_dir)
    # Journal first: if the power goes between SET PASSWORD and the end of the erase, the
    # next run finds this password and unlocks the drive (ata-security-recover).
    journal.record(identity, dev, password)
    ata.set_password(dev, password, log)
    timeout = float(step.options.get("timeout_s") or ata.erase_timeout(info, enhanced))
    try:
        ata.security_erase(dev, password, enhanced=enhanced, timeout=timeout, log=log)
    except ArdoiseError:
        # Leave the drive as we found it if it still answers; else the journal recovers it.
        try:
            ata.disable(dev, password, log)
            journal.clear(identity)
        except ArdoiseError:
            sr.notes.append("security password left set; the next run unlocks it from the journal")
        raise
    after = ata.read_identify(dev, log)
    if after.security.enabled:
        # Some drives keep the password after the erase; disable it ourselves.
        ata.disable(dev, password, log)
        after = ata.read_identify(dev, log)
    if after.security.enabled or after.security.locked:
        raise SanitizeError("security is still enabled after the erase: the drive is left locked")
    journal.clear(identity)
    sr.notes.append("security disabled after the erase (checked with hdparm -I)")


def _verify_purge(run: _Run, step: PlanStep, canaries: canary.CanarySet, sr: StepResult) -> None:
    """Canaries first (cheap and decisive), then the sampled read-back."""
    check = canary.check(canaries)
    sr.notes.extend(check.notes)
    if check.status != "passed":
        sr.status = StepStatus.FAILED
        sr.error = (
            "the drive reported success but the purge is not confirmed: " + "; ".join(check.notes)
        )
        sr.verification = check
        return
    verification = _readback(run, step, canaries)
    verification.notes.extend(check.notes)
    sr.verification = verification
    if verification.status not in ("passed", "not-run"):
        sr.status = StepStatus.FAILED
        sr.error = f"read-back after the purge {verification.status}: " + "; ".join(verification.notes[-3:])
        return
    sr.status = StepStatus.SUCCESS
    sr.category = step.category


def _readback(run: _Run, step: PlanStep, canaries: canary.CanarySet) -> VerificationResult:
    mode = run.plan.verify
    if mode == "none":
        return VerificationResult(method="canary", status="passed", notes=["sampled read-back disabled (verify: none)"])
    from agent.verify import Absent, Content, verify_full, verify_sample

    if step.method in _ZERO_AFTER:
        expect = Content.zeros()
    else:
        expect = Absent([canary.MAGIC + canaries.run_id.encode()], label="no canary")
    canary.drop_cache(run.disk.path)
    try:
        if mode == "full":
            return verify_full(run.disk.path, expect, cancel=run.cancel)
        return verify_sample(run.disk.path, expect, cancel=run.cancel)
    except ArdoiseError as exc:
        return VerificationResult(method=mode, status="error", notes=[f"read-back failed: {exc}"])
