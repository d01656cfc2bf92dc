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


def test_indexed_copies_of_payload_text_show_nul_and_mark_a_cut():
    # Never silently changed: a NUL is shown, a cut is marked (the envelope keeps the value).
    assert fields._text("WD\x00-123") == "WD\\x00-123"
    cut = fields._text("S" * 250)
    assert len(cut) == 200 and cut.endswith("…") and cut.startswith("S" * 199)
    assert fields._text("S" * 200) == "S" * 200


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


# --------------------------------------------------------------------------- login lockout, enrollment proof


def test_login_guard_counts_within_its_window_and_a_success_clears_the_address():
    from server_stub.errors import RateLimited
    from server_stub.lockout import LoginGuard

    now = [0.0]
    g = LoginGuard(client_limit=3, account_limit=5, window_s=10, lockout_s=30, clock=lambda: now[0])
    g.failed("a", "admin")
    g.failed("a", "admin")
    now[0] = 11  # the two failures above are out of the window
    g.failed("a", "admin")
    g.check("a", "admin")
    g.succeeded("a")
    g.failed("a", "admin")
    g.failed("a", "admin")
    g.check("a", "admin")  # the success cleared the address's count
    g.failed("a", "admin")
    with pytest.raises(RateLimited) as locked:
        g.check("a", "admin")
    assert locked.value.retry_after == pytest.approx(30)
    g.check("b", "admin")  # another address is not locked (4 account failures in the window < 5)
    g.failed("b", "admin")
    with pytest.raises(RateLimited, match="admin account"):
        g.check("c", "admin")
    now[0] = 11 + 31
    g.check("a", "admin")
    g.check("c", "admin")


def test_enrollment_challenge_is_ours_fresh_and_bound_to_token_and_key():
    import base64

    from agent.certify.keys import StationKey
    from agent.deliver.client import enrollment_message
    from server_stub import enrollproof
    from server_stub.errors import Unauthorized

    key = StationKey.generate()
    ch = enrollproof.new_challenge("secret", now=1000)

    def sig(challenge=ch, token="tok", k=key):
        return base64.b64encode(k.sign(enrollment_message(challenge, token, k.key_id))).decode()

    enrollproof.check("secret", ch, sig(), "tok", key.public_key, key.key_id, now=1000 + 299)
    bad = [
        ("secret", ch, sig(), "tok", 1000 + 301, "expired"),
        ("another-secret", ch, sig(), "tok", 1000, "unknown"),
        ("secret", ch[:-1] + ("0" if ch[-1] != "0" else "1"), sig(), "tok", 1000, "unknown"),
        ("secret", ch, sig(token="other"), "tok", 1000, "signature"),
        ("secret", ch, sig(k=StationKey.generate()), "tok", 1000, "signature"),
        ("secret", ch, "not base64!", "tok", 1000, "signature"),
        ("secret", "ardch_", sig(), "tok", 1000, "unknown"),
    ]
    for secret, challenge, signature, token, now, why in bad:
        with pytest.raises(Unauthorized, match=why):
            enrollproof.check(secret, challenge, signature, token, key.public_key, key.key_id, now=now)


def _stored_row(envelope: str, digest: str, **columns):
    from server_stub.models import Certificate
    return Certificate(id=digest, digest=digest, envelope=envelope, **columns)


def test_a_certificate_in_a_list_is_parsed_once_for_its_decision_and_its_drive(monkeypatch):
    # A cold 5,000-drive lot page decoded every envelope twice (decision, then WWN), each
    # time re-checking its canonical form: 2.9 s of the page at 1M rows (BENCHMARKS.md).
    import base64
    import json

    payload = {"sanitization": {"outcome": "success", "category": "Purge"}, "health": {"verdict": "good"},
               "media": {"wwn": "0x5000c500a1b2c3d4"}}
    env = json.dumps({"payload": base64.b64encode(json.dumps(payload).encode()).decode()})
    calls = []
    real = base64.b64decode
    monkeypatch.setattr(queries.base64, "b64decode", lambda *a, **k: calls.append(1) or real(*a, **k))
    c = _stored_row(env, "sha256:parsed-once-" + str(id(calls)))
    assert queries.decision(c).destination == "reuse"
    assert queries.drive_keys(c) == {("wwn", "0x5000c500a1b2c3d4")}
    assert queries.latest_per_drive([c]) == [c]
    assert len(calls) == 1


def test_a_legacy_payload_of_odd_shape_is_decided_from_its_columns():
    import base64
    import json

    env = json.dumps({"payload": base64.b64encode(json.dumps({"sanitization": ["odd"], "media": "x"}).encode()).decode()})
    c = _stored_row(env, "sha256:odd-shape", outcome="failed", category=None)
    assert queries.decision(c).result == "failed"
    assert queries.drive_keys(c) == set()
    assert queries.decision(_stored_row("not json", "sha256:not-json", outcome="success", category="Clear")).sanitized
