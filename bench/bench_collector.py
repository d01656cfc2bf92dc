#!/usr/bin/env python3
"""Load benchmark of the collector: N concurrent clients upload distinct signed
certificates over loopback to a real ``ardoise-collector serve``.

Reports uploads/s and p50/p99 latency, and checks that the number of certificates stored
equals the number acknowledged (201). Not a test: results go to BENCHMARKS.md.

    .venv/bin/python bench/bench_collector.py [--db sqlite|postgres|URL] [--clients 32]
        [--uploads 3000] [--workers 1]

The certificates are built and signed before the clock starts (with the agent's own
payload builder and signer). The client is a minimal asyncio HTTP/1.1 client on
keep-alive connections, so that as little CPU as possible is taken from the server on
this 2-core machine; it runs in this process while the collector runs in its own.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "collector"))

import requests  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402

import certs  # noqa: E402  (tests/collector/certs.py: real payloads via agent.certify)
from agent.certify.keys import StationKey  # noqa: E402
from agent.deliver.client import enrollment_message  # noqa: E402
from server_stub.models import Certificate  # noqa: E402

PG_URL = os.environ.get("ARDOISE_TEST_PG", "postgresql+psycopg://ardoise:ardoise@127.0.0.1/ardoise_test")
ADMIN = "bench-" + secrets.token_hex(4)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(db_url: str, workers: int, workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(workdir / "collector.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "server_stub.cli", "serve", "--port", str(port), "--db", db_url,
                             "--workers", str(workers), "--no-access-log"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                            env={**os.environ, "ARDOISE_ADMIN_PASSWORD": ADMIN})
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("collector did not start: " + (workdir / "collector.log").read_text()[-1500:])


def enroll(url: str, lot: str, workshop: str | None = None) -> tuple[StationKey, str]:
    # A collector with several workshops (bench_scale's 100) needs the station's named.
    body = {"lot": lot} if workshop is None else {"lot": lot, "workshop": workshop}
    token = requests.post(url + "/api/v1/admin/tokens", json=body, auth=("admin", ADMIN), timeout=10).json()
    key = StationKey.generate()
    challenge = requests.post(url + "/api/v1/stations/challenge", timeout=10).json()["challenge"]
    signature = base64.b64encode(key.sign(enrollment_message(challenge, token["token"], key.key_id))).decode()
    r = requests.post(url + "/api/v1/stations", json={"token": token["token"], "public_key": key.public_pem,
                                                      "challenge": challenge, "signature": signature}, timeout=10)
    r.raise_for_status()
    return key, r.json()["bearer"]


def build_requests(url: str, stations: list[tuple[StationKey, str]], n: int, run: str) -> list[bytes]:
    host = url.split("://", 1)[1]
    out = []
    for i in range(n):
        key, bearer = stations[i % len(stations)]
        body = certs.erasure_envelope(key, f"BENCH-{run}-{i:06d}", lot=f"BENCH-{run}")
        head = (f"POST /api/v1/certificates HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        out.append(head + body)
    return out


async def client(host: str, port: int, queue: asyncio.Queue, latencies: list[float], codes: dict) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            try:
                req = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t0 = time.perf_counter()
            writer.write(req)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            code = int(status_line.split()[1])
            codes[code] = codes.get(code, 0) + 1
    finally:
        writer.close()


async def load(url: str, reqs: list[bytes], clients: int) -> tuple[float, list[float], dict]:
    host, port = url.split("://", 1)[1].split(":")
    queue: asyncio.Queue = asyncio.Queue()
    for r in reqs:
        queue.put_nowait(r)
    latencies: list[float] = []
    codes: dict[int, int] = {}
    t0 = time.perf_counter()
    await asyncio.gather(*(client(host, int(port), queue, latencies, codes) for _ in range(clients)))
    return time.perf_counter() - t0, latencies, codes


def _tree(pid: int) -> list[int]:
    """The process and its descendants (uvicorn workers), from /proc."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process tree: the server's cost, whatever else loads the machine."""
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="sqlite", help="sqlite, postgres, or a database URL")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--uploads", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--workers", type=int, default=1, help="collector worker processes")
    ap.add_argument("--stations", type=int, default=8)
    ap.add_argument("--workshop", help="the stations' workshop, on a collector with several (bench_scale.py: ws-000)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-collector-") as d:
        workdir = Path(d)
        schema = None
        if args.db == "sqlite":
            db_url = f"sqlite:///{workdir / 'bench.db'}"
        elif args.db in ("postgres", "postgresql"):
            schema = "bench_" + secrets.token_hex(4)
            admin = create_engine(PG_URL)
            with admin.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {schema}"))
            db_url = f"{PG_URL}?options=-csearch_path%3D{schema}"
        else:
            db_url = args.db
        proc, url = start(db_url, args.workers, workdir)
        try:
            run = secrets.token_hex(3)
            stations = [enroll(url, f"BENCH-{run}", args.workshop) for _ in range(args.stations)]
            t_build = time.perf_counter()
            warm = build_requests(url, stations, args.warmup, run + "w")
            reqs = build_requests(url, stations, args.uploads, run)
            print(f"built and signed {len(warm) + len(reqs)} certificates in {time.perf_counter() - t_build:.1f} s "
                  f"({len(reqs[0])} bytes per request)", file=sys.stderr)
            asyncio.run(load(url, warm, args.clients))
            load_before = loadavg()
            server_cpu0, client_cpu0 = cpu_seconds(proc.pid), time.process_time()
            wall, lat, codes = asyncio.run(load(url, reqs, args.clients))
            server_cpu = cpu_seconds(proc.pid) - server_cpu0
            client_cpu = time.process_time() - client_cpu0
            engine = create_engine(db_url)
            with engine.connect() as conn:
                stored = conn.execute(select(func.count()).select_from(Certificate)
                                      .where(Certificate.lot == f"BENCH-{run}")).scalar_one()
            engine.dispose()
        finally:
            proc.terminate()
            proc.wait(20)
            if schema:
                with admin.begin() as conn:
                    conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
                admin.dispose()
    acked = codes.get(201, 0)
    result = {
        "db": "sqlite" if db_url.startswith("sqlite") else "postgresql", "workers": args.workers,
        "clients": args.clients, "uploads": len(lat), "seconds": round(wall, 2),
        "uploads_per_s": round(len(lat) / wall, 1), "p50_ms": round(1000 * statistics.median(lat), 1),
        "p99_ms": round(1000 * pct(lat, 99), 1), "max_ms": round(1000 * max(lat), 1),
        "status_codes": {str(k): v for k, v in sorted(codes.items())}, "acknowledged": acked, "stored": stored,
        "nothing_lost": stored == acked, "cpus": os.cpu_count(),
        # CPU per upload does not depend on what else runs on the machine; the rate does.
        "server_cpu_ms_per_upload": round(1000 * server_cpu / len(lat), 2),
        "client_cpu_ms_per_upload": round(1000 * client_cpu / len(lat), 2),
        "loadavg_before": load_before,
    }
    print(json.dumps(result))
    return 0 if stored == acked and acked == len(reqs) else 1


if __name__ == "__main__":
    sys.exit(main())
