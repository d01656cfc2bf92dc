"""The unattended pipeline with stand-in stages: threads per disk, failure isolation,
spool before delivery, shelf events, finish actions. The real stages are exercised by
test_run_loop_e2e.py on loop devices."""

from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent import tui
from agent.certify.keys import StationKey
from agent.config import Config
from agent.errors import DeviceGone, MediaError, ProtectedDeviceError
from agent.records import (
    AuditReport, DiskAudit, DiskHealth, DiskVerdict, DmiInfo, MachineInfo, MachineVerdict,
)
from agent.records import Category, Disk, Media, Outcome, PlanStep, SanitizePlan, SanitizeResult
from agent.run import run_unattended
from agent.run.stages import IssuedCertificate, Stages


@dataclass
class FakeProgress:
    device: str
    phase: str
    pass_index: int
    pass_count: int
    bytes_done: int
    bytes_total: int
    throughput_bps: float
    eta_s: float | None


def disk(n: int, *, target=True, serial=None, reasons=()) -> Disk:
    return Disk(
        path=f"/dev/fake{n}", name=f"fake{n}", media=Media.HDD, model=f"Model {n}",
        serial=serial or f"SER{n}", size_bytes=1000, target=target, reasons=list(reasons),
    )


class FakeStages:
    """Stage stand-ins; ``behaviour`` maps a device to 'ok', 'fail', 'raise', 'gone' or 'block'."""

    def __init__(self, disks, behaviour=None):
        self.disks = disks
        self.behaviour = behaviour or {}
        self.sanitized: list[str] = []
        self.powered: list[str] = []
        self.release = threading.Event()
        self.started: dict[str, threading.Event] = {}
        self.audit_ids: list[str | None] = []

    def sanitize(self, plan, cfg, *, progress=None, journal=None, cancel=None):
        d = plan.disk
        self.sanitized.append(d.path)
        self.started.setdefault(d.path, threading.Event()).set()
        how = self.behaviour.get(d.path, "ok")
        progress(FakeProgress(d.path, "write", 0, 1, 500, 1000, 1e6, 1.0))
        if how == "raise":
            raise MediaError(f"{d.path}: I/O error at LBA 7")
        if how == "gone":
            raise DeviceGone(f"{d.path} disappeared")
        if how == "block":
            while not cancel.is_set() and not self.release.is_set():
                time.sleep(0.01)
            if cancel.is_set():
                # As the real engine does when cancelled.
                return SanitizeResult(d, Outcome.INTERRUPTED, None, "overwrite:zero", notes=["cancelled"])
        outcome = Outcome.FAILED if how == "fail" else Outcome.SUCCESS
        return SanitizeResult(d, outcome, Category.CLEAR if outcome == Outcome.SUCCESS else None, "overwrite:zero")

    def certify(self, result, audit, cfg, key, out_dir: Path):
        self.audit_ids.append(getattr(audit, "report_id", None))
        cid = f"cert-{result.disk.name}-{len(self.sanitized)}"
        p = out_dir / f"{cid}.json"
        p.write_text(json.dumps({"id": cid, "outcome": result.outcome.value, "device": result.disk.path}))
        return IssuedCertificate(cid, p, None)

    def stages(self, watcher=None) -> Stages:
        by_path = {d.path: d for d in self.disks}

        def require(d, cfg):
            if not d.target:
                raise ProtectedDeviceError(f"{d.path} is protected")

        return Stages(
            find_disks=lambda cfg: list(self.disks),
            disk_for_path=lambda path, cfg: by_path[path],
            require_target=require,
            audit_machine=lambda disks, cfg: AuditReport(
                machine=MachineInfo(dmi=DmiInfo(system_vendor="LENOVO", system_product="T480", system_serial="PF1"), batteries=[]),
                disks=[DiskAudit(d, None, DiskHealth(DiskVerdict.GOOD)) for d in disks],
                verdict=MachineVerdict.REUSE,
            ),
            make_plan=lambda d, cfg: SanitizePlan(d, [PlanStep("overwrite:zero", Category.CLEAR, "Overwrite", "test")]),
            sanitize=self.sanitize,
            certify=self.certify,
            sign_audit=lambda audit, cfg, key: ("5f0d7a4e-0000-4000-8000-000000000001", b'{"audit": 1}'),
            load_key=lambda cfg: StationKey.generate(),
            make_journal=None,
            make_watcher=(lambda cfg: watcher) if watcher is not None else None,
            power=self.powered.append,
            device_gone=lambda d: False,
        )


