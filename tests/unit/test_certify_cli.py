"""`ardoise verify` and `ardoise key show`, run in-process."""

from __future__ import annotations

import json

import pytest

import certify_samples as S
from agent.certify import issue_certificate
from agent.certify.keys import PUBLIC_KEY_FILE, StationKey
from agent.cli import main


@pytest.fixture
def station(tmp_path, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setenv("ARDOISE_STATE_DIR", str(state))
    return StationKey.load_or_create(state)


@pytest.fixture
def certs(tmp_path, station):
    out = tmp_path / "out"
    return [issue_certificate(r, None, S.config(), station, out) for r in (S.overwrite_success(), S.interrupted())]


def test_verify_exits_0_when_all_are_valid_using_the_local_station_key(certs, capsys):
    assert main(["verify", *(str(c.json_path) for c in certs)]) == 0
    err = capsys.readouterr().err
    assert err.count(": valid: ") == 2 and "interrupted" in err


def test_verify_prints_one_line_per_invalid_file_and_exits_non_zero(tmp_path, certs, capsys):
    bad = tmp_path / "bad.json"
    bad.write_bytes(certs[0].json_path.read_bytes()[:100])
    rc = main(["verify", str(certs[0].json_path), str(bad), str(tmp_path / "missing.json")])
    assert rc != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    assert lines[1] == f"{bad}: INVALID: truncated: file ends early, at character 100: truncated"
    assert "missing-file" in lines[2]


def test_verify_with_another_stations_key_says_unknown_key(tmp_path, certs, capsys):
    other = StationKey.generate()
    (tmp_path / "other.pem").write_text(other.public_pem)
    assert main(["verify", "--key", str(tmp_path / "other.pem"), str(certs[0].json_path)]) != 0
    assert "unknown-key" in capsys.readouterr().err


def test_verify_with_a_keys_dir_and_json_output(tmp_path, station, certs, capsys):
    d = tmp_path / "trusted"
    d.mkdir()
    (d / "station.pem").write_text(station.public_pem)
    assert main(["verify", "--keys", str(d), "--json", str(certs[1].json_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["valid"] is True and out[0]["certificate_id"] == certs[1].id and out[0]["digest"] == certs[1].digest


def test_verify_without_any_key_asks_for_one_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ARDOISE_STATE_DIR", str(tmp_path / "empty"))
    f = tmp_path / "x.json"
    f.write_text("{}")
    assert main(["verify", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "a key is needed" in err


def test_key_show_prints_the_public_key_and_id(tmp_path, capsys):
    state = tmp_path / "s"
    assert main(["key", "show", "--state-dir", str(state), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["public_key"] == (state / PUBLIC_KEY_FILE).read_text()
    assert out["key_id"] == StationKey.load(state).key_id
    assert main(["key", "show", "--state-dir", str(state)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"key id: {out['key_id']}\n-----BEGIN PUBLIC KEY-----")


@pytest.mark.parametrize("option", ["--key", "--keys"])
def test_verify_with_a_key_that_is_not_a_key_is_a_usage_error(tmp_path, certs, capsys, option):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.pem").write_text("not a key\n")
    path = junk / "a.pem" if option == "--key" else junk
    assert main(["verify", option, str(path), str(certs[0].json_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a PEM Ed25519 key" in err[0]
def test_verify_prints_a_signed_serial_without_its_terminal_controls(tmp_path, station, capsys):
    # The signature is genuine: the serial is what the drive's firmware said, ESC included.
    c = issue_certificate(S.overwrite_success(serial="W3T0\x1b[2J\x1b]0;pwned\x07"), None, S.config(), station, tmp_path / "o")
    assert main(["verify", str(c.json_path)]) == 0
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert "W3T0\\x1b[2J\\x1b]0;pwned\\x07" in err
