"""Audit: what the machine is and how healthy its disks are.

- ``audit_machine(disks, thresholds=None, keep_raw=False) -> AuditReport``
- ``smart.read_smart(disk) -> SmartSummary`` (its ``health`` is the disk verdict)
- ``machine.read_machine() -> MachineInfo``
- ``verdict.Thresholds`` (documented in docs/audit.md)
"""

from __future__ import annotations

import datetime
from typing import Mapping

from agent import __version__
from agent.audit import smart
from agent.audit.machine import read_machine
from agent.audit.verdict import Thresholds, as_thresholds, machine_verdict
from agent.records import AuditReport, Disk, DiskAudit, MachineInfo

__all__ = ["audit_machine", "audit_disks", "Thresholds"]


def audit_disks(
    disks: list[Disk], *, thresholds: Thresholds | Mapping | None = None, keep_raw: bool = False
) -> list[DiskAudit]:
    t = as_thresholds(thresholds)
    audits = []
    for disk in disks:
        summary = smart.read_smart(disk, thresholds=t, keep_raw=keep_raw)
        if disk.usb_bridge is not None and summary.argv and summary.exit_status is not None:
            # smartctl answered through the bridge: ATA/NVMe pass-through works (or does not),
            # which decides whether firmware sanitize commands can reach the drive.
            disk.usb_bridge.passthrough = not summary.query_failed and summary.protocol in ("ATA", "NVMe")
        audits.append(DiskAudit(disk=disk, smart=summary, health=summary.health))
    return audits


def audit_machine(
    disks: list[Disk],
    *,
    thresholds: Thresholds | Mapping | None = None,
    keep_raw: bool = False,
    machine: MachineInfo | None = None,
) -> AuditReport:
    """The full report: machine, each disk's SMART summary and verdict, the machine verdict.

    ``thresholds`` is ``config.thresholds`` (a dict) or a ``Thresholds``; an unknown key is a
    ``ConfigError``. ``keep_raw`` keeps smartctl's full JSON in each ``smart.raw``.
    """
    t = as_thresholds(thresholds)
    machine = machine if machine is not None else read_machine()
    audits = audit_disks(disks, thresholds=t, keep_raw=keep_raw)
    verdict, reasons = machine_verdict(machine, audits, t)
    return AuditReport(
        machine=machine,
        disks=audits,
        verdict=verdict,
        reasons=reasons,
        thresholds=t.to_dict(),
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        agent_version=__version__,
    )
