"""Delivery against the real collector (``ardoise-collector serve`` on loopback, SQLite).

Covers: collector down during the run → everything spooled; ``ardoise upload`` later →
all delivered exactly once; the collector killed mid-upload (including after it stored a
certificate whose answer was lost) → nothing lost, nothing stored twice.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from agent import discover
from agent.certify import issue_certificate
from agent.certify.keys import StationKey
from agent.config import CollectorConfig, Config
from agent.deliver.client import CollectorClient
from agent.deliver.spool import Spool
from agent.deliver.upload import deliver_pending
from agent.records import Outcome
from agent.sanitize import execute
from agent.sanitize.policy import make_plan

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]


def _load_harness():
    # By path: tests/e2e has a module named ``collector`` too, so a package import is ambiguous.
    spec = importlib.util.spec_from_file_location("ardoise_collector_harness", ROOT / "tests" / "collector" / "harness.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


harness = _load_harness()


class CollectorOnPort:
    """A collector that can be killed and started again on the same port and database."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.port = harness.free_port()
        self.db_url = f"sqlite:///{tmp / 'collector.db'}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.c = None

    def start(self):
        harness.free_port = lambda: self.port  # start_collector picks its port with this
        self.c = harness.start_collector(self.db_url, self.tmp)
        return self

    def kill(self):
        self.c.proc.kill()
        self.c.proc.wait()
        self.c.engine.dispose()

    def stop(self):
        if self.c is not None and self.c.proc.poll() is None:
            harness.stop_collector(self.c)

    def certificate_ids(self) -> list[str]:
        with self.c.engine.connect() as conn:
            return [r[0] for r in conn.execute(select(harness.Certificate.id))]

    def audit_count(self) -> int:
        with self.c.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(harness.AuditReport)).scalar_one()


@pytest.fixture
def collector(tmp_path):
    c = CollectorOnPort(tmp_path)
    yield c
    c.stop()


def ardoise(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, "ARDOISE_JOURNAL_INTERVAL": "0.05", **(env or {})}, cwd=str(ROOT),
    )


def write_config(tmp: Path, url: str, token: str | None, targets: list[str]) -> Path:
    cfg = {
        "collector": {"url": url, "retries": 1, "backoff_s": 0.05, "timeout_s": 10},
        "operator": {"name": "Test Technician", "organization": "Workshop"},
        "lot": "LOT-A",
        "targets": targets,
        "state_dir": str(tmp / "state"),
        "finish_display_seconds": 0,
    }
    if token:
        cfg["collector"]["token"] = token
    p = tmp / "ardoise.yaml"
    p.write_text(json.dumps(cfg))  # JSON is YAML
    return p


def test_collector_down_spools_then_upload_delivers_everything_once(loopdevs, tmp_path, collector):
    devs = [loopdevs.create(4 << 20), loopdevs.create(4 << 20)]
    # The token is made before the collector goes down: the station has it on its stick.
    collector.start()
    token = collector.c.token("LOT-A")
    collector.kill()
    cfg = write_config(tmp_path, collector.url, token, devs)

    run = ardoise("run", "--config", str(cfg))
    assert run.returncode == 0, run.stderr  # wiping succeeded; delivery is only postponed
    spool = Spool(tmp_path / "state" / "spool")
    assert [e.kind for e in spool.pending()] == ["audits", "certificates", "certificates"]
    assert "unreachable" in run.stderr

    # Unreachable collector: one line, non-zero, nothing lost.
    up = ardoise("upload", "--config", str(cfg))
    assert up.returncode == 7 and len(up.stderr.strip().splitlines()) == 1
    assert "unreachable" in up.stderr
    assert len(spool.pending()) == 3

    collector.start()
    up = ardoise("upload", "--config", str(cfg))
    assert up.returncode == 0, up.stderr
    assert "3 delivered" in up.stderr  # two certificates and the audit report
    assert spool.pending() == []
    ids = collector.certificate_ids()
    assert len(ids) == 2 and len(set(ids)) == 2
    assert collector.audit_count() == 1
    # Delivered files stay on the stick as the local copy.
    assert len(list((tmp_path / "state" / "spool" / "certificates").glob("*.json"))) == 2

    again = ardoise("upload", "--config", str(cfg))
    assert again.returncode == 0 and "0 delivered" in again.stderr
    assert len(collector.certificate_ids()) == 2


