"""Network boot: certificates live only in RAM, so ``hold_until_delivered`` keeps the run
from ending (and the machine from powering off) until the collector has them. On loop
devices, with a real collector that is down, then comes back; the enrollment token is the
netboot service's kind, bound to this machine's MAC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.deliver.client import local_macs
from server_stub import stations
from server_stub.db import Database

from test_upload_collector import CollectorOnPort

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]
SECRET = b"donor's payslips "


def test_the_run_stays_on_until_the_collector_is_back(loopdevs, tmp_path):
    if not local_macs():
        pytest.skip("no network interface with a MAC address")
    dev = loopdevs.create(4 << 20, fill=SECRET)
    collector = CollectorOnPort(tmp_path).start()
    try:
        db = Database(collector.db_url)
        token = stations.create_token(db, "LOT-NB", 1.0, workshop_id=stations.workshop_for(db, None, None),
                                      mac=local_macs()[0]).token
        collector.kill()  # down before the agent starts
        cfg = tmp_path / "ardoise.yaml"
        cfg.write_text(json.dumps({
            "state_dir": str(tmp_path / "state"), "finish_display_seconds": 0, "lot": "LOT-NB", "targets": [dev],
            "seat": "7", "hold_until_delivered": True, "on_finish": "wait",
            "collector": {"url": collector.url, "token": token, "retries": 0, "backoff_s": 0.1, "timeout_s": 2}}))
        stderr = tmp_path / "run.err"
        with open(stderr, "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "--config", str(cfg)], cwd=str(ROOT),
                                    env={**os.environ, "ARDOISE_HOLD_RETRY_S": "0.5"},
                                    stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 120
            while stderr.read_text().count("NOT DELIVERED") < 3:
                assert proc.poll() is None, f"the run ended with a certificate undelivered:\n{stderr.read_text()}"
                assert time.monotonic() < deadline, stderr.read_text()
                time.sleep(0.2)
            assert proc.poll() is None
            spool = tmp_path / "state" / "spool" / "certificates"
            assert len(list(spool.glob("*.json"))) == 1 and not list(spool.glob("*.delivered"))
            collector.start()
            assert proc.wait(timeout=120) == 0, stderr.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert len(list(spool.glob("*.json.delivered"))) == 1
        assert collector.certificate_ids()
        # The station enrolled with the MAC-bound token, named by its seat for the dashboard.
        assert [s.name for s in stations.all_stations(Database(collector.db_url))] == ["seat 7"]
        log = stderr.read_text()
        assert "NOT DELIVERED: 2 file(s)" in log  # the certificate and the machine's audit report
    finally:
        collector.stop()
