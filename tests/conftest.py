from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from agent import commands  # noqa: E402
from fakes import FakeRunner  # noqa: E402

IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config, items):
    if IS_ROOT:
        return
    skip = pytest.mark.skip(reason="needs root for loop devices and mounts")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def fake_commands():
    """Replace the command gateway with recorded outputs; an unrecorded argv fails the test."""
    runner = FakeRunner()
    with commands.use_runner(runner):
        yield runner
    if runner.unrecorded:
        pytest.fail("unrecorded commands were run: " + "; ".join(" ".join(a) for a in runner.unrecorded))


class LoopDevices:
    """Creates loop devices backed by files in /dev/shm and detaches exactly those, by name."""

    def __init__(self, tmpdir: Path):
        self.tmpdir = tmpdir
        self.devices: list[str] = []

    def create(self, size: int, *, sector_size: int = 512, read_only: bool = False, fill: bytes | None = None) -> str:
        backing = self.tmpdir / f"loop{len(self.devices)}.img"
        with open(backing, "wb") as f:
            if fill is None:
                f.truncate(size)
            else:
                chunk = (fill * (1 << 20 // max(1, len(fill)) + 1))[: 1 << 20]
                written = 0
                while written < size:
                    n = min(len(chunk), size - written)
                    f.write(chunk[:n])
                    written += n
        argv = ["losetup", "--find", "--show", "--direct-io=on", f"--sector-size={sector_size}"]
        if read_only:
            argv.append("--read-only")
        dev = subprocess.run([*argv, str(backing)], check=True, capture_output=True, text=True).stdout.strip()
        self.devices.append(dev)
        subprocess.run(["udevadm", "settle", "--timeout=10"], check=False)
        return dev

    def detach_all(self) -> None:
        for dev in reversed(self.devices):
            subprocess.run(["umount", "--quiet", dev], check=False, capture_output=True)
            subprocess.run(["losetup", "--detach", dev], check=False, capture_output=True)
        self.devices.clear()


@pytest.fixture
def loopdevs():
    """Loop devices on tmpfs; always detached by name at the end of the test."""
    if not IS_ROOT:
        pytest.skip("needs root for loop devices")
    import tempfile

    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="ardoise-test-") as d:
        loops = LoopDevices(Path(d))
        try:
            yield loops
        finally:
            loops.detach_all()
