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
import base64
import io
import json
import os
import random
import shutil
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
from agent.certify.envelope import envelope_digest  # noqa: E402
from agent.certify.keys import StationKey  # noqa: E402
from server_stub import certpdfs, fields, receipts  # noqa: E402
from server_stub.db import Database, migrate  # noqa: E402

PG_URL = os.environ.get("ARDOISE_TEST_PG", "postgresql+psycopg://ardoise:ardoise@127.0.0.1/ardoise_test")
COLUMNS = ("id", "digest", "station_id", "key_id", "received_at", "serial", "model", "manufacturer", "media_type",
           "size_bytes", "lot", "outcome", "category", "method", "completed_at", "audit_ref", "destination",
           "destination_reason", "wwn", "envelope")
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


def _codes(payload, outcome: str, category: str | None) -> tuple[str, str, str | None]:
    """The schema-4 columns an upload stores (server_stub.fields.verdict)."""
    v = fields.verdict(payload, outcome, category)
    return str(v.decision.destination), str(v.decision.reason), v.wwn


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
        payload = json.loads(base64.b64decode(json.loads(env)["payload"]))
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
                codes = {(o, c): _codes(None, o, c) for o in ("success", "failed", "interrupted")
                         for c in ("Purge", "Clear", None)}
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
                    category = ("Purge" if media != "hdd" else "Clear") if outcome == "success" else None
                    buf.write(_line((str(uuid.UUID(int=rng.getrandbits(128))), f"{rng.getrandbits(256):064x}",
                                     sid, f"{pool_key.key_id}-{sidx}", received.strftime("%Y-%m-%d %H:%M:%S"), serial,
                                     model, manu, media, str(size), lot_name, outcome, category,
                                     METHODS[media], received.strftime("%Y-%m-%dT%H:%M:%SZ"), None,
                                     *codes[(outcome, category)], pool[i % len(pool)])))
                    if buf.tell() > 8 << 20:
                        cp.write(buf.getvalue())
                        buf = io.StringIO()
                for j, (serial, key, env, outcome, payload) in enumerate(lot_rows):
                    received = T0 + timedelta(seconds=SPAN_S + j)
                    category = "Clear" if outcome == "success" else None
                    buf.write(_line((str(uuid.uuid4()), envelope_digest(env),
                                     stations[j % 10][0], key.key_id, received.strftime("%Y-%m-%d %H:%M:%S"), serial,
                                     "TestDisk 1000", "ACME", "hdd", str(1 << 30), lot, outcome, category,
                                     "overwrite:zero", received.strftime("%Y-%m-%dT%H:%M:%SZ"), None,
                                     *_codes(payload, outcome, category), _copy_escape(env))))
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


def organise(db_url: str) -> None:
    """Each station in its workshop's organisation (schema 2), and the donor of the lot."""
    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("INSERT INTO organisations (name, kind, created_at) SELECT DISTINCT split_part(s.name, ' ', 1), "
                     "'workshop', now() FROM stations s WHERE s.org_id IS NULL AND NOT EXISTS "
                     "(SELECT 1 FROM organisations o WHERE o.name = split_part(s.name, ' ', 1))")
        conn.execute("UPDATE stations s SET org_id = o.id FROM organisations o "
                     "WHERE s.org_id IS NULL AND o.name = split_part(s.name, ' ', 1)")
        conn.execute("INSERT INTO organisations (name, kind, created_at) VALUES (%s, 'donor', now()) "
                     "ON CONFLICT (name) DO NOTHING", (DONOR,))


DONOR = "Région Auvergne-Rhône-Alpes"