@pytest.fixture
def cfg(tmp_path) -> Config:
    c = Config.default()
    c.state_dir = tmp_path / "state"
    c.finish_display_seconds = 0
    return c


def test_every_target_is_certified_and_protected_disks_are_not_touched(cfg):
    fake = FakeStages([disk(1), disk(2), disk(3, target=False, reasons=["mounted at /"])])
    view = tui.RunView()
    summary = run_unattended(cfg, stages=fake.stages(), view=view)
    assert sorted(fake.sanitized) == ["/dev/fake1", "/dev/fake2"]
    assert summary.ok and summary.exit_code == 0
    spool = cfg.state_dir / "spool"
    certs = [json.loads(p.read_text()) for p in (spool / "certificates").glob("*.json")]
    assert sorted(c["device"] for c in certs) == ["/dev/fake1", "/dev/fake2"]
    assert (spool / "audits" / "5f0d7a4e-0000-4000-8000-000000000001.json").exists()
    (run_log,) = (spool / "logs").glob("run-*.log")
    assert "plan ['overwrite:zero']" in run_log.read_text()  # INFO lines are kept on the stick
    assert view.rows["/dev/fake3"].state == tui.PROTECTED and "mounted" in view.rows["/dev/fake3"].detail
    assert view.rows["/dev/fake1"].state == tui.PASSED
    assert view.machine.vendor == "LENOVO" and view.machine.verdict == "reuse"
    assert view.rows["/dev/fake1"].smart == "good"
    assert view.finished


def test_one_failing_disk_does_not_stop_the_others_and_still_gets_a_certificate(cfg):
    fake = FakeStages([disk(1), disk(2), disk(3)], {"/dev/fake1": "raise", "/dev/fake2": "fail"})
    view = tui.RunView()
    summary = run_unattended(cfg, stages=fake.stages(), view=view)
    assert sorted(fake.sanitized) == ["/dev/fake1", "/dev/fake2", "/dev/fake3"]
    assert summary.exit_code == 5
    states = {d: r.state for d, r in view.rows.items()}
    assert states == {"/dev/fake1": tui.FAILED, "/dev/fake2": tui.FAILED, "/dev/fake3": tui.PASSED}
    certs = [json.loads(p.read_text()) for p in (cfg.state_dir / "spool" / "certificates").glob("*.json")]
    assert sorted(c["outcome"] for c in certs) == ["failed", "failed", "success"]
    assert "I/O error" in view.rows["/dev/fake1"].detail
    assert "wipe it again" in view.rows["/dev/fake1"].advice


def test_a_failed_disk_turns_the_machine_verdict_to_attention(cfg):
    # Before: the header kept "Verdict reuse" (the audit's) beside a FAILED disk.
    fake = FakeStages([disk(1), disk(2)], {"/dev/fake2": "fail"})
    view = tui.RunView()
    lines = io.StringIO()
    tui.LogDisplay(view, stream=lines)
    run_unattended(cfg, stages=fake.stages(), view=view)
    assert view.machine.verdict.startswith("attention")
    assert "verdict attention" in lines.getvalue()


def test_every_certificate_of_the_run_names_the_signed_audit_report(cfg):
    # The collector links a machine report to its drives by this id, not by serial.
    fake = FakeStages([disk(1), disk(2)])
    run_unattended(cfg, stages=fake.stages(), view=tui.RunView())
    assert fake.audit_ids == ["5f0d7a4e-0000-4000-8000-000000000001"] * 2


def test_machine_verdict_stays_the_audits_when_every_disk_passed(cfg):
    view = tui.RunView()
    run_unattended(cfg, stages=FakeStages([disk(1), disk(2)]).stages(), view=view)
    assert view.machine.verdict == "reuse"


