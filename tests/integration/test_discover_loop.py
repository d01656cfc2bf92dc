"""Discover on this machine's real block devices, with loop devices we create (root only).

Each loop device comes from the ``loopdevs`` fixture and is detached by name afterwards.
"""

from __future__ import annotations

import os
import struct
import subprocess
import tempfile

import pytest

from agent import discover
from agent.discover.system import devnum_of_path, parse_mountinfo
from agent.errors import DeviceError, ProtectedDeviceError
from agent.records import Media, Transport

pytestmark = pytest.mark.root

MiB = 1 << 20


def _root_disk_path() -> str:
    """The whole disk holding / on this machine, found independently of discover."""
    with open("/proc/self/mountinfo") as f:
        root = next(m for m in parse_mountinfo(f.read()) if m.mountpoint == "/")
    real = os.path.realpath(f"/sys/dev/block/{root.devnum}")
    if os.path.exists(os.path.join(real, "partition")):
        real = os.path.dirname(real)
    return "/dev/" + os.path.basename(real)


@pytest.fixture
def mounted_loop(loopdevs):
    dev = loopdevs.create(32 * MiB)
    subprocess.run(["mkfs.ext4", "-q", "-F", dev], check=True, capture_output=True)
    with tempfile.TemporaryDirectory(prefix="ardoise-mnt-") as mnt:
        subprocess.run(["mount", dev, mnt], check=True, capture_output=True)
        try:
            yield dev, mnt
        finally:
            subprocess.run(["umount", mnt], check=False, capture_output=True)


def test_disk_holding_root_is_protected_as_boot_medium():
    root = _root_disk_path()
    disk = discover.disk_for_path(root)
    assert disk.target is False
    assert any(r.startswith("boot medium: holds /") for r in disk.reasons), disk.reasons
    with pytest.raises(ProtectedDeviceError, match=f"refusing to write {root}: protected"):
        discover.require_targets([root])


def test_disk_holding_root_is_protected_in_the_listing():
    root = _root_disk_path()
    listed = {d.path: d for d in discover.list_disks()}
    assert listed[root].target is False
    assert "/" in listed[root].mountpoints


def test_free_loop_device_named_explicitly_is_a_target(loopdevs):
    dev = loopdevs.create(8 * MiB)
    disk = discover.disk_for_path(dev)
    assert disk.target is True, disk.reasons
    assert disk.transport == Transport.LOOP
    assert disk.media == Media.VIRTUAL
    assert disk.size_bytes == 8 * MiB
    assert disk.devnum == devnum_of_path(dev)
    assert [d.path for d in discover.require_targets([dev])] == [dev]


def test_free_loop_device_found_without_being_named_is_not_a_target(loopdevs):
    dev = loopdevs.create(8 * MiB)
    listed = {d.path: d for d in discover.list_disks()}
    assert listed[dev].target is False
    assert "loop device: out of scope unless named explicitly" in listed[dev].reasons


def test_loop_device_named_in_explicit_list_is_a_target_in_the_listing(loopdevs):
    dev = loopdevs.create(8 * MiB)
    listed = {d.path: d for d in discover.list_disks(explicit=[dev])}
    assert listed[dev].target is True, listed[dev].reasons


def test_loop_device_with_mounted_filesystem_is_protected(mounted_loop):
    dev, mnt = mounted_loop
    disk = discover.disk_for_path(dev)
    assert disk.target is False
    assert f"mounted: {mnt}" in disk.reasons
    assert disk.mountpoints == [mnt]
    with pytest.raises(ProtectedDeviceError, match="mounted"):
        discover.require_targets([dev])


@pytest.fixture
def swap_loop(loopdevs):
    dev = loopdevs.create(16 * MiB)
    subprocess.run(["mkswap", dev], check=True, capture_output=True)
    subprocess.run(["swapon", dev], check=True, capture_output=True)
    try:
        yield dev
    finally:
        subprocess.run(["swapoff", dev], check=False, capture_output=True)


def test_loop_device_used_as_active_swap_is_protected(swap_loop):
    disk = discover.disk_for_path(swap_loop)
    assert disk.target is False
    assert "active swap" in disk.reasons


def test_loop_device_held_exclusively_by_a_process_is_protected(loopdevs):
    """What ZFS or a running wipe does: an exclusive open. No mount or holder shows it;
    the kernel refusing a second exclusive open does."""
    dev = loopdevs.create(8 * MiB)
    fd = os.open(dev, os.O_RDONLY | os.O_EXCL)
    try:
        disk = discover.disk_for_path(dev)
    finally:
        os.close(fd)
    assert disk.target is False
    assert disk.reasons == ["in use: exclusive open refused (EBUSY): claimed by the kernel"]
    assert discover.disk_for_path(dev).target is True


