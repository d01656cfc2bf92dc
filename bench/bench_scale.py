#!/usr/bin/env python3
"""Scale benchmark of the collector on PostgreSQL: a national network's database (about
100 workshops, 1,000 stations, 1,000,000 certificates), then what people do with it.

    .venv/bin/python bench/bench_scale.py [--rows 1000000] [--lot-size 5000] [--keep]
        [--skip-uploads] [--pg postgresql+psycopg://ardoise:ardoise@127.0.0.1/ardoise_test]

It creates a database of its own (``ardoise_bench``; dropped at the end unless --keep),
makes the schema with the collector's own ``migrate``, and COPYs the rows in. Then, on a
real ``ardoise-collector serve`` on loopback (uvicorn, as a workshop runs it), it measures:

- search by serial: ``GET /api/v1/certificates?serial=`` for random stored serials, p50/p99
  (target p99 <= 50 ms);
- the lot page of a 5,000-device lot, ``GET /lots/{lot}``: first view and next one
  (target <= 1 s);
- the lot's exports, ``?format=csv`` and ``?format=pdf``, read in chunks as a client would,
  with the server's peak RSS above its resting RSS (the donor's bundle, target <= 60 s in
  bounded memory, is measured the same way at ``/lots/{lot}/bundle.zip`` once it exists);
- uploads at 1M rows: ``bench_collector.py`` against the same database (target >= 500/s).

Not a test: it prints one JSON line per figure; results go to BENCHMARKS.md.

The rows: 1,000 stations in 100 workshops; certificates spread over three years, 95 %
successes, 1 in 20 a drive wiped again. The measured lot's 5,000 certificates are real
signed envelopes (the agent's payload builder and signer): the lot page decodes every one.
The other rows carry real envelopes too, drawn from a pool of signed ones (so the table and
its TOAST have their real size), each row with its own id, serial and digest.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "collector"))
sys.path.insert(0, str(ROOT / "bench"))

import psycopg  # noqa: E402
import requests  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

import bench_collector  # noqa: E402  (start(), cpu_seconds(), pct(), loadavg())
import certs  # noqa: E402
from agent.certify.keys import StationKey  # noqa: E402
from server_stub.db import Database, migrate  # noqa: E402

PG_URL = os.environ.get("ARDOISE_TEST_PG", "postgresql+psycopg://ardoise:ardoise@127.0.0.1/ardoise_test")
COLUMNS = ("id", "digest", "station_id", "key_id", "received_at", "serial", "model", "manufacturer", "media_type",
           "size_bytes", "lot", "outcome", "category", "method", "completed_at", "audit_ref", "envelope")
MODELS = [("Samsung", "MZ7LN256HAJQ", "ssd", 256_060_514_304), ("WDC", "WD5000LPLX-75ZNTT1", "hdd", 500_107_862_016),
          ("SK hynix", "PC401 NVMe 512GB", "nvme", 512_110_190_592), ("Toshiba", "MQ01ABF050", "hdd", 500_107_862_016),
          ("Micron", "MTFDDAK256TBN", "ssd", 256_060_514_304), ("Samsung", "PM981 NVMe 1TB", "nvme", 1_024_209_543_168)]
METHODS = {"ssd": "ata-sanitize:crypto", "hdd": "overwrite:zero", "nvme": "nvme-format:crypto"}
T0 = datetime(2024, 1, 1)
SPAN_S = 3 * 365 * 86400


def log(**figures) -> None:
    print(json.dumps(figures), flush=True)


def _copy_escape(s: str) -> str:
    """A value in PostgreSQL's COPY text format."""
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _line(values) -> str:
    return "\t".join("\\N" if v is None else v for v in values) + "\n"