def test_device_gone_during_sanitize_is_certified_interrupted(cfg):
    fake = FakeStages([disk(1)], {"/dev/fake1": "gone"})
    view = tui.RunView()
    run_unattended(cfg, stages=fake.stages(), view=view)
    cert = json.loads(next((cfg.state_dir / "spool" / "certificates").glob("*.json")).read_text())
    assert cert["outcome"] == "interrupted"
    assert view.rows["/dev/fake1"].state == tui.INTERRUPTED


def test_poweroff_waits_for_the_final_screen_first(cfg):
    cfg.on_finish = "poweroff"
    cfg.finish_display_seconds = 42
    fake = FakeStages([disk(1)])
    view = tui.RunView()
    order = []
    view.listen(lambda ev, v, info: order.append("finish") if ev == "finish" else None)
    run_unattended(cfg, stages=fake.stages(), view=view, sleep=lambda s: order.append(f"sleep {s}"))
    assert order == ["finish", "sleep 42"]
    assert fake.powered == ["poweroff"]
    assert "Powering off in 42 s" in view.finish_note


def test_wait_does_not_power_off(cfg):
    fake = FakeStages([disk(1)])
    view = tui.RunView()
    run_unattended(cfg, stages=fake.stages(), view=view)
    assert fake.powered == []
    assert "Press Enter" not in view.finish_note  # no terminal, nothing waits for a key


def test_wait_on_a_terminal_says_to_press_enter_before_waiting(cfg):
    cfg.on_finish = "wait"
    view = tui.RunView()
    seen = []
    run_unattended(cfg, stages=FakeStages([disk(1)]).stages(), view=view, wait_for_key=lambda: seen.append(view.finish_note))
    assert seen and "Press Enter to close this screen." in seen[0]


# --------------------------------------------------------------------------- shelf


@dataclass
class Event:
    action: str
    disk: Disk | None
    devnode: str


class PipeWatcher:
    """Stands in for DiskWatcher: a real queue fed by the test."""

    def __init__(self):
        import queue

        self.events = queue.Queue()
        self.started = self.stopped = False

    def start(self):
        self.started = True

    def stop(self):
        self.stopped = True


def state(view, device):
    row = view.rows.get(device)
    return row.state if row else None


def wait_for(pred, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    raise AssertionError("condition not reached")


def test_shelf_wipes_inserted_drives_interrupts_removed_ones_and_skips_recertification(cfg):
    d1, d2 = disk(1), disk(2)
    fake = FakeStages([d1, d2], {"/dev/fake2": "block"})
    watcher = PipeWatcher()
    stages = fake.stages(watcher)
    stages.find_disks = lambda c: []  # an empty shelf at start
    view = tui.RunView()
    stop = threading.Event()
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("s", run_unattended(cfg, watch=True, stages=stages, view=view, stop=stop)))
    t.start()
    wait_for(lambda: watcher.started)
    certs = cfg.state_dir / "spool" / "certificates"

    watcher.events.put(Event("add", d1, d1.path))
    # Certificate written as soon as this disk finishes, not at the end of the session.
    wait_for(lambda: state(view, d1.path) == tui.PASSED)
    assert len(list(certs.glob("*.json"))) == 1

    watcher.events.put(Event("add", d2, d2.path))
    wait_for(lambda: fake.started.get(d2.path) is not None and fake.started[d2.path].is_set())
    watcher.events.put(Event("remove", None, d2.path))
    wait_for(lambda: state(view, d2.path) == tui.INTERRUPTED)

    # Re-inserting the certified drive (the kernel says remove, then add) does not wipe it again.
    watcher.events.put(Event("remove", None, d1.path))
    watcher.events.put(Event("add", d1, d1.path))
    wait_for(lambda: state(view, d1.path) == tui.SKIPPED)
    # A change event on a drive already present is a rescan, not an insertion.
    watcher.events.put(Event("change", d1, d1.path))

    stop.set()
    t.join(timeout=60)
    assert watcher.stopped
    assert fake.sanitized == [d1.path, d2.path]
    outcomes = sorted(json.loads(p.read_text())["outcome"] for p in certs.glob("*.json"))
    assert outcomes == ["interrupted", "success"]
    assert result["s"].exit_code == 5


