"""A real collector for the tests: ``ardoise-collector serve`` in a subprocess on a free
loopback port, on SQLite or on a fresh schema of a real PostgreSQL."""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select, text

from agent.certify.keys import StationKey
from agent.deliver.client import enrollment_message
from server_stub.models import AuditDisk, AuditReport, Certificate, EnrollmentToken, LiveProgress, Station

ADMIN_PASSWORD = "test-admin-" + secrets.token_hex(4)
PG_URL = os.environ.get("ARDOISE_TEST_PG", "postgresql+psycopg://ardoise:ardoise@127.0.0.1/ardoise_test")
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Collector:
    url: str
    db_url: str
    proc: subprocess.Popen
    log: Path
    verify: str | bool = True
    engine: object = None
    _stations: list = field(default_factory=list)

    def api(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 30)
        kw.setdefault("verify", self.verify)
        return requests.request(method, self.url + path, **kw)

    def admin(self, method: str, path: str, **kw) -> requests.Response:
        return self.api(method, path, auth=("admin", ADMIN_PASSWORD), **kw)

    def token(self, lot: str | None = "LOT-A") -> str:
        r = self.admin("POST", "/api/v1/admin/tokens", json={"lot": lot})
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def enrollment(self, key: StationKey, token: str, **extra) -> dict:
        """An enrollment body as the agent sends it: signed challenge included."""
        r = self.api("POST", "/api/v1/stations/challenge")
        assert r.status_code == 200, r.text
        challenge = r.json()["challenge"]
        signature = base64.b64encode(key.sign(enrollment_message(challenge, token, key.key_id))).decode()
        return {"token": token, "public_key": key.public_pem, "challenge": challenge, "signature": signature,
                **extra}

    def enroll(self, key: StationKey | None = None, lot: str | None = "LOT-A") -> "EnrolledStation":
        key = key or StationKey.generate()
        r = self.api("POST", "/api/v1/stations",
                     json=self.enrollment(key, self.token(lot), name="station-" + key.key_id[:6]))
        assert r.status_code == 201, r.text
        body = r.json()
        return EnrolledStation(self, key, body["station_id"], body["bearer"])

    def counts(self) -> dict[str, int]:
        """Rows of every table: what "nothing stored" is checked against."""
        with self.engine.connect() as conn:
            return {m.__tablename__: conn.execute(select(func.count()).select_from(m)).scalar_one()
                    for m in (Certificate, AuditReport, AuditDisk, Station, EnrollmentToken, LiveProgress)}


@dataclass
class EnrolledStation:
    collector: Collector
    key: StationKey
    station_id: str
    bearer: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.bearer}", "Content-Type": "application/json"}

    def upload(self, body: bytes, path: str = "/api/v1/certificates", **kw) -> requests.Response:
        return self.collector.api("POST", path, data=body, headers={**self.headers, **kw.pop("headers", {})}, **kw)


def start_collector(db_url: str, tmp: Path, *, extra_args=(), env_extra=None, tls=None) -> Collector:
    port = free_port()
    log = tmp / f"collector-{port}.log"
    env = {**os.environ, "ARDOISE_ADMIN_PASSWORD": ADMIN_PASSWORD, **(env_extra or {})}
    argv = [sys.executable, "-m", "server_stub.cli", "serve", "--port", str(port), "--db", db_url,
            *extra_args]
    scheme, verify = "http", True
    if tls:
        argv += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        scheme, verify = "https", str(tls[2])
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(tmp))
    c = Collector(f"{scheme}://127.0.0.1:{port}", db_url, proc, log, verify)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"collector exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if c.api("GET", "/healthz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"collector did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    c.engine = create_engine(db_url)
    return c


def stop_collector(c: Collector) -> None:
    c.proc.terminate()
    try:
        c.proc.wait(10)
    except subprocess.TimeoutExpired:
        c.proc.kill()
        c.proc.wait()
    if c.engine is not None:
        c.engine.dispose()


class PgSchema:
    """A fresh PostgreSQL schema for one test session, dropped at the end."""

    def __init__(self) -> None:
        self.name = "ardoise_t_" + secrets.token_hex(4)
        self.admin_engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with self.admin_engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {self.name}"))
        sep = "&" if "?" in PG_URL else "?"
        self.url = f"{PG_URL}{sep}options=-csearch_path%3D{self.name}"

    def drop(self) -> None:
        with self.admin_engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {self.name} CASCADE"))
        self.admin_engine.dispose()


def pg_schema_or_skip() -> PgSchema:
    try:
        return PgSchema()
    except Exception as exc:  # noqa: BLE001 - any failure to reach it means "unreachable"
        reason = f"PostgreSQL unreachable at {PG_URL.split('@')[-1]}: {str(exc).splitlines()[0]}"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI must run the PostgreSQL tests)")
        pytest.skip(reason)




FIXTURES = Path(__file__).parent / "fixtures"


def fixture_database(request, tmp_path, name: str):
    """A recorded database (``fixtures/<name>``, made by an older collector), for a fixture
    parametrized "sqlite"/"postgres": the file itself on SQLite; on PostgreSQL, its tables
    (as reflected from that file) and rows copied into a fresh schema."""
    import shutil

    from sqlalchemy import Integer, MetaData

    path = tmp_path / name
    shutil.copy(FIXTURES / name, path)
    if request.param == "sqlite":
        yield f"sqlite:///{path}"
        return
    schema = pg_schema_or_skip()
    src, dst = create_engine(f"sqlite:///{path}"), create_engine(schema.url)
    meta = MetaData()
    meta.reflect(src)
    for table in meta.tables.values():
        for column in table.columns:
            column.type = column.type.as_generic()  # SQLite's DATETIME is PostgreSQL's TIMESTAMP
    meta.create_all(dst)
    with src.connect() as a, dst.begin() as b:
        for table in meta.sorted_tables:
            rows = [dict(r) for r in a.execute(table.select()).mappings()]
            if rows:
                b.execute(table.insert(), rows)
        for table in meta.sorted_tables:  # the copied rows' ids are taken: sequences go past them
            if "id" in table.c and table.c.id.autoincrement and isinstance(table.c.id.type.as_generic(), Integer):
                if b.execute(text(f"SELECT max(id) FROM {table.name}")).scalar() is not None:
                    b.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                   f"(SELECT max(id) FROM {table.name}))"))
    src.dispose()
    dst.dispose()
    try:
        yield schema.url
    finally:
        schema.drop()
