"""The unattended run: discover → audit once → per disk, in parallel: plan → sanitize
(with verification) → certify → spool → deliver.

Each disk runs in its own thread and everything it does is wrapped so that one disk's
failure (a dead drive, a bug in a driver) becomes that disk's FAILED certificate and never
stops the others. Nothing is sent before it is in the spool on the stick.
"""

from __future__ import annotations

import base64
import logging
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agent.config import Config
from agent.deliver.client import CollectorClient
from agent.deliver.progress import ProgressReporter
from agent.deliver.spool import Spool
from agent.deliver.upload import Deliverer
from agent.errors import ArdoiseError, DeviceGone, ProtectedDeviceError
from agent.records import AuditReport, Disk, Outcome, SanitizeResult, StorageReport, StorageState
from agent import outcome as outcome_table
from agent import humanize, i18n
from agent.i18n import T_, _, pgettext
from agent.run.stages import Stages
from agent import tui

log = logging.getLogger("ardoise.run")


@dataclass
class DiskOutcome:
    disk: Disk
    outcome: Outcome
    certificate_id: str | None = None
    certificate_path: Path | None = None
    error: str | None = None
    decision: outcome_table.Decision | None = None  # the outcome table's codes, as certified


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class LogBuffer(logging.Handler):
    """Keeps this run's log lines so they can be written atomically to the spool."""

    def __init__(self, limit: int = 20000):
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.limit = limit
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
            if len(self.lines) > self.limit:
                del self.lines[: len(self.lines) - self.limit]
        except Exception:  # noqa: BLE001 - logging must never break a wipe
            pass


# --------------------------------------------------------------------------- audit → screen




def machine_summary(audit: AuditReport | None, report_id: str | None, drive_results: list[str] | None = None) -> tui.MachineSummary:
    """The header's facts; its verdict is the outcome table's machine verdict, so a drive
    that failed or was interrupted turns it to attention."""
    results = list(drive_results or [])
    code = outcome_table.machine_verdict(audit.verdict if audit is not None else None, results)
    if code == outcome_table.MachineCode.ATTENTION:
        bad = sum(outcome_table.result_code(r) != outcome_table.Result.SUCCESS for r in results)
        verdict = _("{verdict} ({bad} of {total})").format(verdict=outcome_table.describe_machine(code), bad=bad,
                                                           total=len(results))
    elif audit is None or code is None:
        verdict = _("unknown (no audit)")
    else:
        verdict = outcome_table.describe_machine(code) + (f" ({i18n.localize(audit.reasons[0])})" if audit.reasons else "")
    verdict_code = str(code) if code is not None else None
    if audit is None:
        return tui.MachineSummary(verdict=verdict, verdict_code=verdict_code, report_id=report_id)
    m = audit.machine
    dmi, cpu, mem = m.dmi, m.cpu, m.memory
    ram = (mem.installed_bytes or mem.total_bytes) if mem else None
    if m.batteries is None:
        battery = pgettext("battery", "unknown")
    elif not m.batteries:
        battery = pgettext("battery", "none")
    else:
        battery = ", ".join(
            _("{percent} of design").format(percent=humanize.percent(b.health_percent / 100))
            if b.health_percent is not None else _("{name} (health unknown)").format(name=b.name)
            for b in m.batteries
        )
    return tui.MachineSummary(
        vendor=dmi.system_vendor if dmi else None,
        model=(dmi.system_product or dmi.system_version) if dmi else None,
        serial=dmi.system_serial if dmi else None,
        cpu=(cpu.brand + (", " + _("{threads} threads").format(threads=cpu.threads) if cpu.threads else ""))
        if cpu and cpu.brand else None,
        ram=tui.human_bytes(ram) if ram else None,
        battery=battery,
        verdict=verdict,
        verdict_code=verdict_code,
        report_id=report_id,
    )


def smart_verdict(audit: AuditReport | None, disk: Disk) -> str | None:
    if audit is None:
        return None
    for item in audit.disks:
        d = item.disk
        if d.path == disk.path or (disk.identity != disk.path and d.identity == disk.identity):
            return item.health.verdict.value
    return None


