"""`shell-command`: a program without a shell, confined, limited, and killed with its children."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil
import pytest
from pydantic import ValidationError

from nodes.base import NodeContext, NodeEnvironment
from nodes.errors import NodeError, NodeTimeout
from nodes.files import OutsideFilesRoot
from nodes.shell_command import ShellCommandNode, ShellCommandParameters

PYTHON = sys.executable


def context(
    root: Path, *, allow_shell: bool = True, deadline_s: float = 30.0, data: Any = None
) -> NodeContext:
    """A context on the files root `root`."""
    return NodeContext(
        execution_id="exec-1",
        node_id="shell",
        inputs={},
        data=data,
        deadline=time.monotonic() + deadline_s,
        environment=NodeEnvironment(files_root=root, allow_shell=allow_shell),
    )


def run(root: Path, deadline_s: float = 30.0, **parameters: Any) -> Mapping[str, Any]:
    """Run `shell-command` with `parameters` on the files root `root`."""
    params = ShellCommandParameters.model_validate(parameters)
    return ShellCommandNode().run(params, context(root, deadline_s=deadline_s))


def python(code: str, **parameters: Any) -> dict[str, Any]:
    """Parameters that run `code` with this interpreter."""
    return {"command": PYTHON, "args": ["-c", code], **parameters}


def assert_gone(pid: int, within_s: float = 5.0) -> None:
    """The process `pid` no longer runs (a zombie waiting for init counts as gone)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    pytest.fail(f"process {pid} still runs")


# --- off unless allowed ----------------------------------------------------------------------


def test_it_is_refused_unless_the_worker_allows_shell(tmp_path: Path) -> None:
    params = ShellCommandParameters(command="echo hi")
    with pytest.raises(NodeError) as caught:
        ShellCommandNode().run(params, context(tmp_path, allow_shell=False))
    assert caught.value.code == "EXECUTION_FAILED"
    assert caught.value.retryable is False
    assert "CONDUCTOR_ALLOW_SHELL=1" in str(caught.value)


# --- a program, not a shell ------------------------------------------------------------------


def test_the_command_is_split_like_a_shell_would_and_args_are_appended(tmp_path: Path) -> None:
    output = run(tmp_path, command="echo 'two words' three", args=["four five"])
    assert output["result"] == "two words three four five\n"
    assert output["stdout"] == output["result"]
    assert output["stderr"] == ""
    assert output["exitCode"] == 0
    assert output["success"] is True
    assert output["command"] == "echo 'two words' three 'four five'"
    assert output["duration_ms"] >= 0
    assert output["duration"] == output["duration_ms"]


def test_no_shell_features_apply(tmp_path: Path) -> None:
    output = run(tmp_path, command="echo $HOME | cat; ls > out.txt *")
    assert output["result"] == "$HOME | cat; ls > out.txt *\n"
    assert not (tmp_path / "out.txt").exists()


def test_stdin_is_piped_to_the_program(tmp_path: Path) -> None:
    assert run(tmp_path, command="cat", stdin="line 1\nline 2\n")["result"] == "line 1\nline 2\n"


def test_a_large_stdin_and_stdout_do_not_deadlock(tmp_path: Path) -> None:
    text = "x" * (3 * 1024 * 1024)
    assert run(tmp_path, command="cat", stdin=text)["result"] == text


def test_a_program_that_ignores_its_stdin_still_succeeds(tmp_path: Path) -> None:
    assert run(tmp_path, command="true", stdin="y" * 1_000_000)["exitCode"] == 0


def test_numbers_and_json_text_are_accepted_as_args(tmp_path: Path) -> None:
    assert run(tmp_path, command="echo", args=[1, 2.5])["result"] == "1 2.5\n"
    assert run(tmp_path, command="echo", args='["a", "b"]')["result"] == "a b\n"


def test_an_unknown_program_fails_without_retry(tmp_path: Path) -> None:
    with pytest.raises(NodeError, match="not found") as caught:
        run(tmp_path, command="no-such-program-here --help")
    assert caught.value.retryable is False


# --- environment and working directory -------------------------------------------------------


def test_the_environment_is_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDUCTOR_TEST_SECRET", "hunter2")
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    env = json.loads(run(tmp_path, **python(code, env={"GREETING": "hi"}))["result"])
    assert set(env) <= {"PATH", "HOME", "LANG", "GREETING", "LC_CTYPE"}  # macOS adds LC_CTYPE
    assert {"PATH", "HOME", "LANG", "GREETING"} <= set(env)
    assert env["HOME"] == str(tmp_path.resolve())
    assert env["GREETING"] == "hi"


def test_env_and_atomitons_environment_are_both_applied(tmp_path: Path) -> None:
    code = "import os; print(os.environ['A'], os.environ['B'])"
    parameters = python(code, env='{"A": "1", "B": "1"}', environment={"B": "2"})
    assert run(tmp_path, **parameters)["result"] == "1 2\n"


def test_it_runs_in_the_files_root_by_default(tmp_path: Path) -> None:
    root = tmp_path / "files"  # created when missing
    assert run(root, command="pwd")["result"] == f"{root.resolve()}\n"