class LoseAnswerThenKill(requests.adapters.HTTPAdapter):
    """After ``after`` certificate uploads, let the next one reach the collector (which stores
    it), kill the collector, and lose the answer: the worst moment for a crash."""

    def __init__(self, collector: CollectorOnPort, after: int):
        super().__init__()
        self.collector, self.after, self.seen = collector, after, 0

    def send(self, request, **kw):
        resp = super().send(request, **kw)
        if request.path_url == "/api/v1/certificates":
            self.seen += 1
            if self.seen == self.after + 1:
                assert resp.status_code == 201
                self.collector.kill()
                raise requests.ConnectionError("connection reset by peer (collector killed)")
        return resp


def test_collector_killed_mid_upload_loses_and_duplicates_nothing(loopdevs, tmp_path, collector):
    state = tmp_path / "state"
    dev = loopdevs.create(4 << 20)
    cfg = Config(state_dir=state, lot="LOT-A")
    result = execute.sanitize(make_plan(discover.disk_for_path(dev), config=cfg), config=cfg)
    assert result.outcome == Outcome.SUCCESS
    key = StationKey.load_or_create(state)
    spool = Spool.for_state_dir(state).ensure()
    staging = tmp_path / "staging"
    for _ in range(12):
        files = issue_certificate(result, None, cfg, key, staging)
        spool.put("certificates", files.json_path.name, files.json_path.read_bytes())

    collector.start()
    token = collector.c.token("LOT-A")
    col_cfg = CollectorConfig(url=collector.url, token=token, retries=2, backoff_s=0.01)
    client = CollectorClient(col_cfg, state, key, sleep=lambda s: None)
    client.session.mount("http://", LoseAnswerThenKill(collector, after=5))
    report = deliver_pending(spool, client)
    assert len(report.delivered) == 5 and len(report.pending) == 7 and "unreachable" in report.error
    assert spool.counts().delivered == 5

    collector.start()  # same port, same database
    config_file = write_config(tmp_path, collector.url, token, [])
    up = ardoise("upload", "--config", str(config_file), "--json")
    assert up.returncode == 0, up.stderr
    out = json.loads(up.stdout)
    # The certificate whose answer was lost is already there: the collector says 200.
    assert len(out["already_delivered"]) == 1 and len(out["delivered"]) == 6
    assert spool.pending() == [] and spool.counts().delivered == 12
    ids = collector.certificate_ids()
    assert len(ids) == 12 and len(set(ids)) == 12


def self_signed_for_loopback(directory: Path) -> tuple[Path, Path]:
    """A throw-away self-signed certificate for 127.0.0.1: it is its own CA bundle."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ardoise workshop test")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem, key_pem = directory / "collector.pem", directory / "collector.key"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return pem, key_pem


def test_upload_verifies_tls_and_trusts_the_configured_ca_bundle(tmp_path):
    from agent.certify import sign_audit_report
    from agent.certify.envelope import dump_envelope
    from agent.records import AuditReport, MachineInfo

    cert, key_pem = self_signed_for_loopback(tmp_path)
    port = harness.free_port()
    harness_free_port, harness.free_port = harness.free_port, lambda: port
    try:
        c = harness.start_collector(f"sqlite:///{tmp_path / 'tls.db'}", tmp_path, tls=(cert, key_pem, str(cert)))
    finally:
        harness.free_port = harness_free_port
    try:
        state = tmp_path / "state"
        key = StationKey.load_or_create(state)
        env = sign_audit_report(AuditReport(machine=MachineInfo(hostname="t")), key, lot="LOT-A")
        Spool.for_state_dir(state).ensure().put("audits", "a1.json", dump_envelope(env))
        token = c.token("LOT-A")
        base = {"url": c.url, "token": token, "retries": 0}
        without = tmp_path / "without.yaml"
        without.write_text(json.dumps({"collector": base, "state_dir": str(state)}))
        r = ardoise("upload", "--config", str(without))
        assert r.returncode == 7 and "TLS verification failed" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        with_ca = tmp_path / "with.yaml"
        with_ca.write_text(json.dumps({"collector": {**base, "ca_bundle": "collector.pem"}, "state_dir": str(state)}))
        r = ardoise("upload", "--config", str(with_ca))
        assert r.returncode == 0, r.stderr
        assert Spool.for_state_dir(state).pending() == []
    finally:
        harness.stop_collector(c)
