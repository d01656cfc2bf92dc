"""Files the agent is handed are read with a cap: /dev/zero, a FIFO or a huge file is a
one-line refusal, never an out-of-memory kill. The CLI runs in a child process with its
address space limited, so a regression fails the test instead of the machine."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

from agent.bounded import CERTIFICATE_MAX, FileTooLarge, NotRegularFile, read_bounded
from agent.certify.keys import StationKey

LIMIT = 1 << 30


def ardoise(*args: str, state) -> subprocess.CompletedProcess:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))

    env = dict(os.environ, ARDOISE_STATE_DIR=str(state), PYTHONPATH=os.getcwd())
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True,
                          env=env, timeout=60, preexec_fn=cap)


def one_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_verify_dev_zero_is_refused_as_not_a_file(tmp_path):
    StationKey.load_or_create(tmp_path)
    proc = ardoise("verify", "/dev/zero", state=tmp_path)
    assert proc.returncode == 6
    assert one_line(proc) == "/dev/zero: INVALID: missing-file: cannot read (not a regular file (a device, a pipe or a socket))"


def test_verify_a_file_over_the_cap_is_refused_without_reading_it_all(tmp_path):
    StationKey.load_or_create(tmp_path)
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(CERTIFICATE_MAX + 1)
    proc = ardoise("verify", str(big), state=tmp_path)
    assert proc.returncode == 6 and "larger than 4 MiB" in one_line(proc)


def test_config_dev_zero_is_a_config_error(tmp_path):
    proc = ardoise("disks", "--config", "/dev/zero", state=tmp_path)
    assert proc.returncode == 2
    assert one_line(proc) == "ardoise: cannot read config file /dev/zero: not a regular file (a device, a pipe or a socket)"


def test_key_dev_zero_is_a_usage_error(tmp_path):
    proc = ardoise("verify", "--key", "/dev/zero", "x.json", state=tmp_path)
    assert proc.returncode == 2 and "not a regular file" in one_line(proc)


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile):
        read_bounded(fifo, 10)


def test_read_bounded_returns_a_file_at_the_cap_and_refuses_one_byte_more(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x" * 10)
    assert read_bounded(f, 10) == b"x" * 10
    with pytest.raises(FileTooLarge):
        read_bounded(f, 9)
