"""Canaries: written before a purge, every one must be gone after it."""

import os

from agent.verify import canary


def test_positions_cover_first_and_last_block_and_spread_between():
    size = 1 << 30
    pos = canary.positions(size, 32, seed="run-1")
    assert len(pos) == 32 and pos[0] == 0 and pos[-1] == size - canary.BLOCK
    assert all(p % canary.BLOCK == 0 for p in pos)
    gaps = [b - a for a, b in zip(pos, pos[1:])]
    assert max(gaps) < size // 8, "no large stretch of the disk without a canary"
    assert canary.positions(size, 32, seed="run-1") == pos
    assert canary.positions(size, 32, seed="run-2") != pos


def test_tiny_device_gets_as_many_canaries_as_it_has_blocks():
    assert canary.positions(3 * canary.BLOCK, 32, seed="x") == [0, canary.BLOCK, 2 * canary.BLOCK]


def _image(tmp_path, size=8 << 20):
    path = tmp_path / "disk.img"
    path.write_bytes(b"old data " * (size // 9) + b"\0" * (size % 9))
    return str(path), size


def test_canaries_that_survive_fail_the_check(tmp_path):
    path, size = _image(tmp_path)
    planted = canary.plant(path, size, count=16, run_id="abcd")
    result = canary.check(planted)
    assert result.status == "failed" and len(result.mismatches) == 16
    assert "16 of 16 canaries survived" in result.notes[0]


def test_erased_canaries_pass_the_check(tmp_path):
    path, size = _image(tmp_path)
    planted = canary.plant(path, size, count=16)
    with open(path, "r+b") as f:
        f.write(os.urandom(size))  # what a crypto erase looks like: noise
    result = canary.check(planted)
    assert result.status == "passed" and result.bytes_read == 16 * canary.BLOCK


def test_one_surviving_canary_is_enough_to_fail(tmp_path):
    path, size = _image(tmp_path)
    planted = canary.plant(path, size, count=8)
    keep = planted.canaries[3].offset
    with open(path, "r+b") as f:
        data = bytearray(size)
        f.seek(keep)
        data[keep:keep + canary.BLOCK] = f.read(canary.BLOCK)
        f.seek(0)
        f.write(data)
    result = canary.check(planted)
    assert result.status == "failed" and len(result.mismatches) == 1
    assert result.mismatches[0].start == keep // 512
