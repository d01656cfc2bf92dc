"""The stage functions the unattended run calls, gathered in one record.

Why a record of functions: the pipeline's own logic (threads per disk, one failure not
stopping the others, spooling before delivery, shelf events) is tested with stand-in
stages, and the real stages are wired here in one place. Imports are lazy so that
``ardoise run --help`` works even when a stage's optional tool is missing.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from agent import commands
from agent.config import Config
from agent.records import Disk, SanitizePlan, SanitizeResult

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
    # Whether a drive is no longer there (decides "interrupted" over "failed").
    device_gone: Callable[[Disk], bool]
    # Run in the background while the first wipes go: loads what certifying needs.
    warm_up: Callable[[], None] | None = None
    # (disks, config, expect_disks) -> StorageReport: controllers that hide disks, or no
    # disk at all. None skips the check (stand-in stages of tests that are not about it).
    check_storage: Callable[[list[Disk], Config, bool], Any] | None = None


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


def _sign_audit(audit, cfg: Config, key) -> tuple[str, bytes]:
    from agent.certify.audit_report import build_audit_payload
    from agent.certify.envelope import AUDIT_TYPE, dump_envelope, sign_envelope

    payload = build_audit_payload(audit, cfg, key)
    return payload["report_id"], dump_envelope(sign_envelope(payload, AUDIT_TYPE, key))


def _load_key(cfg: Config):
    from agent.certify.keys import StationKey

    return StationKey.load_or_create(cfg.state_dir)


def _make_journal(cfg: Config):
    from agent.sanitize.journal import Journal

    return Journal(cfg.state_dir)


def _make_watcher(cfg: Config):
    from agent.discover.watch import DiskWatcher

    return DiskWatcher(exclude_serials=cfg.exclude_serials)


def _power(action: str) -> None:
    # systemd flushes and unmounts the data partition before powering off.
    commands.run(["systemctl", action], timeout=60, check=True)


def _device_gone(disk: Disk) -> bool:
    """The drive is no longer there: its node vanished or its capacity dropped to zero
    (a card pulled from a reader, a loop device emptied). The udev event may come after
    the failed write, so the pipeline looks for itself."""
    if not os.path.exists(disk.path):
        return True
    try:
        return int(Path(f"/sys/class/block/{disk.name}/size").read_text()) == 0
    except (OSError, ValueError):
        return False


def _check_storage(disks: list[Disk], cfg: Config, expect_disks: bool):
    from agent import discover
    from agent.discover.controllers import check_storage

    # Disks named in the config are the targets; the others beneath the controllers are
    # known too (listed, protected or not), so they are not taken for late arrivals.
    listed = discover.list_disks(exclude_serials=cfg.exclude_serials) if cfg.targets else None
    return check_storage(disks, expect_disks=expect_disks, settle_s=15.0, listed=listed)


def _warm_up() -> None:
    # The PDF stack (fpdf2, its font and image modules, segno) is the slowest import of the
    # run: half a second here, many seconds on an old laptop reading a USB 2 stick. Loaded
    # while the disks are written, the first certificate does not wait for it.
    try:
        import agent.certify.pdf  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - certify reports the real error when it runs
        log.debug("warm-up import failed: %s", exc)


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
        device_gone=_device_gone,
        warm_up=_warm_up,
        check_storage=_check_storage,
    )

