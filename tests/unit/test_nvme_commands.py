"""NVMe capabilities and commands, on recorded nvme-cli outputs."""

import json

import pytest

from agent.commands import CommandLog
from agent.errors import SanitizeError, ToolTimeout
from agent.sanitize import nvme
from fakes import FIXTURES


def load(name):
    return json.loads((FIXTURES / "nvme" / name).read_text())


@pytest.fixture
def instant(monkeypatch):
    """Polling without waiting: each sleep advances a fake clock."""
    now = [0.0]
    monkeypatch.setattr(nvme, "clock", lambda: now[0])
    monkeypatch.setattr(nvme, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    return now


def test_sn730_offers_crypto_and_block_sanitize_and_crypto_format():
    caps = nvme.parse_id_ctrl(load("id-ctrl-crypto-format-supported.json"), "/dev/nvme0")
    assert (caps.sanitize_crypto, caps.sanitize_block, caps.sanitize_overwrite) == (True, True, False)
    assert caps.format_supported and caps.format_crypto
    assert caps.model == "WDC PC SN730 SDBQNTY-256G-1001"


def test_fna_without_bit_2_means_no_crypto_format():
    caps = nvme.parse_id_ctrl(load("id-ctrl-userdata-format-supported.json"), "/dev/nvme0")
    assert caps.format_supported and not caps.format_crypto


def test_oacs_without_bit_1_means_no_format_at_all():
    caps = nvme.parse_id_ctrl(load("id-ctrl-format-unsupported.json"), "/dev/nvme0")
    assert not caps.format_supported and not caps.format_crypto


def test_qemu_controller_formats_but_cannot_sanitize():
    caps = nvme.parse_id_ctrl(load("id-ctrl-qemu-7.2.json"), "/dev/nvme0")
    assert caps.oacs == 0x10A and caps.format_supported and not caps.format_crypto
    assert caps.sanicap == 0 and not (caps.sanitize_crypto or caps.sanitize_block)


@pytest.mark.parametrize(
    "name, status, percent",
    [
        ("sanitize-log-never-2.3.json", nvme.SSTAT_NEVER, 100.0),
        ("sanitize-log-in-progress-2.3.json", nvme.SSTAT_IN_PROGRESS, 25.0),
        ("sanitize-log-completed-2.3.json", nvme.SSTAT_SUCCESS, 100.0),
        ("sanitize-log-failed-2.3.json", nvme.SSTAT_FAILED, 100.0),
        ("sanitize-log-in-progress-2.11.json", nvme.SSTAT_IN_PROGRESS, 50.0),
        ("sanitize-log-completed-2.11.json", nvme.SSTAT_SUCCESS, 100.0),
    ],
)
def test_sanitize_log_status_is_read_from_every_nvme_cli_layout(name, status, percent):
    log = nvme.parse_sanitize_log(load(name))
    assert log.status == status
    assert log.percent == pytest.approx(percent, abs=0.1)
    assert log.estimates["crypto"] == 10 and log.estimates["block"] == 120 and log.estimates["overwrite"] is None


def test_old_integer_sstat_is_decoded():
    log = nvme.parse_sanitize_log({"sprog": 65535, "sstat": 0x101, "time_crypto_erase": 4294967295})
    assert log.succeeded and log.global_erased and log.estimates["crypto"] is None


def test_garbage_sanitize_log_is_a_tool_output_error():
    with pytest.raises(Exception) as exc:
        nvme.parse_sanitize_log({"nvme0": {"foo": 1}})
    assert "sprog" in str(exc.value)


@pytest.mark.parametrize("action", ["exit-failure", "overwrite", "1"])
def test_sanitize_refuses_any_action_but_crypto_and_block(fake_commands, action):
    with pytest.raises(SanitizeError):
        nvme.sanitize("/dev/nvme0", action, timeout=10, log=CommandLog())
    assert fake_commands.calls == []


def test_sanitize_crypto_sends_sanact_4_and_polls_until_complete(fake_commands, instant):
    fake_commands.add(["nvme", "sanitize", "/dev/nvme0", "--sanact=4"])
    log_argv = ["nvme", "sanitize-log", "/dev/nvme0", "-o", "json"]
    fake_commands.add(log_argv, fixture="nvme/sanitize-log-in-progress-2.3.json", times=2)
    fake_commands.add(log_argv, fixture="nvme/sanitize-log-completed-2.3.json")
    seen = []
    state = nvme.sanitize("/dev/nvme0", "crypto", timeout=600, log=CommandLog(), progress=seen.append)
    assert state.succeeded
    assert seen == [25.0, 25.0, 100.0]
    assert not any("--sanact=1" in c for c in fake_commands.calls)


def test_sanitize_block_sends_sanact_2(fake_commands, instant):
    fake_commands.add(["nvme", "sanitize", "/dev/nvme0", "--sanact=2"])
    fake_commands.add(["nvme", "sanitize-log", "/dev/nvme0", "-o", "json"], fixture="nvme/sanitize-log-completed-2.11.json")
    assert nvme.sanitize("/dev/nvme0", "block", timeout=600, log=CommandLog()).succeeded


def test_sanitize_that_never_finishes_times_out(fake_commands, instant):
    fake_commands.add(["nvme", "sanitize", "/dev/nvme0", "--sanact=4"])
    fake_commands.add(["nvme", "sanitize-log", "/dev/nvme0", "-o", "json"], fixture="nvme/sanitize-log-in-progress-2.3.json")
    with pytest.raises(ToolTimeout):
        nvme.sanitize("/dev/nvme0", "crypto", timeout=60, log=CommandLog(), poll_interval=5)
    assert instant[0] >= 60


def test_sanitize_reported_failed_by_the_log_is_an_error(fake_commands, instant):
    fake_commands.add(["nvme", "sanitize", "/dev/nvme0", "--sanact=4"])
    fake_commands.add(["nvme", "sanitize-log", "/dev/nvme0", "-o", "json"], fixture="nvme/sanitize-log-failed-2.3.json")
    with pytest.raises(SanitizeError, match="failed"):
        nvme.sanitize("/dev/nvme0", "crypto", timeout=60, log=CommandLog())


def test_sanitize_refused_by_qemu_is_reported_with_the_controller_message(fake_commands):
    fake_commands.add(
        ["nvme", "sanitize", "/dev/nvme0", "--sanact=2"], returncode=1, stderr="NVMe status: Invalid Command Opcode: A reserved coded value or an unsupported value in the command opcode field(0x1)\n"
    )
    fake_commands.add(["nvme", "sanitize-log", "/dev/nvme0", "-o", "json"], returncode=1, stderr="NVMe status: Invalid Field in Command(0x2)\n")
    log = CommandLog()
    with pytest.raises(SanitizeError, match="refused.*Invalid Command Opcode"):
        nvme.sanitize("/dev/nvme0", "block", timeout=60, log=log)
    assert log.entries[0]["exit_code"] == 1


def test_timeout_comes_from_the_drive_estimate_when_it_gives_one():
    assert nvme.sanitize_timeout(10, 10**12) == 140.0
    assert nvme.sanitize_timeout(None, 0) == 600.0


def test_format_refuses_ses_0(fake_commands):
    with pytest.raises(SanitizeError):
        nvme.format_namespace("/dev/nvme0", 1, 0, timeout=10, log=CommandLog())
    assert fake_commands.calls == []


def test_namespaces_are_listed_from_list_ns(fake_commands):
    fake_commands.add(["nvme", "list-ns", "/dev/nvme0", "-o", "json"], fixture="nvme/list-ns-two.json")
    assert nvme.list_namespaces("/dev/nvme0") == [1, 2]


def test_controller_of_namespace():
    assert nvme.controller_of("/dev/nvme12n3") == "/dev/nvme12"
    with pytest.raises(SanitizeError):
        nvme.controller_of("/dev/sda")


def test_sanitize_refused_because_an_interrupted_one_resumed_waits_for_it(fake_commands, instant):
    fake_commands.add(["nvme", "sanitize", "/dev/nvme0", "--sanact=4"], returncode=1, stderr="NVMe status: Sanitize In Progress(0x1d)\n")
    log_argv = ["nvme", "sanitize-log", "/dev/nvme0", "-o", "json"]
    fake_commands.add(log_argv, fixture="nvme/sanitize-log-in-progress-2.3.json", times=2)
    fake_commands.add(log_argv, fixture="nvme/sanitize-log-completed-2.3.json")
    assert nvme.sanitize("/dev/nvme0", "crypto", timeout=600, log=CommandLog()).succeeded
