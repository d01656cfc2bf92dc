"""Send what the spool holds: each envelope once, marked delivered only on 201/200."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from agent.deliver.client import CollectorClient, Unauthorized, Unreachable
from agent.deliver.spool import Spool, SpoolEntry
from agent.i18n import _

log = logging.getLogger("ardoise.deliver")


@dataclass
class DeliveryReport:
    delivered: list[str] = field(default_factory=list)  # 201: new at the collector
    duplicates: list[str] = field(default_factory=list)  # 200: it had it already
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    pending: list[str] = field(default_factory=list)  # not sent: collector unreachable
    error: str | None = None  # why the run stopped early
    reason: str | None = None  # the same in a few words, for the screen ("connection refused")

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.pending and self.error is None


def deliver_entry(spool: Spool, client: CollectorClient, entry: SpoolEntry, report: DeliveryReport) -> None:
    """Upload one file; transport errors propagate (the caller stops and keeps the rest)."""
    path = "/api/v1/audits" if entry.kind == "audits" else "/api/v1/certificates"
    answer = client.upload(entry.read(), path=path)
    if answer.delivered:
        spool.mark_delivered(entry, {"http": answer.http_status, **(answer.body or {})})
        (report.delivered if answer.http_status == 201 else report.duplicates).append(entry.name)
        log.info("delivered %s (%s)", entry.name, answer.status or answer.http_status)
    elif answer.permanent:
        reason = answer.reason or f"HTTP {answer.http_status}"
        spool.mark_rejected(entry, {"http": answer.http_status, **(answer.body or {}), "reason": reason})
        report.rejected.append((entry.name, reason))
        log.warning("collector rejected %s: %s", entry.name, reason)
    else:
        # An answer the contract does not list (404 from a wrong URL, 405...): keep it.
        report.pending.append(entry.name)
        report.error = f"collector answered HTTP {answer.http_status} for {entry.name}"
        report.reason = _("answered HTTP {status}").format(status=answer.http_status)


def deliver_pending(
    spool: Spool, client: CollectorClient, *, include_rejected: bool = False
) -> DeliveryReport:
    """Upload every pending file, audits first. Stops at the first unreachable collector."""
    report = DeliveryReport()
    entries = spool.pending(include_rejected=include_rejected)
    for i, entry in enumerate(entries):
        try:
            deliver_entry(spool, client, entry, report)
        except (Unreachable, Unauthorized) as exc:
            report.error = str(exc)
            short = exc.detail.get("reason")
            report.reason = (_("unreachable ({reason})").format(reason=short) if isinstance(exc, Unreachable) and short
                             else _("refused the station") if isinstance(exc, Unauthorized) else _("unreachable"))
            report.pending.extend(e.name for e in entries[i:])
            break
    return report


class Deliverer:
    """Serializes deliveries of one run and keeps the TUI footer up to date.

    One lock: a disk that finishes while another's certificate is being sent waits, so no
    file is ever posted twice at once. After an unreachable collector, sweeps pause for
    ``quiet_s`` (each would wait through the whole back-off again); ``final`` sweeps don't.
    """

    def __init__(self, spool: Spool, client: CollectorClient | None, *, on_change=None, quiet_s: float = 30.0, clock=None):
        self.spool = spool
        self.client = client
        self.on_change = on_change or (lambda status, counts: None)
        self.quiet_s = quiet_s
        self.clock = clock or time.monotonic
        self._lock = threading.Lock()
        self._failed_at: float | None = None
        # Nothing is said to be connected before the collector has answered.
        self.status = _("none (certificates stay on the stick)") if client is None else _("connecting to {url}").format(
            url=client.cfg.url)
        self.last_report: DeliveryReport | None = None

    def announce(self) -> None:
        """Say the current status now (at start: "connecting to ..." before any sweep)."""
        self._announce()

    def _announce(self) -> None:
        # The technician counts certificates (one per disk); audit reports travel along.
        self.on_change(self.status, self.spool.counts(("certificates",)))

    def sweep_soon(self) -> threading.Thread:
        """Sweep in the background: an offline collector must not delay any wipe."""
        t = threading.Thread(target=self.sweep, name="ardoise-delivery", daemon=True)
        t.start()
        return t

    def sweep(self, *, final: bool = False) -> DeliveryReport | None:
        """Send everything pending; None when there is no collector or sweeps are paused."""
        if self.client is None:
            self._announce()
            return None
        with self._lock:
            if not final and self._failed_at is not None and self.clock() - self._failed_at < self.quiet_s:
                self._announce()
                return None
            report = deliver_pending(self.spool, self.client)
            self.last_report = report
            if report.error:
                self._failed_at = self.clock()
                self.status = "{url}: {reason}".format(url=self.client.cfg.url, reason=report.reason or report.error)
                log.info("%s", report.error)  # the whole story, for the run log
            elif report.delivered or report.duplicates or report.rejected:
                self._failed_at = None
                self.status = _("{url}: connected").format(url=self.client.cfg.url)
            # else nothing was sent: the collector was not contacted, the status stands.
            if report.rejected:
                self.status += "; " + _("{count} rejected ({reason})").format(count=len(report.rejected),
                                                                              reason=report.rejected[-1][1])
        self._announce()
        return report
