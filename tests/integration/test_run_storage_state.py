"""The machine's storage state through the unattended run: hidden storage makes the
machine FAILED with the firmware advice on screen, in the log and in the signed audit;
no disk at all is NO DISK FOUND, not PASSED. The decision runs on recorded sysfs trees."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from agent import tui
from agent.config import Config
from agent.discover.controllers import ADVICE, check_storage
from agent.records import StorageState
from agent.run import run_unattended
from tests.integration.test_run_pipeline import FakeStages, disk
from tests.sysfs_tree import build, load


@pytest.fixture
def cfg(tmp_path) -> Config:
    c = Config.default()
    c.state_dir = tmp_path / "state"
    c.finish_display_seconds = 0
    return c


def stages_on(machine: str, fake: FakeStages, tmp_path, signed: list):
    root = build(load(machine), tmp_path / "sys")
    stages = fake.stages()
    stages.check_storage = lambda disks, cfg, expect: check_storage(
        disks, expect_disks=expect, sys_root=str(root), kmsg=str(tmp_path / "no-kmsg"), names=False, settle_s=0)
    sign = stages.sign_audit
    stages.sign_audit = lambda audit, cfg, key: (signed.append(audit), sign(audit, cfg, key))[1]
    return stages


def final_screen(view: tui.RunView) -> str:
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(tui.render(view))
    return out.getvalue()


def test_vmd_hiding_the_nvme_fails_the_machine_even_when_the_visible_disk_passes(cfg, tmp_path):
    fake = FakeStages([disk(1)])
    signed: list = []
    view = tui.RunView()
    lines = io.StringIO()
    tui.LogDisplay(view, stream=lines)
    summary = run_unattended(cfg, stages=stages_on("dell-xps-13-9310-vmd-domain-empty", fake, tmp_path, signed), view=view)
    # The visible disk is still wiped and certified: hidden storage does not spare it.
    assert fake.sanitized == ["/dev/fake1"] and view.rows["/dev/fake1"].state == tui.PASSED
    assert summary.storage_state == StorageState.STORAGE_UNREACHABLE
    assert not summary.ok and summary.exit_code == 5
    assert view.machine_state == "storage_unreachable" and view.machine_reason.startswith(ADVICE)
    assert signed[0].storage.state == StorageState.STORAGE_UNREACHABLE
    assert "VMD controller 0000:00:0e.0" in signed[0].storage.reasons[0]
    log = lines.getvalue()
    assert f"RESULT machine: FAILED; {ADVICE}" in log
    screen = final_screen(view)
    assert "this machine" in screen and "storage not reachable" in screen


def test_a_machine_without_any_disk_is_no_disk_found_not_passed(cfg, tmp_path):
    fake = FakeStages([disk(1, target=False, reasons=["boot medium"])])
    signed: list = []
    view = tui.RunView()
    lines = io.StringIO()
    tui.LogDisplay(view, stream=lines)
    summary = run_unattended(cfg, stages=stages_on("intel-nuc8i7beh-ahci-and-nvme-no-disk", fake, tmp_path, signed), view=view)
    assert fake.sanitized == []
    assert summary.storage_state == StorageState.NO_DISK_FOUND
    assert view.machine_state == "no_disk_found"
    assert signed[0].storage.state == StorageState.NO_DISK_FOUND
    assert "RESULT machine: NO DISK FOUND; no disk to sanitize was found (1 protected)" in lines.getvalue()
    screen = final_screen(view)
    assert tui.big_text("NO DISK FOUND").splitlines()[0] in screen
    assert "No disk was sanitized" not in screen and "PASSED" not in screen


def test_rst_raid_mode_with_its_disk_visible_is_an_ordinary_pass(cfg, tmp_path):
    sda = disk(1)
    sda.path, sda.name = "/dev/sda", "sda"  # the disk the recorded tree shows beneath the controller
    fake = FakeStages([sda])
    signed: list = []
    view = tui.RunView()
    summary = run_unattended(cfg, stages=stages_on("dell-precision-7520-rst-raid-mode-ahci", fake, tmp_path, signed), view=view)
    assert summary.ok and summary.exit_code == 0
    assert view.machine_state is None and signed[0].storage.state == StorageState.OK


def test_a_disk_probed_after_the_listing_is_listed_again_and_wiped(cfg, tmp_path):
    """A RAID volume the kernel finishes scanning after the first listing: the run lists
    the disks once more instead of leaving it unwiped (or failing the machine)."""
    sda = disk(1)
    sda.path, sda.name = "/dev/sda", "sda"
    fake = FakeStages([sda])
    signed: list = []
    stages = stages_on("dell-precision-7520-rst-raid-mode-ahci", fake, tmp_path, signed)
    listings = [[], [sda]]
    stages.find_disks = lambda c: listings.pop(0) if len(listings) > 1 else listings[0]
    view = tui.RunView()
    summary = run_unattended(cfg, stages=stages, view=view)
    assert fake.sanitized == ["/dev/sda"]
    assert summary.ok and summary.storage_state == StorageState.OK


def test_hidden_storage_in_french_on_the_screen_and_in_the_log_english_in_the_signed_audit(cfg, tmp_path):
    from agent import i18n

    before = i18n.current()
    i18n.use_language("fr")
    try:
        fake = FakeStages([disk(1)])
        signed: list = []
        view = tui.RunView()
        lines = io.StringIO()
        tui.LogDisplay(view, stream=lines)
        run_unattended(cfg, stages=stages_on("dell-xps-13-9310-vmd-domain-empty", fake, tmp_path, signed), view=view)
        log = lines.getvalue()
        screen = final_screen(view)
    finally:
        i18n.use_language(before.code, before.timezone)
    advice = "stockage inaccessible : passez le mode SATA en AHCI"
    assert "audit de la machine" in log and "machine : stockage inaccessible : " + advice in log, log
    assert "RÉSULTAT machine : ÉCHEC ; " + advice in log and "contrôleur VMD 0000:00:0e.0" in log, log
    assert "ÉCHEC : cette machine" in screen and advice in screen.replace("\n", " "), screen
    assert "this machine" not in screen and "storage not reachable" not in log + screen
    # The signed audit keeps the English sentences (docs/i18n.md).
    assert "VMD controller 0000:00:0e.0" in signed[0].storage.reasons[0]
    assert view.machine_reason.startswith(ADVICE)
