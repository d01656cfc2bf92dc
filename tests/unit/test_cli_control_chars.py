"""Strings from hardware, certificates and enrollments reach a terminal as text: every
control character (ESC above all) is shown escaped, never sent. JSON stays JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

import certify_samples as S
from agent.certify import issue_certificate
from agent.certify.keys import StationKey
from agent.cli import main
from agent.cli.output import printable
from agent.records import Disk, Media, Transport

# Clear the screen, set the window title, then a bidi override: what a forged serial
# would use to make a terminal show something other than what is written.
HOSTILE = "SER\x1b[2J\x1b]0;pwned\x07\u202eKO\x00\n\x9b31m"


def no_control(text: str) -> None:
    for c in ("\x1b", "\x07", "\u202e", "\x00", "\x9b"):
        assert c not in text, repr(text)


def test_printable_escapes_controls_and_keeps_ordinary_text():
    assert printable("Samsung SSD 860 — Évo [red]") == "Samsung SSD 860 — Évo [red]"
    assert printable(HOSTILE) == "SER\\x1b[2J\\x1b]0;pwned\\x07\\u202eKO\\x00\\n\\x9b31m"


@pytest.fixture
def station(tmp_path, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setenv("ARDOISE_STATE_DIR", str(state))
    return StationKey.load_or_create(state)


def test_verify_prints_a_signed_hostile_serial_escaped(tmp_path, station, capsys):
    cert = issue_certificate(S.overwrite_success(serial=HOSTILE), None, S.config(), station, tmp_path / "out")
    assert main(["verify", str(cert.json_path)]) == 0
    err = capsys.readouterr().err
    no_control(err)
    assert "SER\\x1b[2J" in err


def test_verify_prints_a_hostile_unknown_keyid_escaped(tmp_path, station, capsys):
    cert = issue_certificate(S.overwrite_success(), None, S.config(), station, tmp_path / "out")
    envelope = json.loads(cert.json_path.read_text())
    envelope["signatures"][0]["keyid"] = HOSTILE
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(envelope))
    assert main(["verify", str(forged), "--json"]) == 6
    captured = capsys.readouterr()
    no_control(captured.err)
    # The JSON report keeps the exact string, escaped the JSON way.
    report = json.loads(captured.out)
    assert not report[0]["valid"]


def hostile_disk(path="/dev/loop9") -> Disk:
    return Disk(path=path, name="loop9", transport=Transport.LOOP, media=Media.VIRTUAL,
                model=HOSTILE, serial=HOSTILE, size_bytes=1 << 20, target=False, reasons=[f"excluded serial {HOSTILE}"])


def test_disks_table_escapes_controls_and_does_not_read_markup(monkeypatch, capsys):
    from agent import discover

    disk = hostile_disk()
    disk.model = "[bold red]FAKE[/bold red] [/]" + HOSTILE
    monkeypatch.setattr(discover, "disk_for_path", lambda *a, **k: disk)
    monkeypatch.setattr("agent.cli.disks.exclude_serials_from_config", lambda path: [])
    assert main(["disks", "/dev/loop9"]) == 0
    out = capsys.readouterr().out
    no_control(out)
    assert "[bold red]FAKE[/bold red]" in out.replace("\n", "")


def test_disks_json_stays_json(monkeypatch, capsys):
    from agent import discover

    monkeypatch.setattr(discover, "disk_for_path", lambda *a, **k: hostile_disk())
    monkeypatch.setattr("agent.cli.disks.exclude_serials_from_config", lambda path: [])
    assert main(["disks", "--json", "/dev/loop9"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["serial"] == HOSTILE


def test_plan_escapes_a_hostile_model_and_serial(monkeypatch, capsys, tmp_path):
    from agent import discover

    monkeypatch.setattr(discover, "disk_for_path", lambda *a, **k: hostile_disk())
    cfg = tmp_path / "ardoise.yaml"
    cfg.write_text("lot: L\n")
    assert main(["plan", "--config", str(cfg), "/dev/loop9"]) == 0
    out = capsys.readouterr().out
    no_control(out)
    assert "SER\\x1b[2J" in out


def test_collector_station_list_escapes_enrollment_names(monkeypatch, capsys):
    from server_stub import cli as collector_cli, stations

    now = datetime(2026, 12, 5, tzinfo=timezone.utc)
    info = stations.StationInfo("st_1", HOSTILE, "\x1b[2J" + "a" * 60, HOSTILE, now, None, 3)
    monkeypatch.setattr(stations, "list_stations", lambda db: [info])
    monkeypatch.setattr(collector_cli, "_open_db", lambda args: None)
    assert collector_cli.cmd_station_list(type("A", (), {"json": False})()) == 0
    out = capsys.readouterr().out
    no_control(out)
    assert "SER\\x1b[2J" in out



def test_log_lines_on_stderr_escape_controls_too(tmp_path, station, monkeypatch):
    import io
    import logging

    from agent.cli.output import PrintableFormatter

    installed = {}
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: installed.update(kw))
    cert = issue_certificate(S.overwrite_success(), None, S.config(), station, tmp_path / "out")
    main(["verify", str(cert.json_path)])
    (handler,) = installed["handlers"]
    assert isinstance(handler.formatter, PrintableFormatter)
    stream = io.StringIO()
    handler.setStream(stream)
    logger = logging.getLogger("ardoise.test-control")
    logger.addHandler(handler)
    try:
        logger.warning("serial %s", HOSTILE)
    finally:
        logger.removeHandler(handler)
    no_control(stream.getvalue())
    assert stream.getvalue() == "WARNING ardoise.test-control: serial " + printable(HOSTILE) + "\n"