def test_shelf_rewipes_certified_drive_when_config_asks(cfg):
    cfg.rewipe_certified = True
    d1 = disk(1)
    fake = FakeStages([d1])
    watcher = PipeWatcher()
    stages = fake.stages(watcher)
    stages.find_disks = lambda c: []
    stop = threading.Event()
    sessions = []
    t = threading.Thread(target=run_unattended, args=(cfg,), kwargs=dict(
        watch=True, stages=stages, view=tui.RunView(), stop=stop, on_ready=sessions.append))
    t.start()
    wait_for(lambda: watcher.started)
    watcher.events.put(Event("add", d1, d1.path))
    wait_for(lambda: len(fake.sanitized) == 1)
    wait_for(lambda: len(list((cfg.state_dir / "spool" / "certificates").glob("*.json"))) == 1)
    wait_for(lambda: bool(sessions) and not sessions[0].busy())
    watcher.events.put(Event("remove", None, d1.path))
    watcher.events.put(Event("add", d1, d1.path))
    wait_for(lambda: len(fake.sanitized) == 2)
    stop.set()
    t.join(timeout=60)
    assert not t.is_alive()
    assert fake.sanitized == [d1.path, d1.path]


def test_loop_attach_change_event_counts_as_insertion(cfg):
    """Attaching a backing file to a loop device raises 'change' (no media -> media)."""
    d1 = disk(1)
    empty = Disk(path=d1.path, name=d1.name, size_bytes=0, target=False, reasons=["zero size"])
    fake = FakeStages([d1])
    watcher = PipeWatcher()
    stages = fake.stages(watcher)
    states = iter([empty, d1])
    stages.find_disks = lambda c: [next(states)]
    stop = threading.Event()
    t = threading.Thread(target=run_unattended, args=(cfg,), kwargs=dict(watch=True, stages=stages, view=tui.RunView(), stop=stop))
    t.start()
    wait_for(lambda: watcher.started)
    watcher.events.put(Event("change", d1, d1.path))
    wait_for(lambda: len(fake.sanitized) == 1)
    stop.set()
    t.join(timeout=60)
    assert not t.is_alive()
    assert fake.sanitized == [d1.path]


def test_card_swapped_faster_than_the_empty_slot_was_seen_is_a_new_insertion(cfg):
    """Two ``change`` events with media on the same node: a rescan if it is the same drive,
    an insertion if the serial changed (the empty slot in between was never observed)."""
    first, second = disk(1, serial="CARD-A"), disk(1, serial="CARD-B")
    fake = FakeStages([first])
    watcher = PipeWatcher()
    stages = fake.stages(watcher)
    stop = threading.Event()
    sessions = []
    t = threading.Thread(target=run_unattended, args=(cfg,), kwargs=dict(
        watch=True, stages=stages, view=tui.RunView(), stop=stop, on_ready=sessions.append))
    t.start()
    wait_for(lambda: len(fake.sanitized) == 1)
    wait_for(lambda: bool(sessions) and not sessions[0].busy())
    watcher.events.put(Event("change", first, first.path))  # partition-table rescan
    watcher.events.put(Event("change", second, second.path))
    wait_for(lambda: len(fake.sanitized) == 2)
    wait_for(lambda: bool(sessions) and not sessions[0].busy())
    stop.set()
    t.join(timeout=60)
    assert not t.is_alive()
    assert fake.sanitized == [first.path, first.path]


def test_stop_signal_interrupts_running_wipes_and_certifies_them(cfg):
    fake = FakeStages([disk(1), disk(2)], {"/dev/fake1": "block", "/dev/fake2": "block"})
    view = tui.RunView()
    stop = threading.Event()
    fake_stages = fake.stages()
    fake_stages.device_gone = lambda d: False
    t = threading.Thread(target=run_unattended, args=(cfg,), kwargs=dict(stages=fake_stages, view=view, stop=stop))
    t.start()
    wait_for(lambda: len(fake.started) == 2)
    stop.set()
    t.join(timeout=60)
    assert not t.is_alive()
    certs = [json.loads(p.read_text()) for p in (cfg.state_dir / "spool" / "certificates").glob("*.json")]
    assert [c["outcome"] for c in certs] == ["interrupted", "interrupted"] and fake.powered == []
    assert view.finished


