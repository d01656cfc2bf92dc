"""`ardoise wipe` end to end on loop devices: refusals write nothing, several devices are
wiped at once, and a wipe killed mid-pass resumes. Root only."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

MIB = 1 << 20


def ardoise(*args: str, env_extra: dict | None = None, state: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, ARDOISE_STATE_DIR=str(state))
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, env=env, timeout=300
    )


def digest(path: str) -> str:
    subprocess.run(["blockdev", "--flushbufs", path], capture_output=True)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MIB):
            h.update(chunk)
    return h.hexdigest()


def assert_one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0]


def test_wipe_without_yes_refuses_and_writes_nothing(loopdevs, tmp_path):
    dev = loopdevs.create(16 * MIB, fill=b"keep")
    before = digest(dev)
    proc = ardoise("wipe", dev, "--method", "zero", state=tmp_path)
    assert_one_line_error(proc, "--yes")
    assert proc.returncode == 2
    assert digest(dev) == before


def test_loop_device_with_a_mounted_filesystem_is_refused_and_untouched(loopdevs, tmp_path):
    dev = loopdevs.create(32 * MIB)
    other = loopdevs.create(16 * MIB, fill=b"other")
    subprocess.run(["mkfs.ext4", "-q", "-F", dev], check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as mnt:
        # Read-only, so the filesystem itself (ext4lazyinit, journal) cannot change the checksum.
        subprocess.run(["mount", "-o", "ro", dev, mnt], check=True)
        try:
            before, before_other = digest(dev), digest(other)
            proc = ardoise("wipe", other, dev, "--method", "zero", "--yes", state=tmp_path)
            assert_one_line_error(proc, dev)
            assert digest(dev) == before
            # Nothing at all is written when any named device is refused.
            assert digest(other) == before_other
        finally:
            subprocess.run(["umount", mnt], check=True)


def test_missing_path_is_a_one_line_error(tmp_path):
    proc = ardoise("wipe", "/dev/ardoise-no-such-disk", "--method", "zero", "--yes", state=tmp_path)
    assert_one_line_error(proc, "/dev/ardoise-no-such-disk")


def test_regular_file_is_refused_without_allow_file_and_wiped_with_it(tmp_path):
    target = tmp_path / "disk.img"
    target.write_bytes(b"secret!!" * (MIB // 8))
    before = hashlib.sha256(target.read_bytes()).hexdigest()
    proc = ardoise("wipe", str(target), "--method", "zero", "--yes", state=tmp_path / "s")
    assert_one_line_error(proc, "--allow-file")
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before

    out = tmp_path / "out"
    proc = ardoise("wipe", str(target), "--method", "zero", "--yes", "--allow-file", "--verify", "full",
                   "--out", str(out), "--json", state=tmp_path / "s")
    assert proc.returncode == 0, proc.stderr
    assert target.read_bytes() == bytes(MIB)
    assert json.loads(proc.stdout)[0]["outcome"] == "success"


def test_unknown_method_is_refused_before_anything_is_written(loopdevs, tmp_path):
    dev = loopdevs.create(8 * MIB, fill=b"x")
    before = digest(dev)
    proc = ardoise("wipe", dev, "--method", "gutmann", "--yes", state=tmp_path)
    assert_one_line_error(proc, "gutmann")
    assert digest(dev) == before


def test_several_devices_are_wiped_at_once_with_a_result_each(loopdevs, tmp_path):
    devs = [loopdevs.create(32 * MIB, fill=b"data%d" % i) for i in range(3)]
    out = tmp_path / "out"
    proc = ardoise("wipe", *devs, "--method", "two-pass", "--verify", "sample", "--yes", "--json",
                   "--out", str(out), state=tmp_path / "state")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert [r["disk"]["path"] for r in results] == devs
    for r in results:
        assert r["outcome"] == "success" and r["category"] == "Clear"
        assert r["verification"]["status"] == "passed" and r["verification"]["seed"]
        assert r["bytes_written"] == 2 * 32 * MIB
        assert r["files"] and all(Path(f).exists() for f in r["files"])
    for dev in devs:
        with open(dev, "rb") as f:
            assert f.read() == b"\xaa" * 32 * MIB
    # Progress went to stderr as plain lines, never to stdout.
    assert "write pass" in proc.stderr


def test_wipe_killed_mid_pass_resumes_from_the_journal(loopdevs, tmp_path):
    size = 64 * MIB
    dev = loopdevs.create(size, fill=b"\x11")
    state = tmp_path / "state"
    env = dict(os.environ, ARDOISE_STATE_DIR=str(state), ARDOISE_JOURNAL_INTERVAL="0.1")
    # Throttled so that the kill lands inside the second pass.
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "wipe", dev, "--method", "two-pass", "--verify", "full", "--yes",
         "--max-rate", "32", "--out", str(tmp_path / "out")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    journal_dir = state / "journal"
    entry = None
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            files = list(journal_dir.glob("*.json")) if journal_dir.exists() else []
            if files:
                try:
                    entry = json.loads(files[0].read_text())
                except ValueError:
                    entry = None
                if entry and entry["pass_index"] == 1 and entry["position"] >= 8 * MIB:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the wipe never reached the second pass")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    entry = json.loads(next(journal_dir.glob("*.json")).read_text())
    position = entry["position"]
    assert entry["method"] == "two-pass" and entry["pass_index"] == 1 and 0 < position < size
    with open(dev, "rb") as f:
        data = f.read()
    # Killed mid-pass: the journal position is a lower bound of what pass 2 wrote.
    assert data[:position] == b"\xaa" * position
    assert data[-MIB:] == b"\x55" * MIB

    done = ardoise("wipe", dev, "--method", "two-pass", "--verify", "full", "--yes", "--json",
                   "--out", str(tmp_path / "out"), state=state)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)[0]
    assert result["resumed"] is True
    passes = result["steps"][0]["passes"]
    assert [p["pattern"] for p in passes] == ["0xaa"]
    assert passes[0]["resumed_from"] == position
    assert passes[0]["bytes_written"] == size - position
    with open(dev, "rb") as f:
        assert f.read() == b"\xaa" * size
    assert not list(journal_dir.glob("*.json"))


def test_sigterm_stops_the_wipe_cleanly_as_interrupted_and_keeps_the_journal(loopdevs, tmp_path):
    dev = loopdevs.create(64 * MIB)
    state = tmp_path / "state"
    env = dict(os.environ, ARDOISE_STATE_DIR=str(state))
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "wipe", dev, "--method", "zero", "--yes", "--json",
         "--max-rate", "16", "--out", str(tmp_path / "out")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 30
    while not list(state.glob("journal/*.json")):  # the journal appears when writing starts
        assert time.monotonic() < deadline, "the wipe never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in err
    result = json.loads(out)[0]
    assert result["outcome"] == "interrupted"
    assert list((state / "journal").glob("*.json"))  # kept, so the next run resumes


def test_out_that_is_a_file_is_refused_before_the_disk_is_touched(loopdevs, tmp_path):
    dev = loopdevs.create(8 * MIB, fill=b"donor data")
    before = digest(dev)
    out = tmp_path / "certs"
    out.write_text("not a directory\n")
    proc = ardoise("wipe", dev, "--method", "zero", "--yes", "--out", str(out), state=tmp_path / "s")
    assert_one_line_error(proc, "--out", str(out), "not a directory")
    assert proc.returncode == 2
    assert digest(dev) == before


def read_only(directory: Path):
    """A read-only bind mount over ``directory``: refuses writes even to root."""
    subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(directory)], check=True)


def test_read_only_out_is_refused_before_the_disk_is_touched(loopdevs, tmp_path):
    dev = loopdevs.create(8 * MIB, fill=b"donor data")
    before = digest(dev)
    out = tmp_path / "certs"
    out.mkdir()
    read_only(out)
    try:
        proc = ardoise("wipe", dev, "--method", "zero", "--yes", "--out", str(out), state=tmp_path / "s")
    finally:
        subprocess.run(["umount", str(out)], check=True)
    assert_one_line_error(proc, "--out", "not writable")
    assert digest(dev) == before


def test_out_that_turns_read_only_during_the_wipe_sends_the_certificate_to_the_state_dir(
    loopdevs, tmp_path, monkeypatch, capsys
):
    from agent.cli import main, wipe

    dev = loopdevs.create(8 * MIB, fill=b"donor data")
    out, state = tmp_path / "certs", tmp_path / "state"
    out.mkdir()
    real_wipe_all = wipe.wipe_all
    mounted = []

    def wipe_then_lose_out(disks, worker):
        # Stand-in for whatever makes --out unwritable while the disk is being wiped (a
        # share gone read-only, a full stick, chattr +i): the check passed, the write fails.
        results = real_wipe_all(disks, worker)
        read_only(out)
        mounted.append(out)
        return results

    monkeypatch.setattr(wipe, "wipe_all", wipe_then_lose_out)
    monkeypatch.setenv("ARDOISE_STATE_DIR", str(state))
    try:
        code = main(["wipe", dev, "--method", "zero", "--verify", "full", "--yes", "--out", str(out), "--json"])
    finally:
        for m in mounted:
            subprocess.run(["umount", str(m)], check=True)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    files = json.loads(captured.out)[0]["files"]
    assert files and all(Path(f).parent == state / "certificates" and Path(f).exists() for f in files)
    assert not list(out.iterdir())
    assert f"cannot write to {out}" in captured.err and str(state / "certificates") in captured.err


def backing_file(loopdevs, dev: str) -> Path:
    return Path(Path(f"/sys/block/{Path(dev).name}/loop/backing_file").read_text().strip())


def test_allow_file_refuses_the_backing_file_of_a_mounted_loop_device(loopdevs, tmp_path):
    dev = loopdevs.create(32 * MIB)
    subprocess.run(["mkfs.ext4", "-q", "-F", dev], check=True, capture_output=True)
    image = backing_file(loopdevs, dev)
    with tempfile.TemporaryDirectory() as mnt:
        subprocess.run(["mount", "-o", "ro", dev, mnt], check=True)
        try:
            before = hashlib.sha256(image.read_bytes()).hexdigest()
            proc = ardoise("wipe", str(image), "--allow-file", "--method", "zero", "--yes", state=tmp_path)
            assert_one_line_error(proc, str(image), f"backs loop device {dev}", f"mounted: {mnt}")
            assert hashlib.sha256(image.read_bytes()).hexdigest() == before
        finally:
            subprocess.run(["umount", mnt], check=True)
    # Unmounted, the loop device still reads and writes the file: still refused.
    proc = ardoise("wipe", str(image), "--allow-file", "--method", "zero", "--yes", state=tmp_path)
    assert_one_line_error(proc, f"backs loop device {dev}")


def test_allow_file_refuses_a_file_another_process_holds_open(tmp_path):
    image = tmp_path / "vm.img"
    image.write_bytes(b"guest disk" * 1000)
    with open(image, "rb") as f:
        holder = subprocess.Popen(["sleep", "60"], stdin=f)
    try:
        proc = ardoise("wipe", str(image), "--allow-file", "--method", "zero", "--yes", state=tmp_path / "s")
        assert_one_line_error(proc, f"open by pid {holder.pid} (sleep)")
    finally:
        holder.kill()
        holder.wait()
    assert image.read_bytes() == b"guest disk" * 1000


def test_french_locale_wipe_writes_a_french_pdf_that_checks(loopdevs, tmp_path):
    """LANG=fr_FR.UTF-8 is enough: the summary line and the certificate PDF are French, the
    signed JSON keeps its codes, and the PDF passes `ardoise verify` in any language."""
    from pypdf import PdfReader

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from english_words import english_words

    dev = loopdevs.create(16 * MIB, fill=b"secret")
    out = tmp_path / "out"
    fr = {"LANG": "fr_FR.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""}
    proc = ardoise("wipe", dev, "--method", "zero", "--verify", "full", "--yes", "--out", str(out),
                   env_extra=fr, state=tmp_path / "state")
    assert proc.returncode == 0, proc.stderr
    assert f"{dev} : réussi (overwrite:zero, 16,0 Mio en" in proc.stdout, proc.stdout
    (pdf,) = out.glob("*.pdf")
    (cert,) = out.glob("*.json")
    text = "\n".join(p.extract_text() or "" for p in PdfReader(str(pdf)).pages)
    assert "Certificat d'effacement (NIST SP 800-88)" in text and "RÉUSSI - « EFFACEMENT (CLEAR) »" in text
    assert "heure de Paris" in text
    assert not english_words(text.replace("ardoise verify", "")), sorted(english_words(text))
    payload = json.loads(__import__("base64").b64decode(json.loads(cert.read_text())["payload"]))
    assert payload["sanitization"]["outcome"] == "success" and payload["destination"]["code"]
    # Checked in English, with the station's key: the French page matches its envelope.
    check = ardoise("verify", "--keys", str(tmp_path / "state"), str(pdf), env_extra={"LANG": "C"},
                    state=tmp_path / "state")
    assert check.returncode == 0, check.stderr
