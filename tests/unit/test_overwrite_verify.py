"""Comparison of read-back buffers: every differing byte is found, wherever it lies."""

from __future__ import annotations

import pytest

from agent.sanitize.blockio import AlignedBuffer
from agent.sanitize.methods import PatternSource, RandomStream
from agent.verify.expect import Absent, Content

SIZE = 1 << 20


@pytest.mark.parametrize("pattern", [b"\x00", b"\xff", bytes.fromhex("deadbeef"), bytes(range(256)) * 2])
@pytest.mark.parametrize("where", [0, 1, 63, 64, 65, 511, 4096 * 7 + 3, SIZE - 1])
def test_a_single_wrong_byte_in_a_pattern_is_found_in_its_block(pattern, where):
    got = AlignedBuffer(SIZE).fill(pattern)
    expect = Content(PatternSource(pattern))
    assert expect.agrees(got, None, 0, SIZE)
    got.view[where] ^= 0x01
    assert not expect.agrees(got, None, 0, SIZE)
    block = where // 512 * 512
    assert expect.mismatches(got, None, 0, SIZE, 10 * SIZE, 512) == [(10 * SIZE + block, 10 * SIZE + block + 512)]
    got.close()


def test_random_stream_content_is_compared_against_the_regenerated_stream():
    stream = RandomStream()
    expect = Content(stream)
    got = AlignedBuffer(SIZE, slack=16)
    scratch = AlignedBuffer(SIZE, slack=16)
    stream.fill(got, 4096, SIZE)
    expect.prepare(scratch, 4096, SIZE)
    assert expect.agrees(got, scratch, 0, SIZE)
    got.view[5000] ^= 0x80
    assert expect.mismatches(got, scratch, 0, SIZE, 4096, 512) == [(4096 + 4608, 4096 + 5120)]
    got.close()
    scratch.close()


def test_absent_finds_each_marker_with_its_blocks():
    got = AlignedBuffer(SIZE).fill(b"\x00")
    expect = Absent([b"CANARY-1234"])
    assert expect.agrees(got, None, 0, SIZE)
    got.view[1000:1011] = b"CANARY-1234"
    got.view[SIZE - 11 : SIZE] = b"CANARY-1234"
    assert not expect.agrees(got, None, 0, SIZE)
    assert expect.mismatches(got, None, 0, SIZE, 0, 512) == [(512, 1024), (SIZE - 512, SIZE)]
    got.close()
