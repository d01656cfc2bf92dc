"""The NIST SP 800-88 Rev. 1 §4.7 sampler: reproducible, and as representative as §4.7 asks."""

from __future__ import annotations

import pytest

from agent.verify.sample import plan_subsections, sample_plan

GIB = 1 << 30


@pytest.mark.parametrize("size,block", [(GIB, 512), (GIB, 4096), (64 << 20, 512), (3 * GIB + 4096 * 7, 4096)])
def test_sample_covers_at_least_ten_percent_and_first_and_last_blocks(size, block):
    blocks = size // block
    ranges = sample_plan(size, block, "seed-1")
    assert ranges[0].start == 0
    assert ranges[-1].end == blocks
    covered = sum(r.count for r in ranges)
    assert covered >= 0.10 * blocks
    # Sorted, merged, within the device.
    for a, b in zip(ranges, ranges[1:]):
        assert a.end < b.start
    assert all(0 <= r.start < r.end <= blocks for r in ranges)


def test_every_one_of_1000_subsections_holds_two_disjoint_samples_of_5_percent():
    size, block = GIB, 512
    blocks = size // block
    ranges = sample_plan(size, block, "abc")
    for i in range(1000):
        lo, hi = i * blocks // 1000, (i + 1) * blocks // 1000
        inside = [(max(r.start, lo), min(r.end, hi)) for r in ranges if r.start < hi and r.end > lo]
        covered = sum(e - s for s, e in inside)
        # Two non-overlapping locations of ceil(5 %) each: at least 10 % of the subsection.
        assert covered >= 0.10 * (hi - lo), i


def test_sample_is_reproducible_from_size_block_and_seed():
    assert sample_plan(GIB, 512, "seed") == sample_plan(GIB, 512, "seed")
    assert sample_plan(GIB, 512, "seed") != sample_plan(GIB, 512, "other")


def test_locations_are_spread_pseudorandomly_not_at_fixed_offsets():
    blocks = GIB // 512
    ranges = sample_plan(GIB, 512, "spread")
    offsets_in_subsection = {(r.start - (r.start * 1000 // blocks) * blocks // 1000) for r in ranges[1:50]}
    assert len(offsets_in_subsection) > 10


def test_small_device_gets_fewer_subsections_and_says_so():
    count, notes = plan_subsections(4000)
    assert count == 100 and "instead of 1000" in notes[0]
    count, notes = plan_subsections(10)
    assert count == 0 and "every block" in notes[0]
    assert sample_plan(10 * 512, 512, "s")[0].count == 10


def test_large_device_plan_stays_bounded():
    ranges = sample_plan(20 * (1 << 40), 4096, "big")
    assert len(ranges) <= 2002
