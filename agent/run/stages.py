"""The stage functions the unattended run calls, gathered in one record.

Why a record of functions: the pipeline's own logic (threads per disk, one failure not
stopping the others, spooling before delivery, shelf events) is tested with stand-in
stages, and the real stages are wired here in one place. Imports are lazy so that
``ardoise run --help`` works even when a stage's optional tool is missing.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from agent import __version__, commands
from agent.config import Config
from agent.records import Disk, SanitizePlan, SanitizeResult, to_dict

log = logging.getLogger("ardoise.run")


@dataclass
class IssuedCertificate:
    id: str
    json_path: Path
    pdf_path: Path | None = None


@dataclass
class Stages:
    # Every disk the run should show: targets, and protected disks with their reason.
    find_disks: Callable[[Config], list[Disk]]
    # Re-judge one device node (shelf mode: a drive just inserted).
    disk_for_path: Callable[[str, Config], Disk]
    # The last safety check before anything is written; raises ProtectedDeviceError.
    require_target: Callable[[Disk, Config], None]
    audit_machine: Callable[[list[Disk], Config], Any]
    make_plan: Callable[[Disk, Config], SanitizePlan]
    sanitize: Callable[..., SanitizeResult]  # (plan, config, progress=, journal=, cancel=)
    certify: Callable[[SanitizeResult, Any, Config, Any, Path], IssuedCertificate]
    # (audit, config, key) -> (report id, envelope bytes); None skips the signed audit.
    sign_audit: Callable[[Any, Config, Any], tuple[str, bytes]] | None
    load_key: Callable[[Config], Any]
    make_journal: Callable[[Config], Any] | None
    make_watcher: Callable[[Config], Any] | None
    power: Callable[[str], None]


def _find_disks(cfg: Config) -> list[Disk]:
    from agent import discover
    from agent.errors import DeviceError

    if not cfg.targets:
        return discover.list_disks(exclude_serials=cfg.exclude_serials)
    disks = []
    for path in cfg.targets:
        try:
            disks.append(discover.disk_for_path(path, exclude_serials=cfg.exclude_serials))
        except DeviceError as exc:
            # A named target that is not there is shown, not fatal: the others still run.
            disks.append(Disk(path=path, name=os.path.basename(path), target=False, reasons=[str(exc)]))
    return disks


def _disk_for_path(path: str, cfg: Config) -> Disk:
    from agent import discover

    return discover.disk_for_path(path, exclude_serials=cfg.exclude_serials)


def _require_target(disk: Disk, cfg: Config) -> None:
    from agent import discover

    discover.require_targets([disk.path], exclude_serials=cfg.exclude_serials)


def _audit_machine(disks: list[Disk], cfg: Config):
    from agent import audit

    return audit.audit_machine(disks, thresholds=cfg.thresholds or None)


def _make_plan(disk: Disk, cfg: Config) -> SanitizePlan:
    from agent.sanitize import policy

    return policy.make_plan(disk, config=cfg)


def _sanitize(plan: SanitizePlan, cfg: Config, *, progress=None, journal=None, cancel=None) -> SanitizeResult:
    from agent.sanitize import execute

    return execute.sanitize(plan, config=cfg, progress=progress, journal=journal, cancel=cancel)


def _certify(result: SanitizeResult, audit, cfg: Config, key, out_dir: Path) -> IssuedCertificate:
    from agent import certify

    files = certify.issue_certificate(result, audit, cfg, key, out_dir)
    return IssuedCertificate(str(files.id), Path(files.json_path), Path(files.pdf_path) if files.pdf_path else None)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _sign_audit(audit, cfg: Config, key) -> tuple[str, bytes]:
    from agent.certify import envelope

    builder = None
    try:
        from agent.certify import audit_report  # the certify helper's builder, when present

        builder = getattr(audit_report, "build_audit_payload", None)
    except ImportError:
        pass
    if builder is not None:
        payload = builder(audit, cfg, key)
    else:
        payload = audit_payload(audit, cfg, key)
    env = envelope.sign_envelope(payload, envelope.AUDIT_TYPE, key)
    return payload["report_id"], envelope.dump_envelope(env)


def audit_payload(audit, cfg: Config, key) -> dict:
    """The audit report payload of schema audit-report.v1 from an ``AuditReport``."""
    from agent.certify.canonical import without_floats

    data = to_dict(audit) if audit is not None else {}
    disks = []
    for item in data.get("disks") or []:
        disk = item.get("disk") if isinstance(item.get("disk"), dict) else item
        smart = item.get("smart") if isinstance(item.get("smart"), dict) else None
        verdict = item.get("verdict") or (smart or {}).get("verdict")
        disks.append(
            {
                "device": disk.get("path") or disk.get("device"),
                "serial": disk.get("serial"),
                "model": disk.get("model"),
                "verdict": str(verdict) if verdict is not None else None,
                "smart": smart,
            }
        )
    machine = {k: v for k, v in data.items() if k != "disks"} or None
    payload = {
        "schema_version": 1,
        "report_id": str(uuid.uuid4()),
        "issued_at": _now(),
        "lot": cfg.lot,
        "machine": machine,
        "disks": disks,
        "station": {"key_id": key.key_id, "hostname": socket.gethostname()},
        "agent": {"name": "ardoise", "version": __version__},
    }
    return without_floats(payload)


def _load_key(cfg: Config):
    from agent.certify.keys import StationKey

    return StationKey.load_or_create(cfg.state_dir)


def _make_journal(cfg: Config):
    from agent.sanitize.journal import Journal

    return Journal(cfg.state_dir)


def _make_watcher(cfg: Config):
    from agent.discover.watch import DiskWatcher

    return DiskWatcher()


def _power(action: str) -> None:
    # systemd flushes and unmounts the data partition before powering off.
    commands.run(["systemctl", action], timeout=60, check=True)


def default_stages() -> Stages:
    return Stages(
        find_disks=_find_disks,
        disk_for_path=_disk_for_path,
        require_target=_require_target,
        audit_machine=_audit_machine,
        make_plan=_make_plan,
        sanitize=_sanitize,
        certify=_certify,
        sign_audit=_sign_audit,
        load_key=_load_key,
        make_journal=_make_journal,
        make_watcher=_make_watcher,
        power=_power,
    )

