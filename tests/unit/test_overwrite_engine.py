"""The overwrite engine on regular files and on faulty devices.

Loop devices can neither return I/O errors nor vanish, so the faults are injected at the
lowest layer only: a ``FaultyDevice`` wraps the real ``BlockDevice`` and raises where a
bad disk would; retries, narrowing, journalling and verification are the engine's own.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from agent.records import Disk, LbaRange, Outcome, StepStatus, Transport
from agent.sanitize import blockio
from agent.sanitize.journal import Journal, JournalEntry
from agent.sanitize.overwrite import journal_identity, result_from_step, run_overwrite
from agent.cli.wipe import wipe_all
from fakes import FaultyDevice

MIB = 1 << 20


def make_file(tmp_path: Path, name: str, size: int, fill: bytes = b"\xa7") -> Disk:
    path = tmp_path / name
    path.write_bytes(fill * size)
    return Disk(path=str(path), name=name, transport=Transport.FILE, size_bytes=size)


def opener_for(**faults):
    made = []

    def opener(path):
        dev = FaultyDevice(blockio.open_device(path, allow_file=True), **faults)
        made.append(dev)
        return dev

    opener.made = made
    return opener


def test_zero_wipe_of_a_file_leaves_only_zeros(tmp_path):
    disk = make_file(tmp_path, "a.img", 3 * MIB + 4096)
    step = run_overwrite(disk, "zero", verify="full", chunk_size=MIB)
    assert step.status is StepStatus.SUCCESS and step.verification.status == "passed"
    assert Path(disk.path).read_bytes() == bytes(3 * MIB + 4096)
    assert step.bytes_written == 3 * MIB + 4096


def test_odd_sized_file_falls_back_to_buffered_io_for_what_o_direct_refuses(tmp_path):
    size = 3 * MIB + 100  # the last request cannot be O_DIRECT: EINVAL, then buffered
    disk = make_file(tmp_path, "odd.img", size)
    opener = opener_for()
    step = run_overwrite(disk, "random", verify="full", opener=opener, chunk_size=MIB)
    assert step.status is StepStatus.SUCCESS, step.error
    assert step.verification.bytes_read == size
    assert not opener.made[0].inner.direct  # it ended in buffered mode
    data = Path(disk.path).read_bytes()
    assert len(data) == size and b"\xa7" * 32 not in data[-100:] and b"\xa7" * 64 not in data


def test_write_errors_in_a_range_end_failed_with_exactly_that_lba_range(tmp_path):
    disk = make_file(tmp_path, "bad.img", 4 * MIB)
    bad = (MIB + 3 * 512, MIB + 10 * 512)
    opener = opener_for(bad=bad)
    step = run_overwrite(disk, "zero", verify="full", opener=opener, chunk_size=MIB)
    assert step.status is StepStatus.FAILED
    assert step.error_ranges == [LbaRange(2048 + 3, 2048 + 10)]
    assert step.passes[0].error_ranges == [LbaRange(2048 + 3, 2048 + 10)]
    # The wipe carried on past the bad range: everything else is zero.
    data = Path(disk.path).read_bytes()
    assert data[: bad[0]] == bytes(bad[0]) and data[bad[1]:] == bytes(len(data) - bad[1])
    assert data[bad[0] : bad[1]] == b"\xa7" * (bad[1] - bad[0])
    result = result_from_step(disk, step)
    assert result.outcome is Outcome.FAILED and result.category is None
    assert result.error_ranges == [LbaRange(2051, 2058)]
    # Verification could not read the bad blocks either, and says where.
    assert step.verification.read_errors == [LbaRange(2051, 2058)]


def test_unreadable_range_during_verification_fails_it_with_the_range(tmp_path):
    disk = make_file(tmp_path, "rd.img", 2 * MIB)
    step = run_overwrite(disk, "zero", verify="full", opener=opener_for(bad_reads=(512 * 100, 512 * 101)), chunk_size=MIB)
    assert step.status is StepStatus.FAILED
    assert step.error_ranges == []
    assert step.verification.status == "failed"
    assert step.verification.read_errors == [LbaRange(100, 101)]


@pytest.mark.parametrize("gone_errno", [errno.ENODEV, errno.ENXIO])
def test_device_that_disappears_mid_wipe_ends_interrupted(tmp_path, gone_errno):
    disk = make_file(tmp_path, "gone.img", 4 * MIB)
    step = run_overwrite(disk, "zero", verify="full", opener=opener_for(gone_after=2 * MIB, gone_errno=gone_errno), chunk_size=MIB)
    assert step.status is StepStatus.INTERRUPTED
    assert "disappeared" in step.error
    assert result_from_step(disk, step).outcome is Outcome.INTERRUPTED


def test_vanished_device_is_interrupted_while_the_others_finish(tmp_path):
    disks = [make_file(tmp_path, f"d{i}.img", 4 * MIB) for i in range(3)]
    gone = opener_for(gone_after=MIB)

    def worker(disk):
        opener = gone if disk is disks[1] else None
        return result_from_step(disk, run_overwrite(disk, "random", verify="full", opener=opener, chunk_size=MIB))

    results = wipe_all(disks, worker)
    assert [r.outcome for r in results] == [Outcome.SUCCESS, Outcome.INTERRUPTED, Outcome.SUCCESS]
    for i in (0, 2):
        data = Path(disks[i].path).read_bytes()
        assert b"\xa7" * 64 not in data


def test_non_media_error_fails_the_step_without_retrying_forever(tmp_path):
    disk = make_file(tmp_path, "ro.img", MIB)

    class ReadOnly(FaultyDevice):
        def pwrite(self, buf, offset):
            raise OSError(errno.EROFS, "Read-only file system")

    step = run_overwrite(disk, "zero", opener=lambda p: ReadOnly(blockio.open_device(p, allow_file=True)))
    assert step.status is StepStatus.FAILED and "Read-only" in step.error


def test_missing_device_is_refused_before_anything_is_written(tmp_path):
    step = run_overwrite(Disk(path=str(tmp_path / "nope"), name="nope"), "zero")
    assert step.status is StepStatus.REFUSED and "no such device" in step.error


def test_cancel_stops_the_wipe_as_interrupted_and_keeps_the_journal(tmp_path):
    disk = make_file(tmp_path, "c.img", 4 * MIB)
    cancel = threading.Event()
    cancel.set()
    journal = Journal(tmp_path / "state")
    step = run_overwrite(disk, "zero", journal=journal, cancel=cancel, chunk_size=MIB)
    assert step.status is StepStatus.INTERRUPTED
    assert journal.load(journal_identity(disk)) is not None


def test_fixed_pattern_pass_resumes_from_the_journal_position(tmp_path):
    size = 4 * MIB
    disk = make_file(tmp_path, "r.img", size)
    # A power loss during pass 2 (0xAA) of two-pass, 1 MiB + 512 bytes in: the earlier run
    # had written 0xAA up to there.
    with open(disk.path, "r+b") as f:
        f.write(b"\xaa" * (MIB + 512))
    journal = Journal(tmp_path / "state")
    journal.save(JournalEntry(journal_identity(disk), disk.path, "two-pass", size, 1, 2, "write", MIB + 512, "t0"))
    step = run_overwrite(disk, "two-pass", verify="full", journal=journal, chunk_size=MIB)
    assert step.status is StepStatus.SUCCESS and step.resumed
    assert [p.pattern for p in step.passes] == ["0xaa"]
    assert step.passes[0].resumed_from == MIB + 512
    assert step.passes[0].bytes_written == size - MIB - 512
    assert Path(disk.path).read_bytes() == b"\xaa" * size
    assert journal.load(journal_identity(disk)) is None  # finished: nothing left to resume
    assert result_from_step(disk, step).resumed


def test_interrupted_random_pass_restarts_from_the_beginning(tmp_path):
    size = 2 * MIB
    disk = make_file(tmp_path, "rr.img", size)
    journal = Journal(tmp_path / "state")
    journal.save(JournalEntry(journal_identity(disk), disk.path, "random", size, 0, 1, "write", MIB, "t0"))
    step = run_overwrite(disk, "random", verify="full", journal=journal, chunk_size=MIB)
    assert step.status is StepStatus.SUCCESS and step.resumed
    assert step.passes[0].resumed_from is None and step.passes[0].bytes_written == size
    assert b"\xa7" * 64 not in Path(disk.path).read_bytes()


def test_journal_of_another_method_is_ignored(tmp_path):
    disk = make_file(tmp_path, "o.img", MIB)
    journal = Journal(tmp_path / "state")
    journal.save(JournalEntry(journal_identity(disk), disk.path, "two-pass", MIB, 1, 2, "write", 512, "t0"))
    step = run_overwrite(disk, "zero", verify="none", journal=journal)
    assert step.status is StepStatus.SUCCESS and not step.resumed
    assert Path(disk.path).read_bytes() == bytes(MIB)


def test_journal_writes_are_atomic_files_named_for_the_identity(tmp_path):
    journal = Journal(tmp_path)
    entry = JournalEntry("WWN-0x5000c500:a/b", "/dev/sdb", "zero", 10, 0, 1, "write", 0, "t0")
    journal.save(entry)
    files = list((tmp_path / "journal").iterdir())
    assert len(files) == 1 and files[0].suffix == ".json" and "/" not in files[0].name[:-5]
    assert journal.load("WWN-0x5000c500:a/b").method == "zero"
    files[0].write_text("{not json")
    assert journal.load("WWN-0x5000c500:a/b") is None


def test_progress_reports_bytes_throughput_and_eta(tmp_path):
    disk = make_file(tmp_path, "p.img", 4 * MIB)
    events = []
    run_overwrite(disk, "two-pass", verify="full", progress=events.append, chunk_size=MIB)
    phases = [(e.phase, e.pass_index) for e in events]
    assert ("write", 0) in phases and ("write", 1) in phases and ("verify", 1) in phases
    last_write = [e for e in events if e.phase == "write" and e.pass_index == 0][-1]
    assert last_write.bytes_done == last_write.bytes_total == 4 * MIB
    assert last_write.throughput_bps > 0
    # ETA covers what remains after the first pass: the second pass and the verification.
    assert last_write.eta_s is not None and last_write.eta_s > 0


def test_device_pulled_during_verification_ends_interrupted_with_its_journal(tmp_path):
    disk = make_file(tmp_path, "v.img", 2 * MIB)
    journal = Journal(tmp_path / "state")

    class PulledOnRead(FaultyDevice):
        def preadinto(self, buf, offset):
            self.gone = True
            raise OSError(errno.ENODEV, "No such device")

    step = run_overwrite(disk, "zero", verify="full", journal=journal,
                         opener=lambda p: PulledOnRead(blockio.open_device(p, allow_file=True)), chunk_size=MIB)
    assert step.status is StepStatus.INTERRUPTED
    assert step.passes[0].bytes_written == 2 * MIB
    entry = journal.load(journal_identity(disk))
    assert entry is not None and entry.phase == "verify"


def test_wholly_wrong_content_is_reported_quickly_and_says_ranges_are_coarse(tmp_path):
    from agent.verify import Content, verify_full

    disk = make_file(tmp_path, "w.img", 8 * MIB, fill=b"\x01")  # every block wrong
    result = verify_full(disk.path, Content.zeros(), chunk=MIB)
    assert result.status == "failed"
    assert result.mismatches[0].start == 0 and result.mismatches[-1].end == 8 * MIB // 512
    assert any("per request" in n for n in result.notes)


def test_a_journal_for_another_file_at_the_same_path_is_not_resumed(tmp_path):
    disk = make_file(tmp_path, "same.img", 2 * MIB)
    journal = Journal(tmp_path / "state")
    old_key = journal_identity(disk)
    # Same path, another file (created while the old one exists, so another inode).
    other = make_file(tmp_path, "other.img", 2 * MIB)
    os.replace(other.path, disk.path)
    journal.save(JournalEntry(old_key, disk.path, "two-pass", 2 * MIB, 1, 2, "write", MIB, "t0"))
    assert journal_identity(disk) != old_key
    step = run_overwrite(disk, "two-pass", verify="full", journal=journal, chunk_size=MIB)
    assert step.status is StepStatus.SUCCESS and not step.resumed
    assert [p.pattern for p in step.passes] == ["0x55", "0xaa"]


def test_a_drive_failing_everywhere_stops_the_pass_as_failed_instead_of_retrying_for_days(tmp_path, monkeypatch):
    from agent.sanitize import overwrite

    monkeypatch.setattr(overwrite, "MAX_CONSECUTIVE_BAD", 2 * MIB)
    disk = make_file(tmp_path, "dying.img", 8 * MIB)
    opener = opener_for(bad=(MIB, 8 * MIB))
    step = run_overwrite(disk, "zero", verify="full", opener=opener, chunk_size=MIB)
    assert step.status is StepStatus.FAILED and "device failing" in step.error
    assert step.error_ranges == [LbaRange(2048, 3 * 2048)]
    assert step.verification is None


def test_device_gone_at_a_journal_flush_is_interrupted_not_an_exception(tmp_path, monkeypatch):
    monkeypatch.setenv("ARDOISE_JOURNAL_INTERVAL", "0")
    disk = make_file(tmp_path, "f.img", 4 * MIB)

    class GoneOnFlush(FaultyDevice):
        def sync(self):
            if self.written >= 2 * MIB:
                self.gone = True
            super().sync()

    step = run_overwrite(disk, "zero", journal=Journal(tmp_path / "state"), chunk_size=MIB,
                         opener=lambda p: GoneOnFlush(blockio.open_device(p, allow_file=True)))
    assert step.status is StepStatus.INTERRUPTED


def test_unwritable_journal_does_not_stop_the_wipe(tmp_path):
    disk = make_file(tmp_path, "j.img", 2 * MIB)
    (tmp_path / "state").write_text("a file where the state directory should be")
    step = run_overwrite(disk, "zero", verify="full", journal=Journal(tmp_path / "state"), chunk_size=MIB)
    assert step.status is StepStatus.SUCCESS
