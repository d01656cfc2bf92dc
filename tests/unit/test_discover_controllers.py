"""Storage controllers on recorded machines: which hide their disks, and which do not."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.discover import controllers
from agent.records import Disk, StorageController, StorageState
from tests.fakes import FIXTURES
from tests.sysfs_tree import SYSFS_FIXTURES, build, load

MACHINES = sorted(p.stem for p in SYSFS_FIXTURES.glob("*.json"))
KMSG = FIXTURES / "kmsg"


def disks_of(spec: dict) -> list[Disk]:
    return [Disk(path=f"/dev/{n}", name=n, target=n in spec["targets"]) for n in spec["block"]]


def kernel_lines(spec: dict) -> list[str]:
    if not spec.get("kmsg"):
        return []
    lines, why = controllers.read_kernel_log(str(KMSG / spec["kmsg"]))
    assert why is None
    return lines


@pytest.mark.parametrize("machine", MACHINES)
def test_each_recorded_machine_gets_its_controllers_and_state(machine, tmp_path):
    spec = load(machine)
    root = build(spec, tmp_path / "sys")
    found, why = controllers.read_controllers(str(root))
    assert why is None
    report = controllers.storage_state(found, kernel_lines(spec), disks_of(spec))
    expect = spec["expect"]
    assert report.state == expect["state"], report.reasons
    by_slot = {c.slot: c for c in found}
    assert set(by_slot) == set(expect["controllers"])
    for slot, want in expect["controllers"].items():
        c = by_slot[slot]
        assert (c.kind, c.driver, c.disks) == (want["kind"], want["driver"], want["disks"]), slot
        if "problem" in want:
            assert want["problem"] in (c.problem or ""), c.problem
        else:
            assert c.problem is None, c.problem
    if report.state == StorageState.STORAGE_UNREACHABLE:
        assert report.advice == "storage not reachable: set SATA mode to AHCI in the firmware setup (F2 / Del)"
    else:
        assert report.advice is None
    if "reasons" in expect:
        assert len(report.reasons) == expect["reasons"], report.reasons


def test_raid_mode_bound_by_ahci_with_its_disk_is_fine_but_the_remap_warning_alone_fails_it(tmp_path):
    """Intel RST RAID mode is not always a problem: the ahci driver binds and the SSD is
    wiped. The same machine with NVMe remapped behind it hides a drive: FAILED."""
    spec = load("dell-precision-7520-rst-raid-mode-ahci")
    found, _ = controllers.read_controllers(str(build(spec, tmp_path / "sys")))
    assert controllers.storage_state(found, [], disks_of(spec)).state == StorageState.OK
    journal = (KMSG / "journal-ahci-remapped-nvme-wiki.txt").read_text().splitlines()
    report = controllers.storage_state(found, journal, disks_of(spec))
    assert report.state == StorageState.STORAGE_UNREACHABLE
    assert report.reasons == ["the kernel found 1 NVMe drive(s) remapped behind the SATA controller 0000:00:17.0 (Intel RST)"]
    assert report.kernel_warnings == ["kernel: ahci 0000:00:17.0: Found 1 remapped NVMe devices."]
    assert found[0].problem == "hides 1 remapped NVMe drive(s)"


def test_remap_warning_is_read_from_the_kmsg_records_and_the_journal_alike():
    kmsg, why = controllers.read_kernel_log(str(KMSG / "ahci-found-1-remapped-nvme.txt"))
    assert why is None
    assert kmsg[0] == "ahci 0000:00:17.0: Found 1 remapped NVMe devices."
    assert not any(line.startswith(" ") or "SUBSYSTEM" in line for line in kmsg)
    assert [w[:2] for w in controllers.remap_warnings(kmsg)] == [("0000:00:17.0", 1)]
    assert controllers.remap_warnings(["ahci 0000:00:17.0: AHCI 0001.0301 32 slots 1 ports 6 Gbps 0x1 impl RAID mode"]) == []
    assert controllers.remap_warnings(["ahci 0000:00:17.0: Found 0 remapped NVMe devices."]) == []


def test_an_unreadable_kernel_log_is_a_reason_not_a_crash(tmp_path):
    lines, why = controllers.read_kernel_log(str(tmp_path / "no-kmsg"))
    assert lines is None and "cannot read the kernel log" in why


def test_no_target_is_no_disk_found_only_when_disks_are_expected():
    ahci = StorageController(slot="0000:00:17.0", class_code="010601", kind="ahci", driver="ahci")
    stick = Disk(path="/dev/sda", name="sda", target=False, reasons=["boot medium"])
    report = controllers.storage_state([ahci], [], [stick])
    assert report.state == StorageState.NO_DISK_FOUND
    assert report.reasons == ["no disk to sanitize was found (1 protected)"]
    # A shelf station starts empty and waits for drives: that is not a finding.
    assert controllers.storage_state([ahci], [], [stick], expect_disks=False).state == StorageState.OK


def test_hidden_storage_wins_over_a_visible_disk():
    """One disk wiped and one NVMe hidden is FAILED, never passed."""
    visible = Disk(path="/dev/sda", name="sda", target=True)
    vmd = StorageController(slot="0000:00:0e.0", class_code="010400", kind="vmd", driver="vmd")
    ahci = StorageController(slot="0000:00:17.0", class_code="010601", kind="ahci", driver="ahci", disks=["sda"])
    report = controllers.storage_state([ahci, vmd], [], [visible])
    assert report.state == StorageState.STORAGE_UNREACHABLE
    assert report.reasons == ["VMD controller 0000:00:0e.0 shows no NVMe drive in its domain: VMD hides it"]


def test_an_empty_sd_reader_or_nvme_slot_hides_nothing():
    sd = StorageController(slot="0000:0b:00.0", class_code="080501", kind="sd_host", driver="sdhci-pci")
    assert controllers.controller_problem(sd) is None


def test_kind_tells_vmd_from_rst_raid_mode_by_device_id_even_without_a_driver():
    assert controllers.kind_of("010400", "9a0b", None) == "vmd"
    assert controllers.kind_of("010400", "282a", "ahci") == "raid"
    assert controllers.kind_of("010601", "a352", "ahci") == "ahci"
    assert controllers.kind_of("010802", "174a", "nvme") == "nvme"
    assert controllers.kind_of("088000", "09ab", None) is None  # RST VMD managed dummy function
    assert controllers.kind_of("080501", "2294", "sdhci-pci") == "sd_host"


def test_check_storage_names_controllers_through_lspci(tmp_path, fake_commands):
    spec = load("dell-xps-13-9310-vmd-bound")
    root = build(spec, tmp_path / "sys")
    fake_commands.add(
        ["lspci", "-D", "-mm", "-nn"],
        '0000:00:0e.0 "RAID bus controller [0104]" "Intel Corporation [8086]" '
        '"Volume Management Device NVMe RAID Controller [9a0b]" -p00 "Dell [1028]" "Device [0991]"\n',
    )
    report = controllers.check_storage(disks_of(spec), sys_root=str(root), kmsg=str(tmp_path / "none"))
    assert report.state == StorageState.OK
    vmd = next(c for c in report.controllers if c.slot == "0000:00:0e.0")
    assert vmd.name == "Volume Management Device NVMe RAID Controller"
    assert "kernel_log" in report.missing


def test_no_pci_bus_is_a_reason(tmp_path):
    found, why = controllers.read_controllers(str(tmp_path))
    assert found is None and "no PCI bus" in why


@pytest.mark.parametrize("machine, block, volume", [
    ("qemu-megasas-raid-volume-and-jbod", "sdb", "megaraid_sas at 0000:00:04.0"),
    ("qemu-megasas-raid-volume-and-jbod", "sdc", None),  # JBOD: the drive itself
    ("dell-latitude-e6420-rst-raid-mode-ahci", "sda", None),  # RST RAID mode under ahci: a drive
    ("dell-xps-13-9310-vmd-bound", "nvme0n1", None),  # NVMe behind VMD: a drive
    ("acer-nitro-an515-54-intel-nvme-remap", "nvme0n1", None),
    ("gigabyte-h310m-h-ahci", "sda", None),
])
def test_a_raid_volume_is_told_from_a_drive(machine, block, volume, tmp_path):
    root = build(load(machine), tmp_path / "sys")
    assert controllers.raid_volume_of(root / "block" / block) == volume


def test_a_disk_probed_after_the_scan_is_storage_not_reachable():
    """A RAID volume the kernel finished scanning after the run listed its disks would be
    left unwiped on a PASSED machine: it makes the machine FAILED instead."""
    raid = StorageController(slot="0000:00:04.0", class_code="010400", kind="raid", driver="megaraid_sas",
                             disks=["sdb"])
    report = controllers.storage_state([raid], [], [Disk(path="/dev/sda", name="sda", target=True)])
    assert report.state == StorageState.STORAGE_UNREACHABLE
    assert report.reasons == ["sdb beneath 0000:00:04.0 appeared after the disks were listed: it is not sanitized"]
    emmc = StorageController(slot="0000:00:10.0", class_code="080501", kind="sd_host", driver="sdhci-pci",
                             disks=["mmcblk0", "mmcblk0boot0", "mmcblk0boot1"])
    assert controllers.storage_state([emmc], [], [Disk(path="/dev/mmcblk0", name="mmcblk0", target=True)]).state == "ok"


def test_check_storage_waits_for_a_controller_still_scanning(tmp_path):
    spec = load("dell-xps-13-9310-vmd-domain-empty")
    root = build(spec, tmp_path / "sys")
    full = load("dell-xps-13-9310-vmd-bound")
    slept = []

    def sleep(s):
        slept.append(s)
        if len(slept) == 3:  # the NVMe behind VMD shows up after three seconds
            build({"pci": {k: v for k, v in full["pci"].items() if "10000" in k}, "block": full["block"]}, root)

    disks = [Disk(path="/dev/nvme0n1", name="nvme0n1", target=True)]
    report = controllers.check_storage(disks, sys_root=str(root), kmsg=str(tmp_path / "none"), names=False,
                                       settle_s=10, sleep=sleep)
    assert report.state == StorageState.OK and len(slept) == 3
    report = controllers.check_storage([], sys_root=str(build(spec, tmp_path / "sys2")),
                                       kmsg=str(tmp_path / "none"), names=False, settle_s=4, sleep=lambda s: None)
    assert report.state == StorageState.STORAGE_UNREACHABLE


def test_disks_listed_but_not_named_are_not_late_arrivals():
    raid = StorageController(slot="0000:00:04.0", class_code="010400", kind="raid", driver="megaraid_sas",
                             disks=["sda", "sdb"])
    named = [Disk(path="/dev/sda", name="sda", target=True)]
    listed = named + [Disk(path="/dev/sdb", name="sdb", target=False, reasons=["excluded serial"])]
    assert controllers.storage_state([raid], [], named, listed=listed).state == StorageState.OK


def test_a_shelf_station_takes_late_disks_through_its_watcher():
    raid = StorageController(slot="0000:00:04.0", class_code="010400", kind="raid", driver="megaraid_sas",
                             disks=["sdb"])
    assert controllers.storage_state([raid], [], [], expect_disks=False).state == StorageState.OK