def create_database(admin_url: str, name: str) -> str:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_database(admin_url: str, name: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    engine.dispose()


def load(db_url: str, rows: int, lot_size: int, lot: str, rng: random.Random) -> dict:
    """Schema by migrate(), then stations and certificates by COPY. Returns what the
    measurements need: serials to look up, the lot's name."""
    db = Database(db_url)
    migrate(db)
    db.dispose()
    conninfo = db_url.replace("postgresql+psycopg://", "postgresql://")
    lot_keys = [StationKey.generate() for _ in range(10)]
    pool_key = StationKey.generate()
    t = time.perf_counter()
    pool = [_copy_escape(certs.erasure_envelope(pool_key, f"POOL-{i}").decode()) for i in range(64)]
    lot_rows = []
    for i in range(lot_size):
        key = lot_keys[i % len(lot_keys)]
        serial = f"LOT5K-{i:05d}"
        env = certs.erasure_envelope(key, serial, lot=lot, finished_at=f"2026-11-{1 + i % 27:02d}T10:00:15Z",
                                     outcome="success" if i % 50 else "failed")
        payload = json.loads(env)["payload"]
        lot_rows.append((serial, key, env.decode(), "success" if i % 50 else "failed", payload))
    signing_s = time.perf_counter() - t

    stations = [(f"st-{i:04d}", f"ws-{i // 10:03d}") for i in range(1000)]
    t = time.perf_counter()
    serial_sample: list[str] = []
    with psycopg.connect(conninfo) as conn:
        # Bulk-load practice: the secondary indexes are built once after the COPY (a sort)
        # rather than row by row; the schema at the end is migrate()'s, index for index.
        indexes = [r[0] for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'certificates' AND indexname LIKE 'ix_%'")]
        for ddl in indexes:
            conn.execute("DROP INDEX " + ddl.split(" INDEX ", 1)[1].split(" ON ", 1)[0])
        with conn.cursor() as cur:
            with cur.copy("COPY stations (id, name, key_id, public_pem, bearer_hash, lot, enrolled_at) FROM STDIN") as cp:
                buf = io.StringIO()
                for i, (sid, ws) in enumerate(stations):
                    key = lot_keys[i] if i < len(lot_keys) else pool_key
                    key_id = key.key_id if i < len(lot_keys) else f"{pool_key.key_id}-{i}"
                    buf.write(_line((sid, f"{ws} bench {i}", key_id, _copy_escape(key.public_pem), uuid.uuid4().hex * 2,
                                     None, "2024-01-01 00:00:00")))
                cp.write(buf.getvalue())
            # Each workshop's lots are a few hundred certificates; the measured lot is one of them.
            with cur.copy(f"COPY certificates ({', '.join(COLUMNS)}) FROM STDIN") as cp:
                buf = io.StringIO()
                recent: list[str] = []
                filler = rows - lot_size
                for i in range(filler):
                    sidx = rng.randrange(1000)
                    sid = stations[sidx][0]
                    if recent and rng.random() < 0.05:
                        serial = rng.choice(recent)  # the same drive wiped again
                    else:
                        serial = f"{rng.getrandbits(56):014X}"
                        if len(recent) < 5000:
                            recent.append(serial)
                        else:
                            recent[rng.randrange(5000)] = serial
                    if i % 5000 == 0:
                        serial_sample.append(serial)
                    manu, model, media, size = MODELS[rng.randrange(len(MODELS))]
                    r = rng.random()
                    outcome = "success" if r < 0.95 else ("failed" if r < 0.98 else "interrupted")
                    received = T0 + timedelta(seconds=SPAN_S * i // filler)
                    lot_name = f"{stations[sidx][1]}-L{i * 5000 // filler:04d}"
                    buf.write(_line((str(uuid.UUID(int=rng.getrandbits(128))), f"sha256:{rng.getrandbits(256):064x}",
                                     sid, f"{pool_key.key_id}-{sidx}", received.strftime("%Y-%m-%d %H:%M:%S"), serial,
                                     model, manu, media, str(size), lot_name, outcome,
                                     ("Purge" if media != "hdd" else "Clear") if outcome == "success" else None,
                                     METHODS[media], received.strftime("%Y-%m-%dT%H:%M:%SZ"), None,
                                     pool[i % len(pool)])))
                    if buf.tell() > 8 << 20:
                        cp.write(buf.getvalue())
                        buf = io.StringIO()
                for j, (serial, key, env, outcome, _) in enumerate(lot_rows):
                    received = T0 + timedelta(seconds=SPAN_S + j)
                    buf.write(_line((str(uuid.uuid4()), f"sha256:{uuid.uuid4().hex}{uuid.uuid4().hex}",
                                     stations[j % 10][0], key.key_id, received.strftime("%Y-%m-%d %H:%M:%S"), serial,
                                     "TestDisk 1000", "ACME", "hdd", str(1 << 30), lot, outcome,
                                     "Clear" if outcome == "success" else None, "overwrite:zero",
                                     received.strftime("%Y-%m-%dT%H:%M:%SZ"), None, _copy_escape(env))))
                cp.write(buf.getvalue())
        conn.commit()
        copy_s = time.perf_counter() - t
        t = time.perf_counter()
        for ddl in indexes:
            conn.execute(ddl)
        conn.commit()
        index_s = time.perf_counter() - t
        t = time.perf_counter()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE certificates")
        conn.execute("VACUUM ANALYZE stations")
        analyze_s = time.perf_counter() - t
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        count = conn.execute("SELECT count(*) FROM certificates").fetchone()[0]
    log(step="load", rows=count, stations=len(stations), signing_s=round(signing_s, 1), copy_s=round(copy_s, 1),
        rows_per_s=round(rows / copy_s), indexes=len(indexes), index_s=round(index_s, 1), vacuum_analyze_s=round(analyze_s, 1), database_size=size)
    return {"serials": serial_sample + [r[0] for r in lot_rows[::250]], "lot": lot}


def rss_of_tree(pid: int) -> int:
    total = 0
    for p in bench_collector._tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class PeakRss:
    """The server's resident memory, sampled every 20 ms while a request runs."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self.rest = rss_of_tree(pid)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_of_tree(self.pid))
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def fetch(url: str, pid: int) -> dict:
    """GET read in 64 KiB chunks, as a browser saving a file: status, size, seconds to the
    first byte and to the end, and the server's peak RSS above its resting RSS."""
    with PeakRss(pid) as rss:
        t = time.perf_counter()
        with requests.get(url, stream=True, timeout=600) as r:
            first = None
            size = 0
            for chunk in r.iter_content(65536):
                first = first or time.perf_counter() - t
                size += len(chunk)
            total = time.perf_counter() - t
    return {"status": r.status_code, "bytes": size, "first_byte_s": round(first or total, 3), "seconds": round(total, 3),
            "server_rss_mb_at_rest": round(rss.rest / 1e6), "server_rss_mb_above_rest": round((rss.peak - rss.rest) / 1e6)}


def measure(url: str, pid: int, sample: dict, rng: random.Random, lookups: int) -> None:
    session = requests.Session()
    serials = sample["serials"]
    lat = []
    for _ in range(lookups):
        serial = rng.choice(serials)
        t = time.perf_counter()
        r = session.get(f"{url}/api/v1/certificates", params={"serial": serial}, timeout=30)
        lat.append(time.perf_counter() - t)
        assert r.status_code == 200 and r.json()["total"] >= 1, (serial, r.text[:200])
    log(step="search_by_serial", lookups=len(lat), p50_ms=round(1000 * statistics.median(lat), 1),
        p99_ms=round(1000 * bench_collector.pct(lat, 99), 1), max_ms=round(1000 * max(lat), 1),
        loadavg=bench_collector.loadavg())
    log(step="dashboard", **fetch(f"{url}/", pid), loadavg=bench_collector.loadavg())
    lot = quote(sample["lot"], safe="")
    for view in ("first", "second"):
        figures = fetch(f"{url}/lots/{lot}", pid)
        log(step="lot_page", view=view, **figures, loadavg=bench_collector.loadavg())
    for fmt in ("csv", "pdf"):
        log(step="lot_export", format=fmt, **fetch(f"{url}/lots/{lot}?format={fmt}", pid),
            loadavg=bench_collector.loadavg())
    # The donor's bundle (issue 13), measured here as soon as the collector serves it.
    bundle = fetch(f"{url}/lots/{lot}/bundle.zip", pid)
    if bundle["status"] == 200:
        log(step="lot_bundle", **bundle, loadavg=bench_collector.loadavg())
    else:
        log(step="lot_bundle", status=bundle["status"], note="this collector has no bundle route yet")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg", default=PG_URL, help="a PostgreSQL URL whose role may CREATE DATABASE")
    ap.add_argument("--name", default="ardoise_bench", help="the database created (and dropped)")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--lot-size", type=int, default=5000)
    ap.add_argument("--lookups", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--uploads", type=int, default=3000)
    ap.add_argument("--skip-uploads", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="measure a database loaded by an earlier --keep run")
    ap.add_argument("--keep", action="store_true", help="keep the database (then --reuse measures it again)")
    args = ap.parse_args()
    rng = random.Random(13)
    lot = "Région ARA 2026 lot 5000"  # spaces and an accent, as donors write them
    db_url = args.pg.rsplit("/", 1)[0] + "/" + args.name
    if args.reuse:
        engine = create_engine(db_url)
        with engine.connect() as conn:
            serials = [r[0] for r in conn.execute(text("SELECT serial FROM certificates TABLESAMPLE SYSTEM (0.05)"))]
        engine.dispose()
        sample = {"serials": serials, "lot": lot}
    else:
        db_url = create_database(args.pg, args.name)
        sample = load(db_url, args.rows, args.lot_size, lot, rng)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as d:
            proc, url = bench_collector.start(db_url, args.workers, Path(d))
            try:
                measure(url, proc.pid, sample, rng, args.lookups)
            finally:
                proc.terminate()
                proc.wait(20)
        if not args.skip_uploads:
            # The upload benchmark as it is, against the 1M-row database.
            subprocess.run([sys.executable, str(ROOT / "bench" / "bench_collector.py"), "--db", db_url,
                            "--workers", str(args.workers), "--uploads", str(args.uploads)], check=False)
    finally:
        if not args.keep:
            drop_database(args.pg, args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
