"""Engine, sessions and start-up migration.

SQLite is tuned for a single busy writer (WAL, synchronous=NORMAL: a crash may lose the
last transactions but never corrupts, and an acknowledged upload survives a process crash).
PostgreSQL may be shared by several collector processes; their start-up migrations are
serialized with an advisory lock.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import threading

from sqlalchemy import Engine, bindparam, create_engine, event, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from agent.errors import ConfigError
from server_stub.models import SCHEMA_VERSION, Base, SchemaVersion, utcnow

# The domain tables live in their packages; importing them registers them with Base.
from server_stub.accounts import models as _accounts_models  # noqa: E402,F401
from server_stub.lots import models as _lots_models  # noqa: E402,F401

log = logging.getLogger("ardoise.collector")

# Arbitrary but fixed: the key of the PostgreSQL advisory lock held while migrating.
_MIGRATION_LOCK = 0x41524457


POOL_SIZE = 8  # connections a collector process keeps open to its database


class Database:
    def __init__(self, url: str, *, pool_size: int = POOL_SIZE, sqlite_synchronous: str = "normal") -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.accounts_seen = False  # server_stub.accounts.service.accounts_exist remembers a yes
        self._checkpointer: _Checkpointer | None = None
        try:
            if self.is_sqlite and url.rstrip("/") in ("sqlite:", "sqlite:///:memory:"):
                # In-memory (tests, the OpenAPI document): one connection shared by all threads.
                self.engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
            elif self.is_sqlite:
                self.engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                                            pool_size=pool_size, max_overflow=16)
                if sqlite_synchronous.upper() not in ("NORMAL", "FULL"):
                    raise ConfigError("SQLite synchronous mode must be normal or full")
                sync = sqlite_synchronous.upper()
                event.listen(self.engine, "connect", lambda conn, _rec: _sqlite_pragmas(conn, sync))
                self._checkpointer = _Checkpointer(self.engine)
            else:
                # No pre-ping (a round trip per checkout): a connection broken by a server
                # restart fails one request, and SQLAlchemy then discards the whole pool.
                self.engine = create_engine(url, pool_size=pool_size, max_overflow=16, pool_recycle=1800)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise ConfigError(f"bad database URL {redact(url)}: {exc}") from None
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # One statement, one round trip. On PostgreSQL a lone read or insert needs no BEGIN
        # before it and no COMMIT or ROLLBACK after it (each a round trip, and the backend's
        # CPU, on every upload: the bearer check and the insert were six round trips, now
        # two); the statement is atomic on its own. SQLite keeps its transactions (its
        # writers are serialized by write_lock, and a read there costs no round trip).
        self.single = self.engine if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._lock_path = _sqlite_file(url) + "-writer.lock" if self.is_sqlite and _sqlite_file(url) else None
        self._lock_fd: int | None = None
        self._thread_lock = threading.Lock()

    @contextlib.contextmanager
    def write_lock(self):
        """Serialize SQLite writers of every worker process on a lock file.

        SQLite's own busy handler polls with sleeps of 1 to 100 ms, which shows as latency
        spikes when two uvicorn workers commit together; a blocking flock() wakes the next
        writer the moment the previous one commits. PostgreSQL needs no such thing.
        """
        if self._lock_path is None:
            yield
            return
        with self._thread_lock:
            if self._lock_fd is None:
                self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def start_checkpoints(self) -> None:
        """For a long-running server on SQLite: checkpoint the WAL in the background."""
        if self._checkpointer is not None:
            self._checkpointer.start()

    def session(self) -> Session:
        return self.sessions()

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _sqlite_file(url: str) -> str | None:
    """The database file of a sqlite:/// URL, None for an in-memory database."""
    path = url.split("://", 1)[1] if "://" in url else ""
    path = path[1:] if path.startswith("/") else path
    path = path.split("?", 1)[0]
    return path if path and path != ":memory:" else None


def _sqlite_pragmas(dbapi_conn, synchronous: str) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA synchronous={synchronous}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # Checkpoints (which write and sync the main file) run in a background thread instead
    # of inside whichever upload's commit crosses the threshold.
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


class _Checkpointer:
    """Moves the WAL into the database file every second, off the request path.

    PASSIVE never waits for readers or writers; what it cannot copy now it copies next time.
    Only the server starts it; a short CLI command's last connection checkpoints on close.
    """

    INTERVAL_S = 1.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._started = False
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if not self._started:
                self._started = True
                threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL_S):
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except SQLAlchemyError as exc:
                log.warning("WAL checkpoint failed: %s", _first_line(exc))

    def stop(self) -> None:
        self._stop.set()


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def migrate(db: Database) -> int:
    """Create or upgrade the schema; returns the schema version. Safe to run concurrently."""
    try:
        with db.engine.begin() as conn:
            if not db.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            Base.metadata.create_all(conn, checkfirst=True)
            current = conn.execute(select(SchemaVersion.version).order_by(SchemaVersion.version.desc())).first()
            if current is not None and current[0] > SCHEMA_VERSION:
                raise ConfigError(
                    f"database schema version {current[0]} is newer than this collector's ({SCHEMA_VERSION}); upgrade ardoise-collector")
            if current is None:
                conn.execute(SchemaVersion.__table__.insert().values(version=SCHEMA_VERSION))
                _default_workshop(conn)
            else:
                for step in range(current[0] + 1, SCHEMA_VERSION + 1):
                    _STEPS[step](conn)
                    conn.execute(SchemaVersion.__table__.insert().values(version=step))
    except SQLAlchemyError as exc:
        raise ConfigError(f"cannot open database {redact(db.url)}: {_first_line(exc)}") from None
    return SCHEMA_VERSION