def close_lot(db_url: str, lot: str, key: StationKey) -> None:
    """The measured lot as a donor's: a record of workshop ws-000, the donor's inventory of
    its 5,000 drives (CSV), reconciled and closed with a signed report (the 1 in 50 that
    failed are not sanitized, so a manager closes it with a reason)."""
    from server_stub.accounts.events import CLI
    from server_stub.errors import NotFound
    from server_stub.lots import service, wiring

    db = Database(db_url)
    try:
        try:
            record = service.find_lot(db, lot)
        except NotFound:
            record = service.create_lot(db, lot, "ws-000", CLI, donor=DONOR, language="fr")
        if record.status == "closed":
            log(step="lot_close", note="closed by an earlier run")
            return
        rows = service.lot_certificates(db, record)
        # A database loaded by an older bench gave the lot's rows random digests; the
        # bundle names files by the real one (what an upload stores).
        wrong = [{"i": c.id, "d": envelope_digest(c.envelope)} for c in rows if c.digest != envelope_digest(c.envelope)]
        if wrong:
            with db.engine.begin() as conn:
                conn.execute(text("UPDATE certificates SET digest = :d WHERE id = :i"), wrong)
        serials = [c.serial for c in rows]
        t = time.perf_counter()
        n = wiring.import_inventory(db, record, ("serial\r\n" + "".join(f"{x}\r\n" for x in serials)).encode(), CLI)
        import_s = time.perf_counter() - t
        t = time.perf_counter()
        wiring.close(db, record, CLI, key, reason="bench: the failed drives go to the WEEE partner")
        log(step="lot_close", declared=n, import_s=round(import_s, 2), close_s=round(time.perf_counter() - t, 2),
            loadavg=bench_collector.loadavg())
    finally:
        db.dispose()


_RENDERER = None


def _render_init(db_url: str) -> None:
    global _RENDERER
    _RENDERER = certpdfs.Renderer(Database(db_url, pool_size=1))


def _render(item: tuple[str, str]) -> bool:
    return _RENDERER.render_one(*item)


def render_pdfs(db_url: str, lot: str, base_url: str, processes: int) -> None:
    """What the collector's idle-time renderer does after each upload (certpdfs.Renderer
    .render_one), for the lot's 5,000 certificates at once, in ``processes`` processes."""
    import multiprocessing

    from server_stub.lots import service

    db = Database(db_url)
    record = service.find_lot(db, lot)
    ids = [c.id for c in service.lot_certificates(db, record, envelopes=False)]
    with db.engine.connect() as conn:
        done = {r[0] for r in conn.execute(text("SELECT certificate_id FROM certificate_pdfs WHERE language = :l"),
                                           {"l": record.language})}
    db.dispose()
    todo = [(i, base_url) for i in ids if i not in done]
    if not todo:
        log(step="certificate_pdfs", note="stored by an earlier run", stored=len(ids))
        return
    t = time.perf_counter()
    cpu = time.process_time()
    with multiprocessing.get_context("spawn").Pool(processes, _render_init, (db_url,)) as pool:
        ok = sum(pool.imap_unordered(_render, todo, chunksize=20))
    seconds = time.perf_counter() - t
    log(step="certificate_pdfs", rendered=ok, of=len(todo), processes=processes, seconds=round(seconds, 1),
        per_pdf_s=round(seconds * processes / len(todo), 3), loadavg=bench_collector.loadavg())


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


