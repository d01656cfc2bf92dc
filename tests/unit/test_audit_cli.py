"""`ardoise audit`: valid JSON on this machine, one-line errors, no traceback without smartctl."""

from __future__ import annotations

import json

import agent.audit
import agent.discover
from agent.cli import main
from agent.records import CpuInfo, Disk, MachineInfo, MemoryInfo, Transport


def test_audit_json_on_this_machine_covers_every_section(capsys):
    assert main(["audit", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) >= {"machine", "disks", "verdict", "reasons", "thresholds"}
    m = report["machine"]
    for section in ("dmi", "cpu", "memory", "batteries", "gpus", "nics", "displays"):
        assert section in m
        if m[section] is None:
            assert m["missing"][section], section
    assert report["verdict"] in ("reuse", "repair", "recycle")
    for d in report["disks"]:
        assert d["health"]["verdict"] in ("good", "worn", "failing", "unknown")
        assert d["health"]["reasons"]


def test_audit_human_report_ends_with_the_verdict(capsys):
    assert main(["audit"]) == 0
    out = capsys.readouterr().out
    assert "\nVerdict: " in out


def test_audit_of_a_missing_device_is_a_one_line_error(capsys):
    assert main(["audit", "/dev/ardoise-no-such-disk"]) == 3
    assert capsys.readouterr().err == "ardoise: /dev/ardoise-no-such-disk: no such device\n"


def test_audit_without_smartctl_warns_in_one_line_and_still_reports(capsys, monkeypatch, fake_commands):
    fake_commands.missing_tools.add("smartctl")
    fake_commands.missing_tools.add("lspci")  # controller names: optional
    sata = Disk(path="/dev/sda", name="sda", transport=Transport.SATA, target=True, reasons=["no protection rule applies"])
    monkeypatch.setattr(agent.discover, "list_disks", lambda **kw: [sata])
    monkeypatch.setattr(
        agent.audit, "read_machine", lambda: MachineInfo(cpu=CpuInfo(arch="X86_64", flags=["lm"]), memory=MemoryInfo(8 << 30))
    )
    assert main(["audit", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "ardoise: warning: smartctl is not installed: disk health is unknown\n"
    report = json.loads(captured.out)
    assert report["disks"][0]["health"]["reasons"] == ["smartctl is not installed"]
    assert "Traceback" not in captured.err


def test_audit_reports_the_storage_controllers_and_the_machines_storage_state(capsys):
    assert main(["audit", "--json"]) == 0
    storage = json.loads(capsys.readouterr().out)["storage"]
    assert storage["state"] in ("ok", "storage_unreachable", "no_disk_found")
    assert storage["controllers"] is not None or storage["missing"]["controllers"]
    assert main(["audit"]) == 0
    assert "\nStorage    " in capsys.readouterr().out