def test_read_only_loop_device_is_protected(loopdevs):
    dev = loopdevs.create(8 * MiB, read_only=True)
    disk = discover.disk_for_path(dev)
    assert disk.target is False
    assert "read-only device" in disk.reasons


def test_loop_device_carrying_the_ardoise_label_is_protected_as_boot_medium(loopdevs):
    dev = loopdevs.create(32 * MiB)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "ARDOISE", dev], check=True, capture_output=True)
    disk = discover.disk_for_path(dev)
    assert disk.target is False
    assert any("Ardoise label 'ARDOISE'" in r for r in disk.reasons), disk.reasons


@pytest.mark.parametrize("fat", ["16", "32"])
def test_loop_device_with_the_fat_data_partition_label_is_protected(loopdevs, fat):
    """The stick's data partition is FAT labelled ARDOISE (build_image.sh)."""
    dev = loopdevs.create(64 * MiB)
    subprocess.run(["mkfs.vfat", "-F", fat, "-n", "ARDOISE", dev], check=True, capture_output=True)
    disk = discover.disk_for_path(dev)
    assert disk.target is False
    assert any("Ardoise label 'ARDOISE' (vfat)" in r for r in disk.reasons), disk.reasons


def test_loop_device_carrying_an_ardoise_iso_is_protected_as_boot_medium(loopdevs):
    """The image is a hybrid ISO written to the stick: its primary volume descriptor sits at
    32 KiB on the whole disk (ECMA-119). Written here byte by byte on our own loop device."""
    dev = loopdevs.create(4 * MiB)
    pvd = bytearray(2048)
    pvd[0] = 1
    pvd[1:6] = b"CD001"
    pvd[40:72] = b"ARDOISE_0_1".ljust(32)
    with open(dev, "r+b") as f:
        f.seek(0x8000)
        f.write(pvd)
    disk = discover.disk_for_path(dev)
    assert disk.target is False
    assert any("'ARDOISE_0_1' (iso9660)" in r for r in disk.reasons), disk.reasons


@pytest.fixture
def partitioned_loop(loopdevs):
    """A loop device with one partition. Without the partscan flag the kernel keeps the
    partition after the loop device is detached, so it is deleted here first, by name."""
    dev = loopdevs.create(8 * MiB)
    part = _add_one_partition(dev)
    try:
        yield dev, part
    finally:
        subprocess.run(["umount", "--quiet", part], check=False, capture_output=True)
        subprocess.run(["partx", "--delete", dev], check=False, capture_output=True)


def _add_one_partition(dev: str) -> str:
    """Write a one-partition MBR on ``dev`` (ours) and ask the kernel to add the partition."""
    entry = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 2048, 4096)
    with open(dev, "r+b") as f:
        f.seek(446)
        f.write(entry)
        f.seek(510)
        f.write(b"\x55\xaa")
    subprocess.run(["partx", "--add", dev], check=True, capture_output=True)
    return f"{dev}p1"


def test_partition_path_is_refused_naming_the_whole_disk(partitioned_loop):
    dev, part = partitioned_loop
    with pytest.raises(DeviceError, match=f"{part} is a partition of {dev}; name the whole disk {dev}"):
        discover.disk_for_path(part)
    # The whole disk itself is still a target: the partition is not in use.
    assert discover.disk_for_path(dev).target is True


def test_disk_whose_partition_is_mounted_is_protected(partitioned_loop):
    dev, part = partitioned_loop
    subprocess.run(["mkfs.ext4", "-q", "-F", part], check=True, capture_output=True)
    with tempfile.TemporaryDirectory(prefix="ardoise-mnt-") as mnt:
        subprocess.run(["mount", part, mnt], check=True, capture_output=True)
        try:
            disk = discover.disk_for_path(dev)
        finally:
            subprocess.run(["umount", mnt], check=False, capture_output=True)
    assert disk.target is False
    assert f"mounted: {mnt}" in disk.reasons


def test_named_regular_file_is_a_target_only_with_allow_file(tmp_path):
    img = tmp_path / "disk.img"
    img.write_bytes(b"\0" * 4096)
    with pytest.raises(DeviceError, match="regular file"):
        discover.disk_for_path(str(img))
    disk = discover.disk_for_path(str(img), allow_file=True)
    assert disk.target is True
    assert disk.transport == Transport.FILE
    assert disk.size_bytes == 4096


