"""``ardoise run``: the unattended pipeline, shelf mode and the end of the run.

``run_unattended`` is what the CLI calls; everything it needs from the outside (stage
functions, the display, the stop signal, sleeping before power-off) can be passed in, so
tests drive the same code the live image runs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable

from agent import i18n, tui
from agent.config import Config
from agent.deliver.client import CollectorClient
from agent.records import Outcome, StorageState
from agent.run.pipeline import DiskOutcome, Session
from agent.run.shelf import Shelf
from agent.run.stages import Stages, default_stages
from agent.i18n import _, ngettext, pgettext

log = logging.getLogger("ardoise.run")

__all__ = ["run_unattended", "RunSummary", "Stages", "default_stages"]


class RunSummary:
    def __init__(self, outcomes: dict[str, DiskOutcome], session: Session):
        self.outcomes = outcomes
        self.session = session

    @property
    def storage_state(self) -> StorageState | None:
        storage = self.session.storage
        return storage.state if storage is not None else None

    @property
    def ok(self) -> bool:
        # Hidden storage fails the machine even when every visible disk passed.
        if self.storage_state == StorageState.STORAGE_UNREACHABLE:
            return False
        return all(o.outcome == Outcome.SUCCESS and not o.error for o in self.outcomes.values())

    @property
    def exit_code(self) -> int:
        # 5 is SanitizeError's code: some disk was not certified successful.
        return 0 if self.ok else 5


def run_unattended(
    config: Config,
    *,
    watch: bool = False,
    stages: Stages | None = None,
    view: tui.RunView | None = None,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
    client: CollectorClient | None = None,
    on_ready: Callable[[Session], None] | None = None,
    wait_for_key: Callable[[], None] | None = None,
) -> RunSummary:
    stages = stages or default_stages()
    view = view or tui.RunView()
    stop = stop or threading.Event()
    watch = watch or config.shelf
    session = Session.open(config, stages, view, client=client)
    watcher = None
    try:
        if config.collector is None:
            log.info("no collector configured: certificates stay in %s", session.spool.root)
        session.deliverer.announce()
        # What earlier boots could not send goes first (in the background).
        session.deliverer.sweep_soon()
        # In shelf mode the watcher listens before the first scan: a drive slid in while
        # the station scans and audits is queued, not missed until it is re-inserted.
        watcher = stages.make_watcher(config) if watch and stages.make_watcher else None
        if watcher is not None:
            watcher.start()
        view.say(_("looking for disks"))
        disks = session.check_storage(stages.find_disks(config), expect_disks=not watch)
        for disk in disks:
            if disk.target:
                session.show_disk(disk)
            else:
                session.show_disk(disk, tui.PROTECTED, i18n.localize(disk.reasons[0]) if disk.reasons else _("protected"))
        targets = [d for d in disks if d.target]
        if stages.warm_up is not None:
            threading.Thread(target=stages.warm_up, daemon=True, name="ardoise-warm-up").start()
        session.run_audit(disks)
        shelf = Shelf(session)
        for disk in targets:
            shelf.mark_present(disk)
            shelf.insert(disk)
        # A stop (SIGTERM at shutdown, Ctrl-C) interrupts the running wipes rather than
        # waiting hours for them; the shelf loop also ends on it.
        threading.Thread(target=lambda: stop.wait() and session.cancel_all(), daemon=True, name="ardoise-stop").start()
        if on_ready is not None:
            on_ready(session)
        if watch:
            view.say(_("shelf mode: insert drives; each is sanitized and certified as it finishes"))
            if watcher is None:
                log.warning("no disk watcher available: shelf mode cannot see new drives")
                stop.wait()
            else:
                shelf.loop(watcher, stop)
        elif not targets:
            view.say(_("no disk to sanitize") if session.storage is None else
                     _("storage not reachable") if session.storage.state == StorageState.STORAGE_UNREACHABLE
                     else _("no disk found"))
        else:
            view.say(ngettext("sanitizing {count} disk", "sanitizing {count} disks", len(targets)).format(
                count=len(targets)))
        session.join()
        session.deliverer.sweep(final=True)
        return RunSummary(dict(session.outcomes), session)
    finally:
        if watcher is not None:
            watcher.stop()
        session.close()
        if watch or stop.is_set():
            view.finish(_("Stopped. Every certificate is on the stick."))
        else:
            finish(config, session, stages, sleep, wait_for_key, stop)


# Between two delivery attempts while a netbooted machine holds undelivered certificates.
HOLD_RETRY_S = 15.0


def hold_until_delivered(session: Session, sleep, stop: threading.Event) -> bool:
    """Network boot: the certificates exist only in this machine's RAM. Stay on, say NOT
    DELIVERED in red and retry, until the collector has acknowledged every one (a file it
    refused for good keeps the machine on too: someone must look at it). False if stopped
    (SIGTERM) with files still undelivered."""
    view = session.view
    retry_s = float(os.environ.get("ARDOISE_HOLD_RETRY_S", HOLD_RETRY_S))  # tests shorten it
    while not stop.is_set():
        counts = session.spool.counts()
        undelivered = counts.spooled - counts.delivered
        if undelivered == 0:
            view.alert(None)
            return True
        view.alert("NOT DELIVERED: {n} file(s) exist only in this machine's memory. Do not switch it off: "
                   "retrying every {s:g} s ({status})".format(n=undelivered, s=retry_s,
                                                           status=session.deliverer.status))
        log.warning("%d file(s) not delivered; the machine stays on and retries", undelivered)
        sleep(retry_s)
        session.deliverer.sweep(final=True)
    return False


def finish(config: Config, session: Session, stages: Stages, sleep, wait_for_key,
           stop: threading.Event | None = None) -> None:
    """Show the final screen, then power off, reboot or wait, as the config says."""
    view = session.view
    held = config.hold_until_delivered and config.collector is not None
    if held:
        view.finish(None)
        if not hold_until_delivered(session, sleep, stop or threading.Event()):
            return  # stopped from outside: never power off on our own with files in RAM
    action = config.on_finish
    if action in ("poweroff", "reboot"):
        note = (_("Powering off in {seconds} s") if action == "poweroff" else _("Rebooting in {seconds} s")).format(
            seconds=config.finish_display_seconds)
        if session.config.collector is None or session.spool.counts().pending:
            note += " — " + _("certificates are on the stick (ARDOISE partition)")
        view.finish(note)
        sleep(config.finish_display_seconds)
        try:
            stages.power(action)
        except Exception as exc:  # noqa: BLE001
            log.error("cannot %s: %s", action, exc)
    else:
        # Two whole sentences, not one with a place word: a translator needs the sentence.
        note = (_("Done. Remove the drives marked {failed}; the collector holds every certificate.") if held else
                _("Done. Remove the drives marked {failed}; the stick holds every certificate.")).format(
            failed=pgettext("verdict", "FAILED"))
        if wait_for_key is not None:
            # Enter ends the run: the screen closes and the machine stays on.
            note = "{done} {key}".format(done=note, key=_("Press Enter to close this screen."))
        view.finish(note)
        if wait_for_key is not None:
            wait_for_key()
