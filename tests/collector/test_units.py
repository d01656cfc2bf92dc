"""Pure pieces of the collector, without a server."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from server_stub import db, fields, progress, queries, settings
from server_stub.errors import Malformed


def test_token_bucket_allows_a_burst_then_refuses_until_refilled(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    bucket = progress.TokenBucket(rate=2.0, burst=3.0)
    assert [bucket.take("st") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("st") == pytest.approx(0.5)
    assert bucket.take("other") == 0.0  # per station
    now[0] += 0.5
    assert bucket.take("st") == 0.0


def test_dates_and_times_for_queries():
    assert queries.parse_when("2026-11-27", "since") == datetime(2026, 11, 27, tzinfo=timezone.utc)
    assert queries.parse_when("2026-11-27", "until", end=True) == datetime(2026, 11, 28, tzinfo=timezone.utc)
    assert queries.parse_when("2026-11-27T10:00:00Z", "since") == datetime(2026, 11, 27, 10, tzinfo=timezone.utc)
    assert queries.parse_when("", "since") is None
    with pytest.raises(Malformed, match="since must be a date"):
        queries.parse_when("last tuesday", "since")


@pytest.mark.parametrize("cell, shown", [("=1+1", "'=1+1"), ("+33 6", "'+33 6"), ("-x", "'-x"), ("@SUM", "'@SUM"),
                                         ("WD-123", "WD-123"), (None, ""), (42, "42")])
def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(cell, shown):
    assert queries._csv_safe(cell) == shown


def test_database_urls_are_normalized_and_passwords_never_shown():
    assert settings.normalize_db_url("postgresql://u:p@h/d") == "postgresql+psycopg://u:p@h/d"
    assert settings.normalize_db_url("/var/lib/c.db") == "sqlite:////var/lib/c.db"
    assert settings.normalize_db_url("sqlite:///x.db") == f"sqlite:///{Path.cwd() / 'x.db'}"
    assert settings.normalize_db_url("sqlite:////srv/x.db") == "sqlite:////srv/x.db"
    assert db.redact("postgresql+psycopg://ardoise:s3cret@db.example/ardoise") == \
        "postgresql+psycopg://ardoise:***@db.example/ardoise"


def test_audit_summary_finds_the_machine_and_each_disk_serial_once():
    s = fields.summarize_audit({"report_id": "r1", "machine": {"system": {"vendor": "LENOVO", "model": "T480"}},
                                "disks": [{"serial": "A"}, {"serial": "A"}, {"serial": None}, {"serial": "B"}]},
                               "digest")
    assert (s.id, s.machine, s.serials) == ("r1", "LENOVO T480", ["A", "B"])


def test_progress_batch_is_parsed_into_typed_drives():
    items = progress.parse_items({"drives": [{"device": "/dev/sda", "bytes_done": 5, "bytes_total": 10},
                                             {"device": "/dev/sdb", "state": "done"}]})
    assert [(p.device, p.state, p.percent) for p in items] == [("/dev/sda", "running", 50.0),
                                                               ("/dev/sdb", "done", None)]
    with pytest.raises(Malformed, match="at most 64"):
        progress.parse_items({"drives": [{"device": "/dev/sda"}] * 65})


def test_indexed_copies_of_payload_text_drop_nul_characters():
    assert fields._text("WD\x00-123") == "WD-123"


@pytest.mark.parametrize("mode, level", [("normal", 1), ("full", 2)])
def test_sqlite_runs_in_wal_mode_with_the_chosen_synchronous_level(tmp_path, mode, level):
    d = db.Database(f"sqlite:///{tmp_path}/s.db", sqlite_synchronous=mode)
    with d.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == level
    d.dispose()


def test_sqlite_checkpoints_run_in_the_background_not_in_commits(tmp_path):
    d = db.Database(f"sqlite:///{tmp_path}/c.db")
    with d.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    d.start_checkpoints()
    d.dispose()