def screen_decision(certificate: Path | None, result: SanitizeResult, smart: str | None, *,
                    failed: bool = False) -> outcome_table.Decision:
    """What the screen says of a drive: the certificate's own codes when one was issued (so
    the two cannot disagree), else the outcome table applied to the result; ``failed`` when
    certifying itself failed (no certificate means not sanitized)."""
    if certificate is not None:
        try:
            from agent.certify import envelope as env

            opened = env.parse_envelope(certificate.read_bytes())
            return outcome_table.decision_of(env.parse_json(base64.b64decode(opened["payload"]), "payload"))
        except Exception as exc:  # noqa: BLE001 - fall back to the same table on the result
            log.warning("cannot read back certificate %s: %s", certificate, exc)
    errors = bool(result.error_ranges) or any(getattr(st, "error_ranges", None) for st in result.steps)
    return outcome_table.decide("failed" if failed else result.outcome, result.category, smart, errors)


def failure_reason(result: SanitizeResult) -> str:
    """One line for the screen: what went wrong, not the plan's notes."""
    for step in reversed(result.steps):
        if step.error:
            return i18n.localize(step.error)
    return i18n.localize(result.notes[-1]) if result.notes else i18n.current().outcome(result.outcome.value)


def session_identity(disk: Disk) -> str | None:
    """What makes a re-inserted drive "the same drive": its WWN or serial, never its sdX
    name. A loop device has neither; its backing file stands in (as for the journal). A
    drive with no identity at all is never skipped: wiping twice beats not wiping."""
    if disk.wwn or disk.serial:
        return disk.wwn or disk.serial
    if disk.name.startswith("loop"):
        try:
            backing = Path(f"/sys/block/{disk.name}/loop/backing_file").read_text().strip()
        except OSError:
            return None
        return f"{disk.path}:{backing}"
    return None


# --------------------------------------------------------------------------- the run