def test_shelf_listens_before_its_first_scan_and_a_queued_add_does_not_rewipe(cfg):
    d1 = disk(1)
    fake = FakeStages([d1])
    watcher = PipeWatcher()
    stages = fake.stages(watcher)
    listening_at_scan = []
    stages.find_disks = lambda c: (listening_at_scan.append(watcher.started), [d1])[1]
    # The drive was slid in as the station booted: the watcher queued its "add", and the
    # first scan finds it too.
    watcher.events.put(Event("add", d1, d1.path))
    view = tui.RunView()
    stop = threading.Event()
    t = threading.Thread(target=run_unattended, args=(cfg,), kwargs=dict(watch=True, stages=stages, view=view, stop=stop))
    t.start()
    wait_for(lambda: state(view, d1.path) == tui.PASSED)
    wait_for(lambda: watcher.events.empty())
    time.sleep(0.5)  # the shelf loop polls every 0.5 s: the queued event has been handled
    stop.set()
    t.join(timeout=60)
    assert listening_at_scan == [True]
    assert fake.sanitized == [d1.path]
    assert state(view, d1.path) == tui.PASSED


def test_certifying_stack_is_loaded_in_the_background_while_disks_are_wiped(cfg):
    fake = FakeStages([disk(1)])
    stages = fake.stages()
    warmed = []
    stages.warm_up = lambda: warmed.append(threading.current_thread().name)
    run_unattended(cfg, stages=stages, view=tui.RunView(), sleep=lambda s: None)
    assert warmed == ["ardoise-warm-up"]
    assert fake.sanitized == ["/dev/fake1"]


def test_the_real_warm_up_loads_the_pdf_renderer():
    import subprocess
    import sys

    code = ("import sys; from agent.run.stages import default_stages; default_stages().warm_up(); "
            "print('agent.certify.pdf' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "True"


# --------------------------------------------------------------------------- what plain mode says about the collector


def _plain_run(cfg, url: str) -> list[str]:
    import io

    from agent.config import CollectorConfig

    cfg.collector = CollectorConfig(url=url, token="tok", retries=2, backoff_s=0.01, timeout_s=5)
    view, out = tui.RunView(), io.StringIO()
    tui.LogDisplay(view, stream=out, every=3600)
    run_unattended(cfg, stages=FakeStages([disk(1), disk(2), disk(3)]).stages(), view=view, sleep=lambda s: None)
    return [line for line in out.getvalue().splitlines() if line.startswith("ardoise: collector:")]


def test_plain_mode_says_connecting_then_one_short_reason_when_nothing_listens(cfg):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused
    url = f"http://127.0.0.1:{port}"
    lines = _plain_run(cfg, url)
    assert lines[0].startswith(f"ardoise: collector: connecting to {url};"), lines
    assert not any("connected" in line for line in lines), lines
    failures = [line for line in lines if "unreachable" in line]
    # Once, however many sweeps fail (one per finished disk, and the final one).
    assert len(failures) == 1, lines
    assert failures[0].startswith(f"ardoise: collector: {url}: unreachable (connection refused); spooled "), lines
    assert not any("HTTPConnectionPool" in line or "urllib3" in line for line in lines)


def test_plain_mode_says_connected_once_the_collector_answered(cfg):
    import http.server
    import threading as th

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            # Enrollment asks for a challenge first (the station proves its key by signing it).
            challenge = self.path == "/api/v1/stations/challenge"
            body = (b'{"challenge": "c"}' if challenge else
                    b'{"bearer": "b", "station_id": "s"}' if self.path == "/api/v1/stations" else b'{"status": "stored"}')
            self.send_response(200 if challenge else 201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    th.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        lines = _plain_run(cfg, url)
    finally:
        srv.shutdown()
    assert lines[0].startswith(f"ardoise: collector: connecting to {url};"), lines
    assert any(line.startswith(f"ardoise: collector: {url}: connected;") for line in lines), lines
