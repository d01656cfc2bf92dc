from __future__ import annotations

import base64
import json
import os
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.certify.keys import StationKey
from agent.config import CollectorConfig
from agent.deliver.client import CollectorClient, Unauthorized, Unreachable, backoff_delays, enrollment_message
from agent.deliver.progress import ProgressReporter
from agent.deliver.spool import Spool, atomic_write
from agent.deliver.upload import deliver_pending


def test_atomic_write_leaves_no_temp_file_and_replaces_content(tmp_path):
    p = tmp_path / "a" / "cert.json"
    atomic_write(p, b"one")
    atomic_write(p, b"two")
    assert p.read_bytes() == b"two"
    assert os.listdir(p.parent) == ["cert.json"]


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    p = tmp_path / "cert.json"
    atomic_write(p, b"good")

    def boom(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        atomic_write(p, b"half")
    monkeypatch.undo()
    assert p.read_bytes() == b"good"
    assert os.listdir(tmp_path) == ["cert.json"]


def test_pending_lists_audits_first_and_skips_delivered_and_rejected(tmp_path):
    spool = Spool(tmp_path).ensure()
    spool.put("certificates", "c1.json", b"{}")
    spool.put("certificates", "c1.pdf", b"%PDF")
    spool.put("certificates", "c2.json", b"{}")
    spool.put("audits", "a1.json", b"{}")
    spool.put("logs", "run.log", b"text")
    assert [e.name for e in spool.pending()] == ["a1.json", "c1.json", "c2.json"]
    c1, c2 = spool.entries("certificates")
    spool.mark_delivered(c1, {"status": "stored"})
    spool.mark_rejected(c2, {"reason": "bad signature"})
    assert [e.name for e in spool.pending()] == ["a1.json"]
    assert [e.name for e in spool.pending(include_rejected=True)] == ["a1.json", "c2.json"]
    assert spool.rejection(c2) == "bad signature"
    counts = spool.counts()
    assert (counts.spooled, counts.delivered, counts.rejected, counts.pending) == (3, 1, 1, 1)
    # Delivered files stay as the local copy.
    assert c1.path.read_bytes() == b"{}"


def test_spool_refuses_names_that_escape_it(tmp_path):
    spool = Spool(tmp_path).ensure()
    with pytest.raises(ValueError):
        spool.put("certificates", "../x.json", b"")


def test_backoff_doubles_with_bounded_jitter():
    delays = backoff_delays(6, 1.0, cap=8.0, rng=random.Random(1))
    nominal = [1, 2, 4, 8, 8, 8]
    assert all(n / 2 <= d <= n for d, n in zip(delays, nominal))


# --------------------------------------------------------------------------- client


class FlakyCollector:
    """A real HTTP server on 127.0.0.1 that fails the first ``failures`` uploads with 503."""

    def __init__(self, failures: int = 0, upload_status: int = 201):
        self.failures = failures
        self.upload_status = upload_status
        self.requests: list[tuple[str, dict, dict]] = []
        self.enrolled_bearer = "ardst_test"
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                outer.requests.append((self.path, dict(self.headers), body))
                if self.path == "/api/v1/stations/challenge":
                    return self._answer(200, {"status": "challenge", "challenge": "ardch_test"})
                if self.path == "/api/v1/stations":
                    return self._answer(201, {"status": "enrolled", "station_id": "st_1", "bearer": outer.enrolled_bearer})
                if self.headers.get("Authorization") != f"Bearer {outer.enrolled_bearer}":
                    return self._answer(401, {"status": "rejected", "reason": "unknown station"})
                if self.path == "/api/v1/progress":
                    return self._answer(202, {"status": "accepted", "accepted": len(body["drives"])})
                if outer.failures > 0:
                    outer.failures -= 1
                    return self._answer(503, {"status": "unavailable"})
                return self._answer(outer.upload_status, {"status": "x", "id": "cert-1", "reason": "bad schema"})

            def _answer(self, code, data):
                raw = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths(self) -> list[str]:
        return [r[0] for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector():
    c = FlakyCollector()
    yield c
    c.close()


def make_client(tmp_path, url, token="tok", retries=3):
    sleeps: list[float] = []
    cfg = CollectorConfig(url=url, token=token, retries=retries, backoff_s=0.01, timeout_s=5)
    client = CollectorClient(cfg, tmp_path, StationKey.generate(), sleep=sleeps.append, name="test-station")
    return client, sleeps


def test_first_upload_enrolls_with_the_token_and_stores_the_bearer(tmp_path, collector):
    spool = Spool(tmp_path / "spool").ensure()
    spool.put("certificates", "c1.json", b'{"payload": 1}')
    client, _ = make_client(tmp_path, collector.url)
    report = deliver_pending(spool, client)
    assert report.ok and report.delivered == ["c1.json"]
    assert collector.paths() == ["/api/v1/stations/challenge", "/api/v1/stations", "/api/v1/certificates"]
    enroll = collector.requests[1][2]
    assert enroll["token"] == "tok" and "BEGIN PUBLIC KEY" in enroll["public_key"]
    # The proof of the private key: the collector's challenge, signed with the station key.
    assert enroll["challenge"] == "ardch_test"
    client.key.public_key.verify(base64.b64decode(enroll["signature"]),
                                 enrollment_message("ardch_test", "tok", client.key.key_id))
    saved = json.loads((tmp_path / "collector.json").read_text())
    assert saved["bearer"] == "ardst_test" and saved["key_id"] == client.key.key_id
    assert (tmp_path / "collector.json").stat().st_mode & 0o777 == 0o600
    # A second client with the same key reuses the stored bearer: no second enrollment.
    again = CollectorClient(client.cfg, tmp_path, client.key, sleep=lambda s: None)
    again.upload(b"{}")
    assert collector.paths().count("/api/v1/stations") == 1


def test_transient_errors_are_retried_with_backoff_then_delivered(tmp_path, collector):
    collector.failures = 2
    spool = Spool(tmp_path / "spool").ensure()
    spool.put("certificates", "c1.json", b"{}")
    client, sleeps = make_client(tmp_path, collector.url)
    report = deliver_pending(spool, client)
    assert report.delivered == ["c1.json"]
    assert len(sleeps) == 2 and sleeps[1] >= sleeps[0] / 2
    assert spool.counts().delivered == 1


def test_unreachable_collector_keeps_everything_pending(tmp_path):
    spool = Spool(tmp_path / "spool").ensure()
    spool.put("certificates", "c1.json", b"{}")
    spool.put("certificates", "c2.json", b"{}")
    # A port nobody listens on: connection refused, retried, then given up.
    client, sleeps = make_client(tmp_path, "http://127.0.0.1:9", retries=2)
    report = deliver_pending(spool, client)
    assert not report.ok and "unreachable" in report.error
    assert report.pending == ["c1.json", "c2.json"]
    assert len(sleeps) == 2
    assert spool.counts().pending == 2


def test_permanent_rejection_is_marked_and_not_retried(tmp_path):
    c = FlakyCollector(upload_status=422)
    try:
        spool = Spool(tmp_path / "spool").ensure()
        spool.put("certificates", "c1.json", b"{}")
        client, sleeps = make_client(tmp_path, c.url)
        report = deliver_pending(spool, client)
        assert report.rejected == [("c1.json", "bad schema")] and sleeps == []
        assert spool.pending() == [] and spool.counts().rejected == 1
    finally:
        c.close()


def test_missing_token_without_enrollment_is_a_one_line_error(tmp_path, collector):
    client, _ = make_client(tmp_path, collector.url, token=None)
    with pytest.raises(Unauthorized, match="no collector.token"):
        client.upload(b"{}")


def test_revoked_bearer_triggers_one_re_enrollment(tmp_path, collector):
    client, _ = make_client(tmp_path, collector.url)
    client.upload(b"{}")
    collector.enrolled_bearer = "ardst_new"  # the collector issued a fresh bearer meanwhile
    answer = client.upload(b"{}")
    assert answer.delivered
    assert collector.paths().count("/api/v1/stations") == 2


def test_progress_reporter_sends_one_batch_with_latest_state(tmp_path, collector):
    client, _ = make_client(tmp_path, collector.url)
    rep = ProgressReporter(client, interval=60)
    for done in range(0, 100, 10):
        rep.update("/dev/loop1", bytes_done=done, bytes_total=100, serial="S1")
    rep.update("/dev/loop2", bytes_done=5, bytes_total=100)
    rep.close()  # flushes once
    progress = [r for r in collector.requests if r[0] == "/api/v1/progress"]
    assert len(progress) == 1
    drives = {d["device"]: d for d in progress[0][2]["drives"]}
    assert drives["/dev/loop1"]["bytes_done"] == 90 and drives["/dev/loop1"]["serial"] == "S1"
    assert set(drives) == {"/dev/loop1", "/dev/loop2"}


def test_half_written_files_a_power_cut_left_are_swept_at_start_and_fresh_ones_kept(tmp_path):
    spool = Spool(tmp_path / "spool").ensure()
    certs = tmp_path / "spool" / "certificates"
    stale = certs / ".S1-abc.json.1234.5678.tmp"
    fresh = certs / ".S2-def.json.1234.5679.tmp"
    kept = certs / "S3-ghi.json"
    for f in (stale, fresh, kept):
        f.write_bytes(b"{}")
    hours_ago = time.time() - 2 * 3600
    os.utime(stale, (hours_ago, hours_ago))
    os.utime(kept, (hours_ago, hours_ago))
    spool.ensure()
    assert not stale.exists()
    assert fresh.exists() and kept.exists()


def test_a_receipt_in_the_collectors_answer_is_kept_beside_the_certificate(tmp_path):
    spool = Spool(tmp_path).ensure()
    spool.put("certificates", "c1.json", b"{}")
    spool.put("certificates", "c2.json", b"{}")
    c1, c2 = spool.entries("certificates")
    receipt = {"payloadType": "application/vnd.ardoise.receipt+json", "payload": "e30=", "signatures": []}
    spool.mark_delivered(c1, {"http": 201, "status": "stored", "receipt": receipt})
    spool.mark_delivered(c2, {"http": 201, "status": "stored"})  # an older collector: no receipt
    assert spool.receipt(c1) == receipt
    assert json.loads((tmp_path / "certificates" / "c1.json.receipt").read_text()) == receipt
    assert spool.receipt(c2) is None
    assert [e.name for e in spool.entries("certificates")] == ["c1.json", "c2.json"]
    assert spool.counts().delivered == 2 and spool.pending() == []
