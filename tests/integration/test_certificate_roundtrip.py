"""Wipe a real loop device, certify it, and verify the certificate offline, as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agent.certify import issue_certificate
from agent.certify.check import check_file
from agent.certify.keys import PUBLIC_KEY_FILE, StationKey, load_public_keys

pytestmark = pytest.mark.root

SIZE = 8 << 20


def ardoise(*args: str, env_state: Path | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "ardoise"
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "agent"]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=300)


def test_wipe_then_verify_round_trip_on_a_loop_device(loopdevs, tmp_path):
    dev = loopdevs.create(SIZE, fill=b"\xa5\x5a")
    state, out = tmp_path / "state", tmp_path / "out"
    wipe = ardoise("wipe", dev, "--method", "zero", "--verify", "full", "--yes", "--out", str(out), "--state-dir", str(state))
    assert wipe.returncode == 0, wipe.stderr
    with open(dev, "rb") as f:
        assert f.read() == bytes(SIZE)

    certs = sorted(out.glob("*.json"))
    pdfs = sorted(out.glob("*.pdf"))
    assert len(certs) == 1 and len(pdfs) == 1 and certs[0].stem == pdfs[0].stem
    assert certs[0].name.startswith(Path(dev).name + "-")  # a loop device has no serial

    pub = state / PUBLIC_KEY_FILE
    ok = ardoise("verify", "--key", str(pub), "--json", str(certs[0]))
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)[0]
    assert report["valid"] and report["certificate_id"] in certs[0].name

    payload = check_file(certs[0], load_public_keys(pub)).payload
    assert payload["sanitization"]["outcome"] == "success"
    assert payload["sanitization"]["category"] == "Clear"
    assert payload["sanitization"]["bytes_written"] == SIZE
    assert payload["verification"] == {**payload["verification"], "method": "full", "result": "passed", "bytes_read": SIZE}

    text = subprocess.run(["pdftotext", str(pdfs[0]), "-"], capture_output=True, text=True, check=True).stdout
    assert report["digest"] in text and "overwrite:zero" in text and "SUCCESS" in text

    tampered = tmp_path / "tampered.json"
    data = bytearray(certs[0].read_bytes())
    i = data.index(b'"payload": "') + 40
    data[i] = ord("A") if data[i] != ord("A") else ord("B")
    tampered.write_bytes(bytes(data))
    bad = ardoise("verify", "--key", str(pub), str(certs[0]), str(tampered))
    assert bad.returncode != 0
    assert f"{tampered}: INVALID: bad-signature" in bad.stderr
    assert f"{certs[0]}: valid" in bad.stderr


def test_interrupted_wipe_of_a_loop_device_is_certified_as_interrupted(loopdevs, tmp_path):
    from agent import discover
    from agent.sanitize.overwrite import result_from_step, run_overwrite

    dev = loopdevs.create(SIZE, fill=b"\xa5")
    disk = discover.require_targets([dev])[0]
    cancel = threading.Event()
    cancel.set()  # the operator pressed cancel before the first write completed
    result = result_from_step(disk, run_overwrite(disk, "zero", verify="full", cancel=cancel))
    assert result.outcome.value == "interrupted"
    key = StationKey.load_or_create(tmp_path / "state")
    files = issue_certificate(result, None, None, key, tmp_path / "out")
    report = check_file(files.json_path, {key.key_id: key.public_key})
    assert report.valid, report.reasons
    assert report.payload["sanitization"]["outcome"] == "interrupted"
    assert report.payload["sanitization"]["category"] is None


def test_failed_wipe_of_a_read_only_loop_device_is_certified_as_failed(loopdevs, tmp_path):
    from agent import discover
    from agent.sanitize.overwrite import result_from_step, run_overwrite

    dev = loopdevs.create(SIZE, fill=b"\xa5", read_only=True)
    disk = discover.disk_for_path(dev)
    result = result_from_step(disk, run_overwrite(disk, "zero", verify="full"))
    assert result.outcome.value == "failed"
    key = StationKey.load_or_create(tmp_path / "state")
    files = issue_certificate(result, None, None, key, tmp_path / "out")
    verify = ardoise("verify", "--key", str(tmp_path / "state" / PUBLIC_KEY_FILE), "--json", str(files.json_path))
    assert verify.returncode == 0, verify.stderr  # a valid certificate...
    payload = check_file(files.json_path, {key.key_id: key.public_key}).payload
    assert payload["sanitization"]["outcome"] == "failed"  # ...that says the wipe failed
    assert payload["sanitization"]["category"] is None
    assert payload["sanitization"]["steps"][0]["error"]
    with open(dev, "rb") as f:
        assert f.read(2) == b"\xa5\xa5"


def test_the_pdf_of_a_real_wipe_proves_itself(loopdevs, tmp_path):
    dev = loopdevs.create(SIZE, fill=b"\xa5\x5a")
    state, out = tmp_path / "state", tmp_path / "out"
    wipe = ardoise("wipe", dev, "--method", "zero", "--verify", "full", "--yes", "--out", str(out), "--state-dir", str(state))
    assert wipe.returncode == 0, wipe.stderr
    (pdf,) = out.glob("*.pdf")
    ok = ardoise("verify", "--key", str(state / PUBLIC_KEY_FILE), str(pdf))
    assert ok.returncode == 0 and "the page matches its attached certificate" in ok.stderr, ok.stderr
    # Someone else's copy, with no key at hand: intact, but that proves integrity only.
    alone = ardoise("verify", "--state-dir", str(tmp_path / "elsewhere"), str(pdf))
    assert alone.returncode == 8 and "integrity only" in alone.stderr, alone.stderr
