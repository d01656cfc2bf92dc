"""Every method on a real loop device, checked by reading the device ourselves; planted
data gone; verification catching corruption. Root only (loop devices on /dev/shm)."""

from __future__ import annotations

import os
import subprocess
import tempfile

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from agent.records import Disk, LbaRange, StepStatus
from agent.sanitize import methods
from agent.sanitize.overwrite import run_overwrite
from agent.verify import Content, sample_plan, verify_full, verify_sample

pytestmark = pytest.mark.root

MIB = 1 << 20
KEY, NONCE = bytes(range(1, 33)), bytes(range(100, 116))


class KnownKeyStream(methods.RandomStream):
    """The engine's random stream with a key the test knows, so the device content can be
    checked against AES-256-CTR computed independently here."""

    def __init__(self, key=None, nonce=None):
        super().__init__(KEY, NONCE)


def read_device(path: str) -> bytes:
    subprocess.run(["blockdev", "--flushbufs", path], check=True)
    with open(path, "rb") as f:
        return f.read()


def keystream(length: int) -> bytes:
    return Cipher(algorithms.AES(KEY), modes.CTR(NONCE)).encryptor().update(bytes(length))


@pytest.mark.parametrize(
    "method,final",
    [
        ("zero", b"\x00"),
        ("two-pass", b"\xaa"),
        ("pattern:deadbeef", bytes.fromhex("deadbeef")),
        ("random", None),
        ("dod-3pass", None),
        ("hmg-is5-enhanced", None),
    ],
)
def test_method_leaves_exactly_its_final_pass_on_the_device(loopdevs, monkeypatch, method, final):
    monkeypatch.setattr(methods, "RandomStream", KnownKeyStream)
    size = 64 * MIB
    dev = loopdevs.create(size, fill=b"\x5c")
    step = run_overwrite(Disk(path=dev, name=os.path.basename(dev)), method, verify="full")
    assert step.status is StepStatus.SUCCESS, step.error
    assert step.verification.status == "passed" and step.verification.coverage == 1.0
    data = read_device(dev)
    assert len(data) == size
    if final is None:
        assert data == keystream(size)
    else:
        assert data == final * (size // len(final))
    assert step.bytes_written == size * len(methods.get_method(method).passes)


def test_planted_filesystem_and_markers_are_gone_after_the_wipe(loopdevs):
    dev = loopdevs.create(128 * MIB)
    marker = b"ARDOISE-PLANTED-MARKER-7f3a9c"
    subprocess.run(["mkfs.ext4", "-q", "-F", dev], check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as mnt:
        subprocess.run(["mount", dev, mnt], check=True)
        try:
            for i in range(20):
                with open(os.path.join(mnt, f"secret{i}.txt"), "wb") as f:
                    f.write((marker + b" file %d " % i) * 5000)
        finally:
            subprocess.run(["umount", mnt], check=True)
    # Raw markers outside the filesystem's data too, including the very last sector.
    with open(dev, "r+b") as f:
        for offset in (0, 77 * MIB + 3, 128 * MIB - 512):
            f.seek(offset)
            f.write(marker)
    before = read_device(dev)
    assert before.count(marker) > 20 and b"\x53\xef" in before[1024 + 56 : 1024 + 58]

    step = run_overwrite(Disk(path=dev, name=os.path.basename(dev)), "random", verify="sample")
    assert step.status is StepStatus.SUCCESS
    after = read_device(dev)
    assert marker not in after
    assert after[1024 + 56 : 1024 + 58] != b"\x53\xef"  # no ext4 superblock magic left
    assert subprocess.run(["blkid", "-p", dev], capture_output=True).returncode != 0


def flip(dev: str, offsets: list[int]) -> None:
    fd = os.open(dev, os.O_RDWR)
    try:
        for off in offsets:
            b = os.pread(fd, 1, off)
            os.pwrite(fd, bytes([b[0] ^ 0x01]), off)
        os.fsync(fd)
    finally:
        os.close(fd)


def test_full_verification_reports_each_flipped_byte_with_its_lba(loopdevs):
    dev = loopdevs.create(64 * MIB)
    assert run_overwrite(Disk(path=dev, name="x"), "zero", verify="none").status is StepStatus.SUCCESS
    offsets = [0, 5 * MIB + 1000, 33 * MIB + 511, 64 * MIB - 1]
    flip(dev, offsets)
    result = verify_full(dev, Content.zeros())
    assert result.status == "failed"
    assert result.mismatches == [LbaRange(o // 512, o // 512 + 1) for o in offsets]
    assert result.block_size == 512 and result.read_errors == []


def test_full_verification_of_a_random_pass_regenerates_the_stream(loopdevs, monkeypatch):
    monkeypatch.setattr(methods, "RandomStream", KnownKeyStream)
    dev = loopdevs.create(32 * MIB)
    assert run_overwrite(Disk(path=dev, name="x"), "random", verify="none").status is StepStatus.SUCCESS
    expect = Content(KnownKeyStream())
    assert verify_full(dev, expect).status == "passed"
    flip(dev, [12345 * 512 + 7])
    assert verify_full(dev, expect).mismatches == [LbaRange(12345, 12346)]


def test_sampled_verification_reports_exactly_the_damage_inside_its_ranges(loopdevs):
    size = 128 * MIB
    dev = loopdevs.create(size)
    assert run_overwrite(Disk(path=dev, name="x"), "zero", verify="none").status is StepStatus.SUCCESS
    seed = "0123456789abcdef"
    ranges = sample_plan(size, 512, seed)
    inside = [ranges[0].start * 512, ranges[10].start * 512 + 3, (ranges[500].end - 1) * 512 + 100, size - 1]
    outside = []
    for r, nxt in zip(ranges[100:104], ranges[101:105]):
        gap = (r.end + nxt.start) // 2  # a block between two samples
        assert r.end <= gap < nxt.start
        outside.append(gap * 512)
    flip(dev, inside + outside)
    result = verify_sample(dev, Content.zeros(), seed=seed)
    assert result.status == "failed"
    assert result.seed == seed and result.sampled == ranges
    assert result.mismatches == [LbaRange(o // 512, o // 512 + 1) for o in sorted(inside)]
    assert result.coverage >= 0.10
    assert ranges[0].start == 0 and ranges[-1].end == size // 512


def test_sampled_verification_passes_on_a_clean_wipe_and_reads_about_a_tenth(loopdevs):
    size = 64 * MIB
    dev = loopdevs.create(size)
    step = run_overwrite(Disk(path=dev, name="x"), "two-pass", verify="sample")
    v = step.verification
    assert step.status is StepStatus.SUCCESS and v.status == "passed" and v.method == "sample"
    assert 0.10 <= v.coverage < 0.13
    assert v.bytes_read == sum(r.count for r in v.sampled) * 512
    assert sample_plan(size, 512, v.seed) == v.sampled  # reproducible from the record


def test_4k_sector_device_reports_lbas_in_4k_units(loopdevs):
    dev = loopdevs.create(32 * MIB, sector_size=4096)
    assert run_overwrite(Disk(path=dev, name="x"), "zero", verify="none").status is StepStatus.SUCCESS
    flip(dev, [10 * 4096 + 5])
    result = verify_full(dev, Content.zeros())
    assert result.block_size == 4096 and result.mismatches == [LbaRange(10, 11)]
