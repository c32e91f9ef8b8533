"""What a newcomer meets first: `--version`, a fast `--help`, the execution id before the
wait, the error object of a failed run, and one line with exit code 3 or 130 (never a
traceback) when Redis, the history store or a port is not there, or on Ctrl-C."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from conductor.embedded import RedisServer, WorkerProcess, free_port
from tests.conftest import REPO
from tests.e2e.test_cli import conductor

SLOW = "id: slow\nname: Slow\nnodes:\n  - {id: wait, type: delay, parameters: {ms: 20000}}\n"
FAILS = (
    "id: f\nname: F\nnodes:\n  - {id: boom, type: transform, parameters: "
    "{transformFunction: \"x => { throw new Error('bad row') }\"}}\n"
)


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    for word in words:
        assert word in done.stderr, done.stderr


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port this test process listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_version_prints_the_package_version() -> None:
    done = conductor("--version", env={})
    assert done.returncode == 0
    assert done.stdout.strip() == f"conductor, version {version('conductor')}"


def test_help_imports_no_command() -> None:
    script = (
        "import sys\n"
        "from conductor.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('celery', 'pydantic', 'redis', 'nodes.registry') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert "HEAVY []" in done.stdout
    for command in ("run", "validate", "worker", "api", "history", "cancel", "dev", "flower"):
        assert command in done.stdout
    assert "is not reachable, 130" in done.stdout  # the exit codes are documented in --help


def test_run_prints_the_execution_id_before_it_waits(
    tmp_path: Path, redis_server: RedisServer, worker: WorkerProcess, worker_env: dict[str, str]
) -> None:
    done = conductor(
        "run", "examples/hello.yaml", env={"CONDUCTOR_REDIS_URL": redis_server.url, **worker_env}
    )
    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith("running 'Hello Conductor' (5 nodes) as ")
    execution_id = first.rsplit(" ", 1)[1]
    shown = conductor("history", "show", execution_id, "--json", env=worker_env)
    # The recorder is not running here: the id is real when Redis knows it.
    assert execution_id in shown.stdout + shown.stderr


def test_a_failed_run_prints_the_error_object(
    tmp_path: Path, redis_server: RedisServer, worker: WorkerProcess, worker_env: dict[str, str]
) -> None:
    path = tmp_path / "fails.yaml"
    path.write_text(FAILS)
    done = conductor("run", str(path), env={"CONDUCTOR_REDIS_URL": redis_server.url, **worker_env})
    assert done.returncode == 1, done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["nodeId"] == "boom"
    assert error["code"] == "EXECUTION_FAILED"
    assert "bad row" in error["message"]


@pytest.mark.parametrize(
    "args",
    [["run", "examples/hello.yaml"], ["run", "--detach", "examples/hello.yaml"], ["cancel", "x"]],
    ids=["run", "detach", "cancel"],
)
def test_redis_down_is_one_line_and_exit_3(args: list[str], closed_port: int) -> None:
    url = f"redis://127.0.0.1:{closed_port}/0"
    done = conductor(*args, env={"CONDUCTOR_REDIS_URL": url})
    assert_one_line_error(done, 3, f"cannot reach Redis at {url}", "CONDUCTOR_REDIS_URL")


def test_history_store_down_is_one_line_and_exit_3(closed_port: int) -> None:
    url = f"postgresql://nobody@127.0.0.1:{closed_port}/none"
    done = conductor("history", "list", env={"CONDUCTOR_HISTORY_URL": url})
    assert_one_line_error(done, 3, "cannot reach the history store", "CONDUCTOR_HISTORY_URL")


def test_api_on_a_taken_port_names_it_and_its_holder(
    taken_port: int, redis_server: RedisServer
) -> None:
    done = conductor(
        "api", "--port", str(taken_port), env={"CONDUCTOR_REDIS_URL": redis_server.url}
    )
    assert_one_line_error(done, 3, f"port {taken_port} (api)", f"by pid {os.getpid()}")


def test_dev_checks_its_ports_before_starting_anything(taken_port: int, tmp_path: Path) -> None:
    done = conductor(
        "dev", "--api-port", str(taken_port), "--data-dir", str(tmp_path), env={}, timeout_s=30
    )
    assert_one_line_error(done, 3, f"port {taken_port} (api)", "--api-port")
    assert not (tmp_path / "logs").exists()  # nothing was started


def test_a_number_json_cannot_carry_is_exit_2_naming_its_path(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("id: a\nname: b\nvariables:\n  n: {defaultValue: " + "9" * 5000 + "}\n")
    done = conductor("validate", str(path), env={})
    assert_one_line_error(done, 2, "variables.n.defaultValue", "5000 digits")


def test_ctrl_c_during_run_exits_130(tmp_path: Path) -> None:
    path = tmp_path / "slow.yaml"
    path.write_text(SLOW)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "conductor", "run", str(path)],
        env={**clean, "CONDUCTOR_DATA_DIR": str(tmp_path)},
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    try:
        # The embedded stack is up and the run submitted once this line comes (at most 60 s).
        ready, _, _ = select.select([process.stderr], [], [], 60)
        assert ready, "conductor run printed nothing in 60 s"
        line = process.stderr.readline()
        assert line.startswith("running 'Slow'"), line
        time.sleep(0.5)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:  # never leave it (and its Redis and worker) behind
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert time.monotonic() - started < 15  # the embedded Redis and worker were stopped


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("CONDUCTOR_LEASE_S", "abc", "CONDUCTOR_LEASE_S='abc': Input should be a valid number"),
        ("CONDUCTOR_STATE_TTL_S", "5", "CONDUCTOR_STATE_TTL_S='5': Input should be greater"),
        ("CONDUCTOR_QUEUE_ROUTES", "image", "CONDUCTOR_QUEUE_ROUTES: 'image' is not"),
    ],
)
def test_a_bad_setting_is_exit_2_naming_the_variable(variable: str, value: str, says: str) -> None:
    done = conductor("validate", "examples/hello.yaml", env={variable: value})
    assert_one_line_error(done, 2, says)


def test_inputs_json_cannot_carry_are_refused_or_kept_as_text(tmp_path: Path) -> None:
    done = conductor("run", "examples/hello.yaml", "--inputs", '{"name": NaN}', env={})
    assert_one_line_error(done, 2, "--inputs", "nan is not a number JSON can carry")
    done = conductor(
        "run", "examples/hello.yaml", "--input", "name=NaN", "--json",
        env={"CONDUCTOR_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["data"]["summary"]["result"]["greeting"] == "HELLO, NAN!"


def test_api_on_an_address_that_is_not_here_is_exit_2(redis_server: RedisServer) -> None:
    env = {"CONDUCTOR_REDIS_URL": redis_server.url}
    done = conductor("api", "--host", "no-such-host.invalid", "--port", "8089", env=env)
    assert_one_line_error(done, 2, "cannot listen on no-such-host.invalid", "--host")
