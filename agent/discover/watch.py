"""Hot-plug watcher: whole disks appearing, changing and disappearing, for the shelf mode.

pyudev's monitor is filtered with ``filter_by(subsystem="block", device_type="disk")``:
libudev compiles that into a socket filter, so partitions and other subsystems are dropped
in the kernel before they wake us. Events are put on a ``queue.Queue`` as ``DiskEvent``s.

Source of events: udevd's (``udev``) when it runs, because its events come after the rules
ran and carry ID_* properties; the kernel's own uevents otherwise (containers, CI VMs),
where libudev applies the same filter in user space after the socket filter lets kernel
messages through.
"""

from __future__ import annotations

import logging
import os
import queue
from dataclasses import dataclass
from typing import Iterable

from agent.records import Disk

log = logging.getLogger("ardoise.discover.watch")

ACTIONS = ("add", "remove", "change")


@dataclass
class DiskEvent:
    action: str  # add | remove | change
    devnode: str
    disk: Disk | None  # None on remove (the device is gone) or if it vanished before we looked


def udevd_running() -> bool:
    return os.path.exists("/run/udev/control")


class DiskWatcher:
    """``start()`` begins watching in a background thread; ``stop()`` ends it. Events land on
    ``self.events``. A loop device being attached shows up as ``change`` (the loop device
    node exists before a backing file is set), a USB drive plugged in as ``add``."""

    def __init__(
        self,
        events: queue.Queue | None = None,
        *,
        source: str | None = None,
        exclude_serials: Iterable[str] = (),
    ) -> None:
        self.events: queue.Queue[DiskEvent] = events if events is not None else queue.Queue()
        self.source = source or ("udev" if udevd_running() else "kernel")
        self.exclude_serials = list(exclude_serials)
        self._observer = None

    def start(self) -> "DiskWatcher":
        import pyudev

        if self._observer is not None:
            return self
        context = pyudev.Context()
        monitor = pyudev.Monitor.from_netlink(context, source=self.source)
        monitor.filter_by(subsystem="block", device_type="disk")
        self._observer = pyudev.MonitorObserver(monitor, callback=self._on_event, name="ardoise-disk-watcher")
        self._observer.start()
        return self

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()  # writes to the observer's wake-up pipe, then joins
            self._observer = None

    def __enter__(self) -> "DiskWatcher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _on_event(self, device) -> None:
        action = device.action
        if action not in ACTIONS:
            return  # bind/unbind/move/online/offline: not a disk appearing or going
        devnode = device.device_node or f"/dev/{device.sys_name}"
        disk = None
        if action != "remove":
            from agent import discover

            try:
                disk = discover.disk_for_name(device.sys_name, exclude_serials=self.exclude_serials)
            except Exception as exc:  # noqa: BLE001 - a device that vanished mid-look must not kill the thread
                log.info("could not describe %s after %s: %s", devnode, action, exc)
        self.events.put(DiskEvent(action=action, devnode=devnode, disk=disk))
