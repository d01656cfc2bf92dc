"""Shelf mode: a wiping station where drives come and go while ``ardoise run --watch`` runs.

Each inserted drive starts its own pipeline; a pulled drive's wipe is cancelled and its
certificate says ``interrupted``; a drive certified earlier in this session is not wiped
again on re-insertion unless ``rewipe_certified``.

Which udev events mean "a drive arrived": ``add`` for real hot-plug (SATA/SAS bays, USB,
NVMe behind a hot-plug port); ``change`` that turns a device from no-media to media for
card readers and loop devices (attaching a backing file raises ``change``, not ``add``).
A ``change`` on a device that already has media is ignored while it is the same drive: the
kernel sends one when a wipe overwrites the partition table, and it must not start a second
wipe. If the drive behind the node changed identity (a card swapped faster than we saw the
empty slot), the old one is gone and the new one is an insertion.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Any

from agent import i18n, tui
from agent.errors import ArdoiseError
from agent.i18n import _
from agent.run.pipeline import Session, session_identity

log = logging.getLogger("ardoise.run")


def _next_event(watcher: Any, timeout: float):
    """The watcher's next event or None; accepts a ``get(timeout=)`` method or a queue."""
    try:
        if hasattr(watcher, "get"):
            return watcher.get(timeout=timeout)
        q = getattr(watcher, "events", None) or getattr(watcher, "queue")
        return q.get(timeout=timeout)
    except queue.Empty:
        return None


class Shelf:
    def __init__(self, session: Session):
        self.session = session
        self.cfg = session.config
        # Node -> identity of the drive in it (serial/WWN, or a loop device's backing file).
        self.present: dict[str, str | None] = {}
        # With explicit targets (tests, demos) only those device nodes are ever considered,
        # so a loop device of somebody else on the host can never be picked up.
        self.allowed = {os.path.realpath(t) for t in self.cfg.targets} if self.cfg.targets else None

    def mark_present(self, disk) -> None:
        self.present[os.path.realpath(disk.path)] = session_identity(disk)

    def handle(self, event: Any) -> None:
        action = getattr(event, "action", None)
        devnode = getattr(event, "devnode", None) or getattr(getattr(event, "disk", None), "path", None)
        if not devnode:
            return
        node = os.path.realpath(devnode)
        if self.allowed is not None and node not in self.allowed:
            return
        if action == "remove":
            self._gone(devnode)
            return
        disk = self._judge(devnode, getattr(event, "disk", None))
        has_media = disk is not None and disk.size_bytes > 0
        if not has_media:
            self._gone(devnode)
            return
        now = session_identity(disk)
        if node in self.present:
            before = self.present[node]
            if before is None or now is None or before == now:
                # Media was already there: a ``change`` is a partition-table rescan, and an
                # ``add`` was queued while the first scan found the drive anyway.
                return
            self._gone(devnode)
        self.present[node] = now
        self.insert(disk)

    def _judge(self, devnode: str, disk):
        if self.allowed is None and disk is not None:
            return disk
        try:
            return self.session.stages.disk_for_path(devnode, self.cfg)
        except ArdoiseError as exc:
            log.info("%s: %s", devnode, exc)
            return None

    def _gone(self, devnode: str) -> None:
        node = os.path.realpath(devnode)
        if node in self.present:
            # On the status line, so the technician sees the bay was noticed as empty.
            self.session.view.say(_("{device}: removed").format(device=devnode))
        self.present.pop(node, None)
        self.session.remove_disk(devnode)

    def insert(self, disk) -> None:
        s = self.session
        if not disk.target:
            s.show_disk(disk, tui.PROTECTED, i18n.localize(disk.reasons[0]) if disk.reasons else _("protected"))
            return
        cert = s.already_certified(disk)
        if cert and not self.cfg.rewipe_certified:
            s.show_disk(disk, tui.SKIPPED, _("already certified in this session ({id})").format(id=cert))
            log.info("%s (%s) already certified as %s: not wiped again", disk.path, disk.serial, cert)
            return
        if s.threads.get(disk.path) is not None and s.threads[disk.path].is_alive():
            return
        row = s.view.rows.get(disk.path)
        if row is None or row.state != tui.WAITING:
            s.show_disk(disk)
        s.start_disk(disk)

    def loop(self, watcher: Any, stop: threading.Event, poll: float = 0.5) -> None:
        """Handle events until ``stop`` is set (SIGTERM, or a test)."""
        while not stop.is_set():
            event = _next_event(watcher, poll)
            if event is not None:
                try:
                    self.handle(event)
                except Exception:  # noqa: BLE001 - one odd event must not end the shelf
                    log.exception("cannot handle disk event %r", event)
