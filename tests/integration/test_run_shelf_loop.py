"""Shelf mode (``ardoise run --watch``) on the host, driven by real kernel uevents from
loop devices.

What this covers, honestly: the real ``DiskWatcher`` (pyudev, kernel-filtered) feeding the
real shelf logic and the real wipe, certify and spool stages. A loop device stands in for a
bay: it stays attached to our own backing file the whole time (so no other process can get
that loop number), and "inserting a drive" is growing the file and ``losetup -c``, which
makes the kernel announce a ``change`` of capacity, from 0 to N bytes. "Pulling it" is the
reverse: capacity back to 0 mid-wipe, so writes fail as they would on a vanished drive.

What it does not cover: ``add``/``remove`` events of a device node that appears and
disappears (SATA/USB/NVMe hot-plug). A busy loop device cannot vanish. That is tested in
the VM of the live image (QEMU ``device_add``/``device_del``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent.certify.check import check_file
from agent.certify.keys import load_public_keys

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]
SECRET = b"shelf drive payroll "


def backing_of(dev: str) -> Path:
    return Path(Path(f"/sys/block/{os.path.basename(dev)}/loop/backing_file").read_text().strip())


def insert(dev: str, size: int) -> None:
    with open(backing_of(dev), "r+b") as f:
        chunk = SECRET * (65536 // len(SECRET))
        done = 0
        while done < size:
            f.write(chunk[: size - done])
            done += len(chunk[: size - done])
    subprocess.run(["losetup", "-c", dev], check=True)


def pull(dev: str) -> None:
    os.truncate(backing_of(dev), 0)
    subprocess.run(["losetup", "-c", dev], check=True)


class Agent:
    def __init__(self, cfg: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "run", "--watch", "--config", str(cfg)], cwd=str(ROOT),
            env={**os.environ, "ARDOISE_JOURNAL_INTERVAL": "0.05"},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, text: str, timeout: float = 120) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in list(self.lines):
                if text in line:
                    return line
            assert self.proc.poll() is None, "\n".join(self.lines[-30:])
            time.sleep(0.02)
        raise AssertionError(f"no line with {text!r}:\n" + "\n".join(self.lines[-30:]))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=120)
        self._t.join(timeout=5)
        return rc


def test_shelf_certifies_inserted_drive_interrupts_pulled_one_and_skips_reinsert(loopdevs, tmp_path):
    bay1 = loopdevs.create(0)  # empty bays: attached to our own zero-length files
    bay2 = loopdevs.create(0)
    cfg = tmp_path / "ardoise.yaml"
    cfg.write_text(json.dumps({
        "targets": [bay1, bay2],  # with explicit targets only these nodes are ever considered
        "state_dir": str(tmp_path / "state"),
        "policy": {"virtual": {"overwrite": "dod-3pass", "verify": "sample"}},
        "finish_display_seconds": 0,
    }))
    agent = Agent(cfg)
    try:
        agent.wait_line("shelf mode")
        assert any(f"{bay1}: protected" in line and "zero size" in line for line in agent.lines)

        insert(bay1, 8 << 20)
        agent.wait_line(f"{bay1}: PASSED")
        certs = tmp_path / "state" / "spool" / "certificates"
        # Written as soon as that disk finished, while the shelf keeps running.
        assert len(list(certs.glob("*.json"))) == 1
        with open(bay1, "rb") as f:
            assert SECRET not in f.read()

        # The same drive (same backing file) pulled and put back: not wiped again. A person
        # takes a second to do that; the shelf shows the empty bay in between.
        pull(bay1)
        agent.wait_line(f"{bay1}: removed")
        insert(bay1, 8 << 20)
        agent.wait_line("already certified in this session")

        insert(bay2, 192 << 20)
        agent.wait_line(f"{bay2}: wiping")
        pull(bay2)
        agent.wait_line(f"{bay2}: interrupted")
    finally:
        rc = agent.stop()
    assert rc == 5, "\n".join(agent.lines[-20:])  # one disk was not certified successful
    trusted = load_public_keys(tmp_path / "state" / "station-key.pub.pem")
    outcomes = []
    for f in (tmp_path / "state" / "spool" / "certificates").glob("*.json"):
        report = check_file(f, trusted)
        assert report.valid, report.reasons
        outcomes.append(report.payload["sanitization"]["outcome"])
    assert sorted(outcomes) == ["interrupted", "success"]
    print("\n".join(agent.lines))
