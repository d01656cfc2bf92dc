"""`ardoise disks` on this machine: valid JSON, one-line errors."""

from __future__ import annotations

import json

from agent.cli import main


def test_disks_json_is_a_list_with_a_decision_and_reasons_for_every_disk(capsys):
    assert main(["disks", "--json"]) == 0
    disks = json.loads(capsys.readouterr().out)
    assert isinstance(disks, list) and disks
    for d in disks:
        assert isinstance(d["target"], bool)
        assert d["reasons"], d["path"]
        assert d["transport"] and d["media"]


def test_disks_table_names_every_disk(capsys):
    assert main(["disks"]) == 0
    out = capsys.readouterr().out
    assert "DEVICE" in out and "TARGET" in out


def test_disks_with_a_missing_device_prints_one_line_and_fails(capsys):
    assert main(["disks", "/dev/ardoise-no-such-disk"]) == 3
    err = capsys.readouterr().err
    assert err == "ardoise: /dev/ardoise-no-such-disk: no such device\n"


def test_disks_with_a_character_device_is_refused(capsys):
    assert main(["disks", "/dev/null", "--json"]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "ardoise: /dev/null is not a block device\n"


def test_disks_table_prints_hostile_model_and_serial_as_typed(capsys):
    from agent.cli.disks import print_table
    from agent.records import Disk, Media

    hostile = Disk(path="/dev/sdx", name="sdx", media=Media.HDD, model="[/x] [bold red]FAKE", serial="[/]\x1b[2J",
                   size_bytes=10**9, target=False, reasons=["excluded [/]"])
    print_table([hostile])  # MarkupError before: "[/]" closes no tag
    out = capsys.readouterr().out
    assert "[/x] [bold red]FAKE" in out and "[/]" in out and "excluded [/]" in out
    assert "\x1b[2J" not in out  # the serial cannot clear the technician's terminal


def test_an_error_quoting_a_hostile_path_is_one_line_without_controls(capsys):
    assert main(["disks", "/dev/nonexistent\x1b[2J"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "/dev/nonexistent\\x1b[2J" in err