def fetch(url: str, pid: int, save: Path | None = None) -> dict:
    """GET read in 64 KiB chunks, as a browser saving a file: status, size, seconds to the
    first byte and to the end, and the server's peak RSS above its resting RSS."""
    with PeakRss(pid) as rss, open(save or os.devnull, "wb") as out:
        cpu = bench_collector.cpu_seconds(pid)
        t = time.perf_counter()
        with requests.get(url, stream=True, timeout=1800) as r:
            first = None
            size = 0
            for chunk in r.iter_content(65536):
                first = first or time.perf_counter() - t
                size += len(chunk)
                out.write(chunk)
            total = time.perf_counter() - t
    # The server's CPU for the request (its process tree): unlike the seconds, it hardly
    # depends on what else runs on the machine.
    cpu = bench_collector.cpu_seconds(pid) - cpu
    return {"status": r.status_code, "bytes": size, "first_byte_s": round(first or total, 3), "seconds": round(total, 3),
            "server_cpu_s": round(cpu, 3),
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


def measure_closed_lot(url: str, pid: int, sample: dict, key_pem: Path, workdir: Path) -> None:
    """The donor's lot once reconciled and closed: its page (with the reconciliation) and
    its bundle, streamed from the stored certificate PDFs and checked by verify_bundle."""
    from agent.certify.bundle import verify_bundle
    from agent.certify.keys import key_id, load_public_key

    lot = quote(sample["lot"], safe="")
    for view in ("first", "second"):
        log(step="closed_lot_page", view=view, **fetch(f"{url}/lots/{lot}", pid), loadavg=bench_collector.loadavg())
    out = workdir / "lot.zip"
    log(step="lot_bundle", **fetch(f"{url}/lots/{lot}?format=bundle", pid, save=out), loadavg=bench_collector.loadavg())
    t = time.perf_counter()
    public = load_public_key(key_pem.read_bytes(), source="collector key")
    report = verify_bundle(out, {key_id(public): public})
    log(step="verify_bundle", certificates=report.certificates, seconds=round(time.perf_counter() - t, 1))


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
    ap.add_argument("--render-processes", type=int, default=2,
                    help="processes rendering the lot's certificate PDFs before the bundle (the idle-time renderer's work)")
    ap.add_argument("--reuse", action="store_true", help="measure a database loaded by an earlier --keep run")
    ap.add_argument("--keep", action="store_true", help="keep the database (then --reuse measures it again)")
    args = ap.parse_args()
    rng = random.Random(13)
    lot = "Région ARA 2026 lot 5000"  # spaces and an accent, as donors write them
    db_url = args.pg.rsplit("/", 1)[0] + "/" + args.name
    if args.reuse:
        # A database loaded by an earlier run, perhaps by an older collector: upgrade it as
        # `ardoise-collector serve` would at start, and time the upgrade.
        db = Database(db_url)
        with db.engine.connect() as conn:
            before = conn.execute(text("SELECT max(version) FROM schema_version")).scalar()
        t = time.perf_counter()
        after = migrate(db)
        db.dispose()
        log(step="migrate", from_version=before, to_version=after, seconds=round(time.perf_counter() - t, 1),
            loadavg=bench_collector.loadavg())
        if before != after:
            # The upgrade rewrote every row (schema 4's backfill): as docs/collector.md says,
            # VACUUM ANALYZE after it, or counts read the heap until autovacuum passes.
            t = time.perf_counter()
            with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE certificates")
            log(step="vacuum_after_migrate", seconds=round(time.perf_counter() - t, 1))
        engine = create_engine(db_url)
        with engine.connect() as conn:
            serials = [r[0] for r in conn.execute(text("SELECT serial FROM certificates TABLESAMPLE SYSTEM (0.05)"))]
        engine.dispose()
        sample = {"serials": serials, "lot": lot}
    else:
        db_url = create_database(args.pg, args.name)
        sample = load(db_url, args.rows, args.lot_size, lot, rng)
    organise(db_url)
    key_path = Path(tempfile.gettempdir()) / f"{args.name}-collector-key.pem"
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as d:
            # The collector's key (what `serve` finds in its working directory): it signs the
            # lot report at closing here and the bundle's manifest there. Kept with the
            # database (--keep): a lot closed by an earlier run was signed with it.
            key = receipts.load_or_create(key_path)
            shutil.copy(key_path, Path(d) / "ardoise-collector-receipt-key.pem")
            (Path(d) / "collector.pem").write_text(key.public_pem)
            proc, url = bench_collector.start(db_url, args.workers, Path(d))
            try:
                measure(url, proc.pid, sample, rng, args.lookups)
                close_lot(db_url, lot, key)
                render_pdfs(db_url, lot, url, args.render_processes)
                measure_closed_lot(url, proc.pid, sample, Path(d) / "collector.pem", Path(d))
            finally:
                proc.terminate()
                proc.wait(20)
        if not args.skip_uploads:
            # The upload benchmark as it is, against the 1M-row database.
            subprocess.run([sys.executable, str(ROOT / "bench" / "bench_collector.py"), "--db", db_url,
                            "--workers", str(args.workers), "--uploads", str(args.uploads), "--workshop", "ws-000"],
                           check=False)
    finally:
        if not args.keep:
            drop_database(args.pg, args.name)
            key_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
