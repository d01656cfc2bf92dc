"""The whole sanitize path on real loop devices: discover -> plan -> execute -> verify.

Firmware commands are recorded outputs (no drive here has them); canaries, read-back and
the overwrite fallback do real I/O on the loop device.
"""

import json
import os

import pytest

from agent import discover
from agent.cli import main
from agent.config import Config
from agent.records import Category, Outcome, StepStatus, Transport, Media
from agent.sanitize import execute, nvme
from agent.sanitize.policy import Capabilities, make_plan, plan_from_capabilities
from fakes import FIXTURES

pytestmark = pytest.mark.root
SIZE = 32 << 20
SECRET = b"ACME payroll 2026 "


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


def test_loop_device_is_planned_overwrite_only_and_sanitized_clear(loopdevs, tmp_path):
    dev = loopdevs.create(SIZE, fill=SECRET)
    disk = discover.disk_for_path(dev)
    plan = make_plan(disk, config=Config(state_dir=tmp_path))
    assert [s.method for s in plan.steps] == ["overwrite:zero"]
    result = execute.sanitize(plan, config=Config(state_dir=tmp_path))
    assert result.outcome == Outcome.SUCCESS and result.category == Category.CLEAR
    assert result.verification.status == "passed" and result.bytes_written == SIZE
    assert SECRET not in read_all(dev)


def test_firmware_format_that_erases_nothing_is_caught_by_canaries(loopdevs, fake_commands, tmp_path):
    dev = loopdevs.create(SIZE, fill=SECRET)
    data = json.loads((FIXTURES / "nvme" / "id-ctrl-qemu-7.2.json").read_text())
    disk = discover.disk_for_path(dev)
    disk.transport, disk.media = Transport.NVME, Media.NVME  # a QEMU-like NVMe, on a loop device
    plan = plan_from_capabilities(disk, Capabilities(nvme=nvme.parse_id_ctrl(data, "/dev/nvme0")))
    fake_commands.add(["nvme", "list-ns", "/dev/nvme0", "-o", "json"], fixture="nvme/list-ns-one.json")
    # The format "succeeds" and does nothing to the medium.
    fake_commands.add(["nvme", "format", "/dev/nvme0", "--namespace-id=1", "--ses=1", "--force"], "Success formatting namespace:1\n")
    result = execute.sanitize(plan, config=Config(state_dir=tmp_path))
    fmt = next(s for s in result.steps if s.method == "nvme-format-user-data")
    assert fmt.status == StepStatus.FAILED and "canaries survived" in fmt.error
    assert fmt.verification.method == "canary" and fmt.verification.status == "failed"
    assert result.method == "overwrite:zero"
    assert result.outcome == Outcome.SUCCESS and result.category == Category.CLEAR, "a purge that fell back is Clear"
    assert SECRET not in read_all(dev)


def test_crypto_format_that_erases_only_part_of_the_drive_falls_back_to_overwrite(loopdevs, fake_commands, tmp_path):
    """Issue 15: a Format NVM that reports success but leaves data (here: the second half
    of the namespace untouched, as a drive that drops the command for some LBA ranges) is
    judged by the canaries, not by its exit status, and ends in the overwrite: Clear."""
    dev = loopdevs.create(SIZE, fill=SECRET)
    data = json.loads((FIXTURES / "nvme" / "id-ctrl-qemu-7.2.json").read_text())
    data["fna"] = 4  # crypto erase supported as part of Format NVM: --ses=2 is planned first
    disk = discover.disk_for_path(dev)
    disk.transport, disk.media = Transport.NVME, Media.NVME
    plan = plan_from_capabilities(disk, Capabilities(nvme=nvme.parse_id_ctrl(data, "/dev/nvme0")))
    fmt_steps = [s.method for s in plan.steps if s.method.startswith("nvme-format")]
    assert fmt_steps[0] == "nvme-format-crypto", plan.steps

    def erase_first_half(argv):
        with open(dev, "r+b") as f:
            f.write(bytes(SIZE // 2))
            f.flush()
            os.fsync(f.fileno())

    fake_commands.add(["nvme", "list-ns", "/dev/nvme0", "-o", "json"], fixture="nvme/list-ns-one.json")
    for ses in ("2", "1"):
        fake_commands.add(["nvme", "format", "/dev/nvme0", "--namespace-id=1", f"--ses={ses}", "--force"],
                          "Success formatting namespace:1\n", effect=erase_first_half)
    result = execute.sanitize(plan, config=Config(state_dir=tmp_path))
    formats = [s for s in result.steps if s.method.startswith("nvme-format")]
    assert formats and all(s.status == StepStatus.FAILED and "canaries survived" in s.error for s in formats)
    assert result.method == "overwrite:zero"
    assert result.outcome == Outcome.SUCCESS and result.category == Category.CLEAR
    assert SECRET not in read_all(dev)


def test_plan_json_explains_every_disk_of_this_machine(loopdevs, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ARDOISE_STATE_DIR", str(tmp_path))
    dev = loopdevs.create(8 << 20)
    assert main(["plan", "--json"]) == 0
    plans = json.loads(capsys.readouterr().out)
    assert plans, "at least the boot disk"
    for p in plans:
        assert p["summary"]
        if not p["target"]:
            assert p["steps"] == [] and p["summary"].startswith("not a target: ")
        else:
            assert p["steps"] and all(s["reason"] for s in p["steps"])
    if os.path.exists("/dev/vda"):
        vda = next(p for p in plans if p["device"] == "/dev/vda")
        assert not vda["target"] and "boot medium" in vda["summary"]
    assert main(["plan", "--json", dev]) == 0
    (loop,) = json.loads(capsys.readouterr().out)
    assert loop["target"] and loop["summary"] == "overwrite:zero (Clear)"
    assert "no drive firmware" in loop["steps"][0]["reason"]