@dataclass
class Session:
    """Everything one ``ardoise run`` shares between its disk threads."""

    config: Config
    stages: Stages
    view: tui.RunView
    spool: Spool
    deliverer: Deliverer
    key: Any
    journal: Any = None
    reporter: ProgressReporter | None = None
    audit: Any = None
    report_id: str | None = None
    report_qr: str | None = None  # what the final screen's QR code says (agent.certify.links)
    # The machine's storage state (controllers hiding disks, no disk at all); None: not checked.
    storage: StorageReport | None = None
    outcomes: dict[str, DiskOutcome] = field(default_factory=dict)
    # Identity (WWN/serial) -> certificate id, for disks certified in this session.
    certified: dict[str, str] = field(default_factory=dict)
    threads: dict[str, threading.Thread] = field(default_factory=dict)
    cancels: dict[str, threading.Event] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    logbuf: LogBuffer = field(default_factory=LogBuffer)
    log_name: str = field(default_factory=lambda: f"run-{_now().replace(':', '')}.log")

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ setup

    @classmethod
    def open(cls, config: Config, stages: Stages, view: tui.RunView, *, client: CollectorClient | None = None) -> "Session":
        spool = Spool.for_state_dir(config.state_dir).ensure()
        key = stages.load_key(config)
        if client is None and config.collector is not None:
            # The dashboard names a station by its enrollment name: on a netbooted table, the seat.
            client = CollectorClient(config.collector, config.state_dir, key,
                                     name=f"seat {config.seat}" if config.seat else None)
        deliverer = Deliverer(
            spool,
            client,
            on_change=lambda status, counts: view.set_delivery(
                collector=status, spooled=counts.spooled, delivered=counts.delivered
            ),
        )
        journal = stages.make_journal(config) if stages.make_journal else None
        reporter = ProgressReporter(client, config.collector.progress_interval_s).start() if client else None
        s = cls(config, stages, view, spool, deliverer, key, journal, reporter)
        s._attach_log()
        return s

    def _attach_log(self) -> None:
        # The spooled run log keeps INFO (commands run, plans, deliveries) even when stderr
        # shows only warnings: pin the existing handlers to their current threshold, then
        # let the agent's own records through to ours.
        root = logging.getLogger()
        self._pinned = [h for h in root.handlers if h.level == logging.NOTSET]
        for h in self._pinned:
            h.setLevel(root.getEffectiveLevel())
        agent_log = logging.getLogger("ardoise")
        self._previous_level = agent_log.level
        agent_log.setLevel(min(logging.INFO, agent_log.getEffectiveLevel()))
        agent_log.addHandler(self.logbuf)

    def close(self) -> None:
        if self.reporter is not None:
            self.reporter.close()
        agent_log = logging.getLogger("ardoise")
        agent_log.removeHandler(self.logbuf)
        agent_log.setLevel(self._previous_level)
        for h in self._pinned:
            h.setLevel(logging.NOTSET)
        self.save_log()

    def save_log(self) -> None:
        try:
            self.spool.put("logs", self.log_name, ("\n".join(self.logbuf.lines) + "\n").encode())
        except OSError as exc:
            log.warning("cannot write the run log to the spool: %s", exc)

    # ------------------------------------------------------------------ storage

    def check_storage(self, disks: list[Disk], *, expect_disks: bool) -> list[Disk]:
        """Decide the machine's storage state before anything is written: a controller that
        hides its disks makes the machine FAILED (code ``storage_unreachable``), even when
        the disks it can see pass; no disk at all is NO DISK FOUND, never PASSED.

        A disk the kernel probed after the listing (a RAID controller finishing its scan)
        makes the run list the disks once more; the returned list is the one to use."""
        if self.stages.check_storage is None:
            return disks
        self._check_storage(disks, expect_disks)
        if self.storage is not None and self.storage.late_disks:
            log.info("disks appeared after the listing (%s): listing again", ", ".join(self.storage.late_disks))
            disks = self.stages.find_disks(self.config)
            self._check_storage(disks, expect_disks)
        self._show_storage()
        return disks

    def _check_storage(self, disks: list[Disk], expect_disks: bool) -> None:
        try:
            self.storage = self.stages.check_storage(disks, self.config, expect_disks)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - a failed check must not stop the wipes
            log.exception("storage check failed")
            self.storage = StorageReport(
                state=StorageState.STORAGE_UNREACHABLE,
                reasons=[T_("the storage controllers could not be checked: {error}", error=exc)],
            )

    def _show_storage(self) -> None:
        assert self.storage is not None
        state = self.storage.state
        if state == StorageState.OK:
            return
        reason: str = i18n.join("; ", self.storage.reasons)
        if state == StorageState.STORAGE_UNREACHABLE and self.storage.advice:
            reason = T_("{advice} ({reasons})", advice=self.storage.advice, reasons=reason)
        log.warning("machine: %s: %s", state.value, reason)
        self.view.set_machine_state(state.value, reason)

    # ------------------------------------------------------------------ audit

    def run_audit(self, disks: list[Disk]) -> None:
        self.view.say(_("auditing the machine"))
        try:
            self.audit = self.stages.audit_machine(disks, self.config)
        except Exception as exc:  # noqa: BLE001 - no audit must not mean no wipe
            log.warning("machine audit failed: %s", exc)
            self.audit = None
        if self.audit is not None and self.storage is not None:
            self.audit.storage = self.storage  # signed with the report, for the collector
        if self.audit is not None and self.stages.sign_audit is not None:
            try:
                self.report_id, data = self.stages.sign_audit(self.audit, self.config, self.key)
                # Each certificate names this report (audit_id): the collector links by it.
                self.audit.report_id = self.report_id
                self.spool.put("audits", f"{self.report_id}.json", data)
                from agent.certify.links import report_qr  # here: the certify stack loads in the background

                self.report_qr = report_qr(self.config, self.report_id, data)
                log.info("audit report %s spooled", self.report_id)
            except Exception as exc:  # noqa: BLE001
                log.warning("audit report not signed: %s", exc)
        self._show_machine()
        for disk in disks:
            verdict = smart_verdict(self.audit, disk)
            if verdict and disk.path in self.view.rows:
                self.view.update(disk.path, smart=verdict)
        if self.report_id:
            self.deliverer.sweep_soon()

    # ------------------------------------------------------------------ disks

    def show_disk(self, disk: Disk, state: str = tui.WAITING, detail: str | None = None) -> None:
        self.view.add_disk(
            tui.DiskRow(
                device=disk.path,
                model=disk.model,
                serial=disk.serial,
                size_bytes=disk.size_bytes,
                smart=smart_verdict(self.audit, disk),
                state=state,
                detail=detail,
            )
        )

    def already_certified(self, disk: Disk) -> str | None:
        ident = session_identity(disk)
        return self.certified.get(ident) if ident else None

    def start_disk(self, disk: Disk) -> threading.Thread | None:
        """Start the pipeline of one target disk in its own thread (no-op if running)."""
        with self._lock:
            running = self.threads.get(disk.path)
            if running is not None and running.is_alive():
                return None
            cancel = threading.Event()
            self.cancels[disk.path] = cancel
            self.removed.discard(disk.path)
            t = threading.Thread(target=self._disk_thread, args=(disk, cancel), name=f"wipe-{disk.name}", daemon=True)
            self.threads[disk.path] = t
        t.start()
        return t

    def remove_disk(self, path: str) -> None:
        """A drive was pulled: stop its wipe; it ends ``interrupted``."""
        with self._lock:
            cancel = self.cancels.get(path)
            thread = self.threads.get(path)
            if thread is None or not thread.is_alive():
                return
            self.removed.add(path)
        log.warning("%s removed while being sanitized", path)
        if cancel is not None:
            cancel.set()

    def cancel_all(self) -> None:
        """Shutdown (SIGTERM, Ctrl-C): stop every wipe now. Each ends ``interrupted`` with a
        certificate, and its journal lets the next boot resume it."""
        with self._lock:
            events = [e for p, e in self.cancels.items() if self.threads.get(p) and self.threads[p].is_alive()]
        for e in events:
            e.set()

    def busy(self) -> bool:
        return any(t.is_alive() for t in list(self.threads.values()))

    def join(self) -> None:
        for t in list(self.threads.values()):
            t.join()

    def _disk_thread(self, disk: Disk, cancel: threading.Event) -> None:
        try:
            self.outcomes[disk.path] = self.run_disk(disk, cancel)
        except Exception as exc:  # noqa: BLE001 - the last guard of one disk's thread
            log.exception("%s: unexpected error", disk.path)
            decision = outcome_table.decide(Outcome.FAILED)
            self.view.update(disk.path, state=tui.FAILED, detail=_("internal error: {error}").format(error=exc),
                             advice=outcome_table.advice(decision))
            self.outcomes[disk.path] = DiskOutcome(disk, Outcome.FAILED, error=str(exc), decision=decision)
            self._show_machine()

    def _progress_callback(self, disk: Disk):
        def on_progress(p: Any) -> None:
            phase = str(getattr(p, "phase", "") or "")
            state = tui.VERIFYING if "verif" in phase else tui.WIPING
            pass_index = getattr(p, "pass_index", None)
            fields = dict(
                phase=phase,
                state=state,
                pass_index=(pass_index + 1) if isinstance(pass_index, int) else None,
                pass_count=getattr(p, "pass_count", None),
                bytes_done=int(getattr(p, "bytes_done", 0) or 0),
                bytes_total=int(getattr(p, "bytes_total", 0) or 0),
                throughput_bps=float(getattr(p, "throughput_bps", 0) or 0),
                eta_s=getattr(p, "eta_s", None),
            )
            self.view.update(disk.path, **fields)
            if self.reporter is not None:
                self.reporter.update(
                    disk.path, serial=disk.serial, model=disk.model, state="running",
                    **{k: (int(v) if isinstance(v, float) else v) for k, v in fields.items() if k != "state"},
                )

        return on_progress

    def run_disk(self, disk: Disk, cancel: threading.Event) -> DiskOutcome:
        cfg, stages, view = self.config, self.stages, self.view
        if disk.path not in view.rows:
            self.show_disk(disk)
        result: SanitizeResult | None = None
        try:
            stages.require_target(disk, cfg)
            view.update(disk.path, state=tui.PLANNING)
            plan = stages.make_plan(disk, cfg)
            view.update(disk.path, state=tui.WIPING, method=plan.steps[0].method if plan.steps else "-")
            log.info("%s (%s): plan %s", disk.path, disk.identity, [s.method for s in plan.steps])
            result = stages.sanitize(
                plan, cfg, progress=self._progress_callback(disk), journal=self.journal, cancel=cancel
            )
        except ProtectedDeviceError as exc:
            view.update(disk.path, state=tui.PROTECTED, detail=exc.localized())
            return DiskOutcome(disk, Outcome.FAILED, error=str(exc))
        except DeviceGone as exc:
            result = self._failed_result(disk, Outcome.INTERRUPTED, T_("device gone: {error}", error=exc))
        except Exception as exc:  # noqa: BLE001 - a failed disk still gets its certificate
            if not isinstance(exc, ArdoiseError):
                log.exception("%s: sanitize crashed", disk.path)
            result = self._failed_result(disk, Outcome.FAILED, exc.message if isinstance(exc, ArdoiseError) else str(exc))
        if result.outcome != Outcome.SUCCESS and (disk.path in self.removed or self.stages.device_gone(disk)):
            # The drive was pulled: whatever error the write saw, the honest word is interrupted.
            result.outcome = Outcome.INTERRUPTED
            result.category = None
            result.notes.append(T_("the drive was removed while it was being sanitized"))
        return self._certify_and_deliver(disk, result)

    def _show_machine(self) -> None:
        """The header's machine line and verdict, and the final screen's QR code: redrawn as
        each disk finishes, since a failed disk turns the verdict to attention."""
        summary = machine_summary(self.audit, self.report_id, self._results())
        summary.qr_data = self.report_qr
        self.view.set_machine(summary)

    def _results(self) -> list[str]:
        """The result of every drive certified (or failed) so far in this run."""
        return [str(o.decision.result) for o in list(self.outcomes.values()) if o.decision is not None]

    def _failed_result(self, disk: Disk, outcome: Outcome, error: str) -> SanitizeResult:
        now = _now()
        return SanitizeResult(
            disk=disk, outcome=outcome, category=None, method="none", started_at=now, finished_at=now, notes=[error]
        )

    def _certify_and_deliver(self, disk: Disk, result: SanitizeResult) -> DiskOutcome:
        cfg, view = self.config, self.view
        view.update(disk.path, state=tui.CERTIFYING)
        smart = smart_verdict(self.audit, disk)
        outcome = DiskOutcome(disk, result.outcome)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.spool.root))
        try:
            issued = self.stages.certify(result, self.audit, cfg, self.key, staging)
            # Copy into the spool atomically: the certify stage may write in place.
            outcome.certificate_id = issued.id
            outcome.certificate_path = self.spool.put("certificates", issued.json_path.name, issued.json_path.read_bytes())
            if issued.pdf_path is not None and issued.pdf_path.exists():
                self.spool.put("certificates", issued.pdf_path.name, issued.pdf_path.read_bytes())
        except Exception as exc:  # noqa: BLE001
            log.exception("%s: certificate not issued", disk.path)
            outcome.error = _("certificate not issued: {error}").format(
                error=exc.localized() if isinstance(exc, ArdoiseError) else exc)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

        state = {Outcome.SUCCESS: tui.PASSED, Outcome.INTERRUPTED: tui.INTERRUPTED}.get(result.outcome, tui.FAILED)
        if outcome.error:
            state = tui.FAILED
        outcome.decision = screen_decision(outcome.certificate_path, result, smart, failed=bool(outcome.error))
        category = getattr(result.category, "value", result.category)
        detail = (
            (_("{category} by {method} (resumed)") if result.resumed else _("{category} by {method}")).format(
                category=i18n.current().nist_category(category), method=result.method)
            if result.outcome == Outcome.SUCCESS
            else (outcome.error or failure_reason(result))
        )
        advice = outcome_table.advice(outcome.decision)
        ident = session_identity(disk)
        if outcome.certificate_id and ident:
            self.certified[ident] = outcome.certificate_id
        view.update(disk.path, state=state, detail=detail, certificate_id=outcome.certificate_id, advice=advice)
        self.outcomes[disk.path] = outcome
        self._show_machine()
        log.info("%s: %s (%s) certificate %s", disk.path, state, detail, outcome.certificate_id)
        if self.reporter is not None:
            self.reporter.update(disk.path, state="done" if state == tui.PASSED else "failed", phase="certify")
        self.save_log()
        self.deliverer.sweep()
        return outcome
