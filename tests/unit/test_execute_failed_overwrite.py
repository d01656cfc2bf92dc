"""What ``ardoise run``'s executor certifies when its overwrite fails or is cut short: the
attempted method, the bytes written, the blocks that could not be written and the
read-back, not an empty "method: none" record."""

from __future__ import annotations

import threading
from pathlib import Path

from agent.config import Config
from agent.records import Category, Disk, LbaRange, Outcome, PlanStep, SanitizePlan, Transport
from agent.sanitize import blockio, execute
from fakes import FaultyDevice

MIB = 1 << 20


def file_disk(tmp_path: Path, size: int = 4 * MIB) -> Disk:
    path = tmp_path / "disk.img"
    path.write_bytes(b"\xa7" * size)
    return Disk(path=str(path), name="disk.img", transport=Transport.FILE, size_bytes=size, target=True)


def zero_plan(disk: Disk) -> SanitizePlan:
    step = PlanStep(method="overwrite:zero", category=Category.CLEAR, technique="Overwrite", reason="test")
    return SanitizePlan(disk=disk, steps=[step], verify="full")


def faulty_opener(monkeypatch, **faults) -> list[FaultyDevice]:
    made: list[FaultyDevice] = []
    real = blockio.open_device

    def opener(path, **kw):
        dev = FaultyDevice(real(path, **kw), **faults)
        made.append(dev)
        return dev

    monkeypatch.setattr(blockio, "open_device", opener)
    return made


def test_failed_overwrite_certifies_the_attempt_with_its_bad_blocks(tmp_path, monkeypatch):
    disk = file_disk(tmp_path)
    faulty_opener(monkeypatch, bad=(MIB, MIB + 4 * 512))
    result = execute.sanitize(zero_plan(disk), config=Config(state_dir=tmp_path))
    assert result.outcome is Outcome.FAILED and result.category is None
    assert result.method == "overwrite:zero"
    assert result.error_ranges == [LbaRange(2048, 2052)]
    assert result.bytes_written == 4 * MIB  # the pass went over the whole disk; the bad blocks are listed
    assert result.verification is not None and result.verification.read_errors == [LbaRange(2048, 2052)]


def test_overwrite_cut_short_by_a_pull_is_interrupted_with_what_was_written(tmp_path, monkeypatch):
    disk = file_disk(tmp_path, 32 * MIB)
    faulty_opener(monkeypatch, gone_after=8 * MIB)
    result = execute.sanitize(zero_plan(disk), config=Config(state_dir=tmp_path), cancel=threading.Event())
    assert result.outcome is Outcome.INTERRUPTED and result.category is None
    assert result.method == "overwrite:zero"
    assert 0 < result.bytes_written <= 16 * MIB