def test_the_working_directory_is_a_folder_in_the_files_root(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    assert run(tmp_path, command="pwd", cwd="work")["result"] == f"{tmp_path.resolve() / 'work'}\n"
    output = run(tmp_path, command="pwd", workingDirectory="work/")  # Atomiton's name
    assert output["result"] == f"{tmp_path.resolve() / 'work'}\n"


def test_a_working_directory_outside_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "files"
    root.mkdir()
    with pytest.raises(OutsideFilesRoot):
        run(root, command="pwd", workingDirectory="../")
    with pytest.raises(NodeError, match="not a folder"):
        run(root, command="pwd", workingDirectory="missing")


# --- exit codes and output -------------------------------------------------------------------


def test_a_non_zero_exit_fails_with_the_code_and_the_end_of_stderr(tmp_path: Path) -> None:
    code = "import sys; sys.stderr.write('noise ' * 2000 + 'the real reason'); sys.exit(3)"
    with pytest.raises(NodeError) as caught:
        run(tmp_path, **python(code))
    message = str(caught.value)
    assert "exited with code 3" in message
    assert message.endswith("the real reason")
    assert len(message) < 2200


def test_throw_on_error_false_returns_the_failure_as_output(tmp_path: Path) -> None:
    code = "import sys; print('partial'); sys.exit(4)"
    output = run(tmp_path, **python(code, throwOnError=False))
    assert output["exitCode"] == 4
    assert output["success"] is False
    assert output["result"] == "partial\n"


def test_output_is_capped_and_the_truncation_is_noted(tmp_path: Path) -> None:
    code = "import sys; sys.stdout.write('o' * 50000); sys.stderr.write('e' * 10)"
    output = run(tmp_path, **python(code, maxBuffer=1024))
    assert output["stdout"] == "o" * 1024
    assert output["stdoutTruncated"] is True
    assert output["stderr"] == "e" * 10
    assert output["stderrTruncated"] is False


def test_output_can_be_encoded(tmp_path: Path) -> None:
    assert run(tmp_path, command="printf 'hi'", encoding="hex")["result"] == "6869"
    assert run(tmp_path, command="printf 'hi'", encoding="base64")["result"] == "aGk="
    assert run(tmp_path, command="printf 'hi'", captureOutput=False)["result"] == ""


# --- timeouts and limits ---------------------------------------------------------------------


def test_the_timeout_kills_the_whole_process_tree(tmp_path: Path) -> None:
    script = "sleep 30 & echo $! > grandchild.pid; sleep 30"
    started = time.monotonic()
    with pytest.raises(NodeTimeout, match="timed out"):
        run(tmp_path, command="sh -c", args=[script], timeout=3000)
    assert time.monotonic() - started < 8
    assert_gone(int((tmp_path / "grandchild.pid").read_text()))


def test_the_context_deadline_bounds_the_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(NodeTimeout):
        run(tmp_path, deadline_s=0.5, command="sleep 30", timeout=30_000)
    assert time.monotonic() - started < 3


def test_a_program_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(30)"
    started = time.monotonic()
    with pytest.raises(NodeTimeout):
        run(tmp_path, **python(code, timeout=500, killSignal="TERM"))
    assert time.monotonic() - started < 4


def test_what_the_program_leaves_running_is_killed_when_it_exits(tmp_path: Path) -> None:
    output = run(tmp_path, command="sh -c", args=["sleep 30 & echo $! > bg.pid; echo done"])
    assert output["result"] == "done\n"
    assert_gone(int((tmp_path / "bg.pid").read_text()))


def test_a_memory_hog_fails(tmp_path: Path) -> None:
    code = "data = bytearray(1024 ** 3); print(len(data))"
    with pytest.raises(NodeError) as caught:
        run(tmp_path, **python(code, memoryLimitMb=128))
    assert "exited with code 1" in str(caught.value)
    assert "MemoryError" in str(caught.value)


def test_a_cpu_bound_loop_is_killed_at_its_cpu_limit(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(NodeError, match="CPU time limit of 1 s") as caught:
        run(tmp_path, **python("while True: pass", cpuLimitSeconds=1, timeout=20_000))
    assert not isinstance(caught.value, NodeTimeout)
    assert caught.value.retryable is False
    assert time.monotonic() - started < 10


# --- parameters ------------------------------------------------------------------------------


def test_atomiton_parameters_are_accepted(tmp_path: Path) -> None:
    output = run(
        tmp_path,
        command="echo ok",
        shell="bash",
        timeout=5000,
        captureOutput=True,
        encoding="utf8",
        throwOnError=False,
        maxBuffer=10485760,
        killSignal="SIGTERM",
        args=[],
        environment={},
        env={},
        inheritStdio=False,
    )
    assert output["result"] == "ok\n"


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"command": ""}, "command"),
        ({"command": "echo 'unbalanced"}, "command"),
        ({"command": "   "}, "command"),
        ({"command": "echo", "inheritStdio": True}, "inheritStdio"),
        ({"command": "echo", "killSignal": "SIGNOPE"}, "killSignal"),
        ({"command": "echo", "env": {"A=B": "x"}}, "env"),
        ({"command": "echo", "memoryLimitMb": 1}, "memoryLimitMb"),
        ({"command": "echo", "shell": "fish"}, "shell"),
    ],
)
def test_invalid_parameters_name_their_field(parameters: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ShellCommandParameters.model_validate(parameters)
    assert caught.value.errors()[0]["loc"][0] == field
