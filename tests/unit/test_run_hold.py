"""The end of a netbooted run: no power-off while a file is undelivered."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from agent import tui
from agent.config import CollectorConfig, Config
from agent.deliver.spool import SpoolCounts
from agent.run import finish


class FakeSession:
    def __init__(self, config: Config, undelivered_sweeps: int):
        self.config = config
        self.view = tui.RunView()
        self.left = undelivered_sweeps
        self.sweeps = 0
        self.spool = SimpleNamespace(counts=lambda *a: SpoolCounts(spooled=2, delivered=0 if self.left else 2))
        self.deliverer = SimpleNamespace(status="http://c: unreachable", sweep=self._sweep)

    def _sweep(self, final=False):
        self.sweeps += 1
        self.left -= 1


def config(**kw) -> Config:
    return Config(collector=CollectorConfig(url="http://c"), on_finish="poweroff", finish_display_seconds=0, **kw)


def test_powers_off_only_once_everything_is_delivered():
    powered, alerts = [], []
    s = FakeSession(config(hold_until_delivered=True), undelivered_sweeps=3)
    s.view.listen(lambda ev, v, info: ev == "alert" and alerts.append(v.alert_note))
    stages = SimpleNamespace(power=lambda action: powered.append((action, s.left)))
    finish(s.config, s, stages, lambda secs: None, None, threading.Event())
    assert s.sweeps == 3 and powered == [("poweroff", 0)]
    assert sum(1 for a in alerts if a and a.startswith("NOT DELIVERED: 2 file(s)")) == 3 and alerts[-1] is None


def test_a_stop_while_holding_never_powers_off():
    stop = threading.Event()
    powered = []
    s = FakeSession(config(hold_until_delivered=True), undelivered_sweeps=10**6)
    stages = SimpleNamespace(power=lambda action: powered.append(action))
    finish(s.config, s, stages, lambda secs: s.sweeps >= 2 and stop.set(), None, stop)
    assert powered == [] and s.view.alert_note.startswith("NOT DELIVERED")


def test_without_the_hold_a_stick_run_powers_off_at_once():
    powered = []
    s = FakeSession(config(), undelivered_sweeps=5)
    finish(s.config, s, SimpleNamespace(power=powered.append), lambda secs: None, None, threading.Event())
    assert powered == ["poweroff"] and s.sweeps == 0
