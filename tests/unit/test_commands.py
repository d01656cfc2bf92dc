import json

import pytest

from agent import commands
from agent.errors import ToolError, ToolMissing, ToolOutputError, ToolTimeout
from fakes import FakeRunner, UnrecordedCommand


def test_real_runner_forces_c_locale():
    result = commands.run(["sh", "-c", "echo $LC_ALL"])
    assert result.stdout.strip() == "C"


def test_missing_tool_is_a_one_line_error():
    with pytest.raises(ToolMissing) as exc:
        commands.run(["ardoise-no-such-tool", "--x"])
    assert "not installed" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_timeout_is_reported_not_hung():
    with pytest.raises(ToolTimeout):
        commands.run(["sleep", "5"], timeout=0.2)


def test_garbage_json_is_a_tool_output_error():
    result = commands.run(["echo", "{not json"])
    with pytest.raises(ToolOutputError) as exc:
        result.json()
    assert "echo printed output that is not JSON" in str(exc.value)


def test_check_raises_with_the_tool_message():
    with pytest.raises(Exception) as exc:
        commands.run(["sh", "-c", "echo boom >&2; exit 3"], check=True)
    assert "exited 3: boom" in str(exc.value)


def test_fake_runner_fails_on_unrecorded_command():
    fake = FakeRunner().add(["nvme", "list"], stdout="{}")
    with commands.use_runner(fake):
        assert commands.run(["nvme", "list"]).stdout == "{}"
        with pytest.raises(UnrecordedCommand):
            commands.run(["nvme", "format", "/dev/nvme0n1"])
    assert fake.unrecorded == [("nvme", "format", "/dev/nvme0n1")]


def test_fake_runner_serves_answers_in_order_then_repeats_last():
    fake = FakeRunner().add(["s"], "1").add(["s"], "2")
    with commands.use_runner(fake):
        assert [commands.run(["s"]).stdout for _ in range(3)] == ["1", "2", "2"]


def test_secret_argv_elements_are_redacted_in_results_and_errors(fake_commands):
    from agent.commands import Secret

    fake_commands.add(["hdparm", "--security-unlock", "hunter2", "/dev/sda"], returncode=5, stdout="password=hunter2\n")
    result = commands.run(["hdparm", "--security-unlock", Secret("hunter2"), "/dev/sda"])
    assert fake_commands.calls[-1][2] == "hunter2"
    assert result.argv == ("hdparm", "--security-unlock", "***", "/dev/sda")
    assert "hunter2" not in json.dumps(result.to_record())
    with pytest.raises(ToolError) as err:
        result.check()
    assert "hunter2" not in str(err.value) and "hunter2" not in str(err.value.detail)

    class Hung(FakeRunner):
        def __call__(self, argv, *, timeout, input):
            raise ToolTimeout(f"{' '.join(argv)} did not finish", argv=list(argv))

    with commands.use_runner(Hung()), pytest.raises(ToolTimeout) as err:
        commands.run(["hdparm", "--security-unlock", Secret("hunter2"), "/dev/sda"])
    assert "hunter2" not in str(err.value) and err.value.detail["argv"][2] == "***"
