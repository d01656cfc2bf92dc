"""``ardoise run --config`` end to end on loop devices, with the real stages and a real
collector on loopback: the free devices are wiped and certified, the mounted one is not
touched, and the collector holds each certificate exactly once. Also: resume after the
agent is killed mid-pass, and each bad config gives a one-line error naming the key."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from agent.certify.check import check_file
from agent.certify.keys import load_public_keys

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]
SECRET = b"donor's tax return 2025 "


def ardoise(*args: str, env=None, **kw):
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, "ARDOISE_JOURNAL_INTERVAL": "0.05", **(env or {})}, cwd=str(ROOT), **kw,
    )


def sha256_of(dev: str) -> str:
    h = hashlib.sha256()
    with open(dev, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def contains(dev: str, needle: bytes) -> bool:
    with open(dev, "rb") as f:
        return needle in f.read()


def write_config(tmp: Path, **keys) -> Path:
    cfg = {"state_dir": str(tmp / "state"), "finish_display_seconds": 0,
           "operator": {"name": "Test Technician", "organization": "Workshop"}, "lot": "LOT-E2E", **keys}
    p = tmp / "ardoise.yaml"
    p.write_text(json.dumps(cfg))
    return p


def spooled_certificates(tmp: Path) -> list[dict]:
    out = []
    trusted = load_public_keys(tmp / "state" / "station-key.pub.pem")
    for f in sorted((tmp / "state" / "spool" / "certificates").glob("*.json")):
        report = check_file(f, trusted)
        assert report.valid, report.reasons
        out.append(report.payload)
    return out


@pytest.fixture
def collector(tmp_path):
    from test_upload_collector import CollectorOnPort

    c = CollectorOnPort(tmp_path).start()
    yield c
    c.stop()


def test_run_wipes_free_loops_spares_the_mounted_one_and_delivers_once(loopdevs, tmp_path, collector):
    free = [loopdevs.create(8 << 20, fill=SECRET), loopdevs.create(8 << 20, fill=SECRET)]
    mounted = loopdevs.create(8 << 20)
    # No lazy init: ext4 would otherwise keep zeroing inode tables in the background.
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", mounted], check=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", mounted, str(mnt)], check=True)
    (mnt / "keep.txt").write_bytes(SECRET)
    # Still mounted (so protected), but read-only: the kernel itself no longer writes to it,
    # so any change of its checksum would be ours.
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
    before = sha256_of(mounted)
    try:
        token = collector.c.token("LOT-E2E")
        cfg = write_config(tmp_path, targets=[*free, mounted],
                           collector={"url": collector.url, "token": token, "retries": 2, "backoff_s": 0.1})
        run = ardoise("run", "--config", str(cfg))
        assert run.returncode == 0, run.stderr
        # Without a terminal the technician's screen is plain lines on stderr.
        assert f"RESULT {free[0]}: PASSED" in run.stderr and f"RESULT {free[1]}: PASSED" in run.stderr
        assert f"{mounted}: protected" in run.stderr
        assert sha256_of(mounted) == before
        assert (mnt / "keep.txt").read_bytes() == SECRET
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
    for dev in free:
        assert not contains(dev, SECRET)

    certs = spooled_certificates(tmp_path)
    assert sorted(c["sanitization"]["outcome"] for c in certs) == ["success", "success"]
    ids = sorted(collector.certificate_ids())
    assert ids == sorted(c["certificate_id"] for c in certs)
    assert collector.audit_count() == 1
    # Both were acknowledged: the spool has nothing pending, and the copies stay on the stick.
    spool = tmp_path / "state" / "spool" / "certificates"
    assert len(list(spool.glob("*.json.delivered"))) == 2
    listing = requests.get(collector.url + "/api/v1/certificates", params={"lot": "LOT-E2E"}, timeout=10).json()
    assert listing["total"] == 2
    # Live progress reached the dashboard, and its last word for each disk is "done".
    from sqlalchemy import select
    from test_upload_collector import harness

    with collector.c.engine.connect() as conn:
        live = {r.device: r.state for r in conn.execute(select(harness.LiveProgress))}
    assert live == {free[0]: "done", free[1]: "done"}


def test_no_config_collector_means_local_spool_only(loopdevs, tmp_path):
    dev = loopdevs.create(4 << 20, fill=SECRET)
    cfg = write_config(tmp_path, targets=[dev])
    run = ardoise("run", "--config", str(cfg))
    assert run.returncode == 0, run.stderr
    assert "collector: none (certificates stay on the stick)" in run.stderr
    (cert,) = spooled_certificates(tmp_path)
    assert cert["sanitization"]["outcome"] == "success"
    assert not list((tmp_path / "state" / "spool" / "certificates").glob("*.delivered"))


def test_killed_mid_pass_the_next_run_resumes_and_says_so(loopdevs, tmp_path):
    # Three passes over 192 MiB: long enough to be caught mid-pass on tmpfs.
    dev = loopdevs.create(192 << 20, fill=SECRET)
    cfg = write_config(tmp_path, targets=[dev], policy={"virtual": {"overwrite": "dod-3pass", "verify": "sample"}})
    journal = tmp_path / "state" / "journal"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--config", str(cfg)], cwd=str(ROOT),
        env={**os.environ, "ARDOISE_JOURNAL_INTERVAL": "0.02"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    killed_at = None
    while time.monotonic() < deadline and proc.poll() is None:
        for f in journal.glob("*.json") if journal.is_dir() else []:
            try:
                entry = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            if entry["pass_index"] >= 1 or entry["position"] > 0:
                os.kill(proc.pid, signal.SIGKILL)  # the power cut
                killed_at = entry
                break
        if killed_at:
            break
        time.sleep(0.005)
    proc.wait()
    assert killed_at is not None, "the wipe finished before it could be interrupted"
    assert not list((tmp_path / "state" / "spool" / "certificates").glob("*.json"))

    run = ardoise("run", "--config", str(cfg))
    assert run.returncode == 0, run.stderr
    (cert,) = spooled_certificates(tmp_path)
    assert cert["sanitization"]["outcome"] == "success"
    assert cert["sanitization"]["resumed"] is True
    assert "(resumed)" in run.stderr
    assert not contains(dev, SECRET)


@pytest.mark.parametrize(
    "text, named",
    [
        ("colector: {url: http://x}\n", "unknown key colector"),
        ("shelf: perhaps\n", "shelf must be true or false"),
        ("on_finish: halt\n", "on_finish must be one of"),
        ("collector: {token: abc}\n", "collector.url is required"),
        ("finish_display_seconds: soon\n", "finish_display_seconds must be an integer"),
        ("policy: {hdd: {passes: 3}}\n", "policy.hdd.passes"),
        ("targets: [\n", "not valid YAML at line"),
    ],
)
def test_each_bad_config_is_one_line_naming_the_key(tmp_path, text, named):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    for cmd in ("run", "upload"):
        r = ardoise(cmd, "--config", str(p))
        assert r.returncode == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and named in lines[0] and "Traceback" not in r.stderr