def _default_workshop(conn) -> int:
    """The workshop of a single-workshop collector: created with the database, and what a
    database from before organisations migrates into. Returns its id."""
    from server_stub.accounts.models import DEFAULT_WORKSHOP, WORKSHOP, Organisation

    org = Organisation.__table__
    row = conn.execute(select(org.c.id).where(org.c.name == DEFAULT_WORKSHOP)).first()
    if row is not None:
        return row[0]
    return conn.execute(org.insert().values(name=DEFAULT_WORKSHOP, kind=WORKSHOP, created_at=utcnow())
                        .returning(org.c.id)).scalar_one()


def _to_v2(conn) -> None:
    """Schema 1 to 2: organisations, people and lot records. The new tables exist already
    (create_all); every station and token joins the default workshop, and every lot name
    in use becomes an open lot record of that workshop, so nothing is lost or hidden."""
    from server_stub.lots.models import Lot
    from server_stub.models import Certificate, EnrollmentToken, Station

    for table in ("stations", "enrollment_tokens"):
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN org_id INTEGER REFERENCES organisations (id)"))
        conn.execute(text(f"CREATE INDEX ix_{table}_org_id ON {table} (org_id)"))
    workshop = _default_workshop(conn)
    for model in (Station, EnrollmentToken):
        conn.execute(model.__table__.update().values(org_id=workshop))
    names: set[str] = set()
    for model in (Certificate, Station, EnrollmentToken):
        names |= {r[0] for r in conn.execute(select(model.lot).where(model.lot.is_not(None)).distinct())}
    if names:
        now = utcnow()
        conn.execute(Lot.__table__.insert(), [{"name": n, "workshop_id": workshop, "language": "fr",
                                                "status": "open", "created_at": now} for n in sorted(names)])


def _to_v3(conn) -> None:
    """Schema 2 to 3: the lot of each audit report, filed as an upload files it today
    (``ingest.lot_for``): the lot its signed payload names, else its station's lot. Without
    it, a machine with no disk (an audit report, no certificate) is in no lot."""
    import binascii

    from server_stub import fields
    from server_stub.models import AuditReport, Station

    conn.execute(text("ALTER TABLE audit_reports ADD COLUMN lot VARCHAR(200)"))
    conn.execute(text("CREATE INDEX ix_audit_reports_lot ON audit_reports (lot)"))
    a, st = AuditReport.__table__, Station.__table__
    station_lot = dict(conn.execute(select(st.c.id, st.c.lot)).all())
    updates = []
    for report_id, station_id, envelope in conn.execute(select(a.c.id, a.c.station_id, a.c.envelope)):
        try:
            lot = json.loads(base64.b64decode(json.loads(envelope)["payload"])).get("lot")
        except (ValueError, KeyError, TypeError, binascii.Error):
            lot = None  # stored envelopes were checked at upload; this is only a safety net
        if not isinstance(lot, str) or fields.lot_problem(lot):
            lot = station_lot.get(station_id)
        if lot is not None:
            updates.append({"rid": report_id, "new_lot": lot})
    if updates:
        conn.execute(a.update().where(a.c.id == bindparam("rid")).values(lot=bindparam("new_lot")), updates)


def _stored_verdicts(conn) -> None:
    """Schema 3 to 4 (self-contained: it touches only certificates' new columns; the new
    certificate_pdfs table exists already, from create_all, and starts empty: a PDF is
    rendered when first needed). Each certificate gets the destination, reason and WWN its
    payload gives, as an upload now stores them. Read and written in batches by id, so that
    a national database of a million rows is upgraded in bounded memory."""
    from server_stub import fields
    from server_stub.models import Certificate

    for column, kind in (("destination", "VARCHAR(32)"), ("destination_reason", "VARCHAR(32)"), ("wwn", "VARCHAR(200)")):
        conn.execute(text(f"ALTER TABLE certificates ADD COLUMN {column} {kind}"))
    t = Certificate.__table__
    update = t.update().where(t.c.id == bindparam("row_id")).values(
        destination=bindparam("d"), destination_reason=bindparam("r"), wwn=bindparam("w"))
    last = ""
    while True:
        rows = conn.execute(select(t.c.id, t.c.outcome, t.c.category, t.c.envelope).where(t.c.id > last)
                            .order_by(t.c.id).limit(_BACKFILL_BATCH)).all()
        if not rows:
            return
        values = []
        for row_id, outcome, category, envelope in rows:
            v = fields.verdict(_payload_of(envelope), outcome, category)
            values.append({"row_id": row_id, "d": str(v.decision.destination), "r": str(v.decision.reason), "w": v.wwn})
        conn.execute(update, values)
        last = rows[-1][0]


_BACKFILL_BATCH = 2000


def _payload_of(envelope: str):
    try:
        return json.loads(base64.b64decode(json.loads(envelope)["payload"]))
    except (ValueError, KeyError, TypeError, RecursionError):  # an unreadable legacy row: decided from its columns
        return None


# Upgrade steps: _STEPS[n] takes a database at version n-1 to version n.
_STEPS = {2: _to_v2, 3: _to_v3, 4: _stored_verdicts}


def _first_line(exc: Exception) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