def test_empty_regular_file_is_protected_as_zero_size(tmp_path):
    img = tmp_path / "empty.img"
    img.touch()
    with pytest.raises(ProtectedDeviceError, match="zero size"):
        discover.require_targets([str(img)], allow_file=True)


def test_missing_path_is_a_one_line_device_error():
    with pytest.raises(DeviceError, match="/dev/ardoise-nope: no such device"):
        discover.require_targets(["/dev/ardoise-nope"])


def test_same_disk_named_twice_is_refused(loopdevs):
    dev = loopdevs.create(8 * MiB)
    with pytest.raises(DeviceError, match="same disk"):
        discover.require_targets([dev, dev])


# --------------------------------------------------------------------------- hot-plug watcher


def _next_event_for(watcher, devnode: str, *, action: str | None = None, wait_s: float = 10.0):
    """The next event about ``devnode`` (and ``action``); other processes' loop devices
    produce events too. The wait bounds a hang, it does not time anything."""
    import queue

    while True:
        try:
            event = watcher.events.get(timeout=wait_s)
        except queue.Empty:
            return None
        if event.devnode == devnode and action in (None, event.action):
            return event


def test_watcher_reports_a_loop_device_being_attached_and_detached(loopdevs):
    """Binding a backing file to a loop device raises ``change``, not ``add``: the device node
    exists before any file is bound, and only its size changes. (``add`` also shows up when
    losetup has to create a new loop device through /dev/loop-control because every existing
    one is busy, but the ``change`` always follows.) Detaching raises ``change`` again. A USB
    drive plugged into a shelf raises ``add``/``remove``; we cannot plug one in here."""
    from agent.discover.watch import DiskWatcher

    with DiskWatcher() as watcher:
        dev = loopdevs.create(8 * MiB)
        event = _next_event_for(watcher, dev, action="change")
        assert event is not None, f"no change event for {dev}"
        assert event.disk is not None and event.disk.transport == Transport.LOOP
        assert event.disk.path == dev and event.disk.size_bytes == 8 * MiB
        # Found by the watcher, not named: out of scope, as in list_disks.
        assert event.disk.target is False
        assert "loop device: out of scope unless named explicitly" in event.disk.reasons
        subprocess.run(["losetup", "--detach", dev], check=True)
        loopdevs.devices.remove(dev)
        assert _next_event_for(watcher, dev, action="change") is not None, f"no change event on detaching {dev}"


def test_watcher_does_not_report_partitions(partitioned_loop):
    """The kernel-side filter keeps only DEVTYPE=disk: adding a partition raises an ``add``
    for loopNp1 (a partition) that must not reach the queue."""
    from agent.discover.watch import DiskWatcher

    dev, part = partitioned_loop
    subprocess.run(["partx", "--delete", dev], check=True, capture_output=True)
    with DiskWatcher() as watcher:
        subprocess.run(["partx", "--add", dev], check=True, capture_output=True)
        # A change on the whole disk we cause ourselves marks the end of the partition's events.
        subprocess.run(["losetup", "--set-capacity", dev], check=True)
        seen = []
        while True:
            event = _next_event_for_any(watcher)
            if event is None:
                break
            seen.append(event.devnode)
            if event.devnode == dev:
                break
    assert part not in seen


def _next_event_for_any(watcher, wait_s: float = 5.0):
    import queue

    try:
        return watcher.events.get(timeout=wait_s)
    except queue.Empty:
        return None


def test_data_partition_is_the_one_on_the_boot_medium_not_the_one_the_label_link_names(loopdevs, tmp_path):
    """Two FAT partitions labelled ARDOISE: the stick (the 'boot medium' here) and a donated
    disk that won /dev/disk/by-label/ARDOISE. The labels are read from the real devices."""
    from agent.discover import stick

    ours, donated = loopdevs.create(64 * MiB), loopdevs.create(64 * MiB)
    for dev in (ours, donated):
        subprocess.run(["mkfs.vfat", "-F", "32", "-n", "ARDOISE", dev], check=True, capture_output=True)
    by_label = tmp_path / "by-label"
    by_label.mkdir()
    (by_label / "ARDOISE").symlink_to(donated)
    choice = stick.find(by_label, live_disks={os.path.basename(ours)})
    assert choice.device == ours, choice.why
    assert f"{donated}, also labelled ARDOISE, is not on it and is ignored" in choice.why
    # Booted from a medium without a data partition: none, whatever the link says.
    blank = loopdevs.create(8 * MiB)
    assert stick.find(by_label, live_disks={os.path.basename(blank)}).device is None
