"""Every code block of README.md, run as a user would run it: the README cannot drift from
the product. A new block without a test here fails `test_every_block_has_a_test`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from conductor.cli import main
from conductor.embedded import ApiProcess, RedisServer, WorkerProcess, free_port
from conductor.model.loader import blueprint_from_data, load_blueprint_text, parse_document
from conductor.validation import ensure_valid
from nodes.registry import default_registry
from tests.conftest import REPO
from tests.e2e.conftest import RunBlueprint

README = (REPO / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
BIN = Path(sys.executable).parent

# The first line of each block, and the test that runs it.
BLOCKS = {
    "make demo": "test_the_two_commands",
    "# examples/hello.yaml (shortened)": "test_the_first_blueprint_is_the_example",
    "$ .venv/bin/conductor run examples/hello.yaml --input name=Ada": "test_the_transcript",
    "URL=http://127.0.0.1:8080": "test_http_curl_python_and_celery",
    "from conductor.client import ConductorClient": "test_http_curl_python_and_celery",
    "from celery import Celery": "test_http_curl_python_and_celery",
    "cp .env.example .env": "test_compose_block",
    "conductor dev --workers 2 --flower": "test_dev_block",
    "- id: fetch": "test_the_node_fields_example",
    "# conditions: approve big orders": "test_the_conditions_example",
    "nodes/            node base class, registry, built-in node types": "test_layout",
}


def blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block."""
    return [(lang, text) for lang, text in FENCE.findall(README)]


def block(first_line: str) -> str:
    """The one block whose first line starts with `first_line`."""
    (found,) = [text for _, text in blocks() if text.startswith(first_line)]
    return found


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    return {**env, "PATH": f"{BIN}:{env.get('PATH', '')}", **extra}


def test_every_block_has_a_test() -> None:
    for lang, text in blocks():
        matches = [first for first in BLOCKS if text.startswith(first)]
        assert len(matches) == 1, f"README block without a test here ({lang}): {text[:60]!r}"
        assert BLOCKS[matches[0]] in globals(), BLOCKS[matches[0]]


def test_the_two_commands(tmp_path: Path) -> None:
    text = block("make demo")
    assert [line.split()[:2] for line in text.splitlines()] == [["make", "demo"], ["make", "test"]]
    # `make test` is what CI runs (it runs this file); `make demo` runs here, with the
    # interpreter of this test run (.venv when started by `make test`).
    done = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed-stamp", "demo", f"BIN={BIN}"],
        cwd=REPO, env=clean_env(CONDUCTOR_DATA_DIR=str(tmp_path)),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["greeting"] == "HELLO, NEWCOMER!"
    planned = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed-stamp", "test"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    for step in ("ruff check", "ruff format --check", "mypy", "pytest"):
        assert step in planned.stdout, step


def test_the_first_blueprint_is_the_example() -> None:
    shortened = parse_document(block("# examples/hello.yaml (shortened)"))
    example = parse_document((REPO / "examples" / "hello.yaml").read_text())
    for key in ("id", "name"):
        assert shortened[key] == example[key], key
    for name, spec in shortened["variables"].items():
        assert spec.items() <= example["variables"][name].items(), name
    nodes = {node["id"]: node for node in example["nodes"]}
    for node in shortened["nodes"]:
        assert nodes[node["id"]]["type"] == node["type"]
        assert nodes[node["id"]]["parameters"] == node["parameters"], node["id"]
    edges = [(edge["source"], edge["target"]) for edge in example["edges"]]
    for edge in shortened["edges"]:
        assert (edge["source"], edge["target"]) in edges
    ensure_valid(blueprint_from_data(shortened), default_registry())


VARYING = re.compile(
    r"(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"|(?<=succeeded in )(?P<ms>\d+)"
    r"|(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"
)
VARIES_AS = {"id": r"[0-9a-f-]{36}", "ms": r"\d+", "time": r"[\d:.TZ-]{24}"}


def expected_pattern(transcript: list[str]) -> re.Pattern[str]:
    """The transcript as a regex: ids, durations and timestamps may differ."""
    text, parts, last = "\n".join(transcript), [], 0
    for match in VARYING.finditer(text):
        parts += [re.escape(text[last : match.start()]), VARIES_AS[str(match.lastgroup)]]
        last = match.end()
    return re.compile("".join([*parts, re.escape(text[last:])]))


def test_the_transcript(tmp_path: Path) -> None:
    command, *transcript = block("$ .venv/bin/conductor").rstrip("\n").splitlines()
    args = command.removeprefix("$ .venv/bin/conductor ").split()
    done = subprocess.run(
        [sys.executable, "-m", "conductor", *args],
        cwd=REPO, env=clean_env(CONDUCTOR_DATA_DIR=str(tmp_path)),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert expected_pattern(transcript).fullmatch((done.stderr + done.stdout).rstrip("\n")), (
        done.stderr + done.stdout
    )


def test_http_curl_python_and_celery(
    tmp_path: Path, api: ApiProcess, redis_server: RedisServer, worker: WorkerProcess
) -> None:
    script = block("URL=http://127.0.0.1:8080").replace("http://127.0.0.1:8080", api.url)
    # A fresh key each run: the README's key would name an earlier run's execution.
    script = script.replace("order-1234", f"order-{time.time_ns()}")
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout.replace(" ", "")
    accepted = json.loads((tmp_path / "answer.json").read_text())
    assert accepted["status"] in {"queued", "running"} and accepted["warnings"] == []
    assert out.count("event:execution.succeeded") == 2  # followed to the end, then resumed
    assert '"message":"Hello,Ada!"' in out  # the status view's result
    assert out.count('"code":"CONFLICT"') == 4  # pause, resume, cancel, retry of a finished one
    assert out.endswith('"status":"queued","warnings":[]}')  # the stored one, submitted by id

    client = block("from conductor.client import ConductorClient").replace(
        "http://127.0.0.1:8080", api.url
    )
    ran = run_python(client, cwd=REPO)
    assert ran.splitlines()[-1].startswith("True {'summary': ")
    assert "execution.succeeded" in ran

    celery = block("from celery import Celery").replace(
        "redis://conductor-redis:6379/0", redis_server.url
    )
    celery = celery.replace("order-1235", f"order-{time.time_ns()}")
    run_python(celery + "\nprint(execution_id)\n", cwd=tmp_path)


def run_python(code: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=clean_env(),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_compose_block() -> None:
    # No Docker engine here: tests/e2e/test_compose.py checks the file and every command;
    # this checks what the block itself relies on.
    lines = block("cp .env.example .env").splitlines()
    assert lines[0].startswith("cp .env.example .env") and (REPO / ".env.example").exists()
    assert "--scale worker=4" in lines[1]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert "container_name" not in compose["services"]["worker"]
    assert all("healthcheck" in service for service in compose["services"].values())


def test_dev_block(tmp_path: Path) -> None:
    command = block("conductor dev --workers 2 --flower").split("#")[0].split()
    assert command == ["conductor", "dev", "--workers", "2", "--flower"]
    ports = ["--api-port", str(free_port()), "--flower-port", str(free_port())]
    process = subprocess.Popen(
        [sys.executable, "-m", *command, *ports, "--data-dir", str(tmp_path)],
        cwd=REPO, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    with process.stdout:
        try:
            lines = [process.stdout.readline() for _ in range(3)]
            assert lines[0].startswith("Conductor dev stack"), lines
            assert "API" in lines[1] and "Flower" in lines[2], lines
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    assert process.returncode == 0


def test_the_node_fields_example() -> None:
    nodes = yaml.safe_load(block("- id: fetch"))
    model = blueprint_from_data({"id": "fields", "name": "Fields", "nodes": nodes})
    assert ensure_valid(model, default_registry(), strict=True) == []
    # ... and each rule under it holds.
    moved = load_blueprint_text(
        "id: a\nname: a\nnodes:\n  - {id: x, type: delay, retries: 2, parameters: {ms: 1}}\n"
    )
    quoted = "nodes[0].retries: 'retries' is a parameter: write it as nodes[0].parameters.retries"
    assert quoted.replace("\n", " ") in " ".join(README.split())
    with pytest.raises(Exception, match="write it as nodes"):
        ensure_valid(moved, default_registry())


@pytest.mark.parametrize(
    ("inputs", "done", "skipped"),
    [
        ({"id": 7, "amount": 250, "vip": False}, None, {"file", "notify"}),
        ({"id": 8, "amount": 20, "vip": True}, "file 8, done", {"approve"}),
    ],
)
def test_the_conditions_example(
    run_blueprint: RunBlueprint, inputs: dict[str, Any], done: str | None, skipped: set[str]
) -> None:
    text = block("# conditions: approve big orders")
    assert ensure_valid(load_blueprint_text(text), default_registry(), strict=True) == []
    result = run_blueprint(text, inputs)
    assert result["status"] == "succeeded", result["error"]
    trace = {step["nodeId"]: step["status"] for step in result["trace"]}
    assert {node for node, status in trace.items() if status == "skipped"} == skipped
    found = result["data"]["notify"]
    if "notify" in skipped:
        assert found == {"result": None, "$skipped": "runIf is false: $vars.vip === true"}
    else:
        assert found["result"] == done


def test_layout() -> None:
    for line in block("nodes/            node base class").splitlines():
        folder = line.split()[0]
        if folder.endswith("/"):
            assert (REPO / folder).is_dir(), folder


COMMAND_ROW = re.compile(r"^\| `conductor ([a-z]+)([^`]*)`", re.MULTILINE)


def test_every_command_in_the_table_answers_help_with_its_options() -> None:
    rows = COMMAND_ROW.findall(README)
    assert {name for name, _ in rows} >= {"run", "validate", "worker", "api", "history", "dev"}
    for name, options in rows:
        names = [name, *re.findall(r"\\\|([a-z]+)", options)]  # cancel\|pause\|...
        sub = re.match(r" ([a-z]+)\b", options)  # a subcommand: `history list`
        for command in names:
            help_text = help_of(command, *([sub.group(1)] if sub else []))
            for option in re.findall(r"--[a-z][a-z-]*", options):
                assert option in help_text, (command, option)


def help_of(*command: str) -> str:
    """`conductor COMMAND --help`, in this process (one interpreter start per command, 30 of
    them, took minutes on a loaded machine; the commands' own start is tested elsewhere)."""
    done = CliRunner().invoke(main, [*command, "--help"], env=clean_env())
    assert done.exit_code == 0, (command, done.output)
    return done.output


def cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "conductor", *args],
        cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


def test_every_configuration_variable_is_read_somewhere() -> None:
    code = "".join(p.read_text() for p in (REPO / "conductor").rglob("*.py"))
    for name in set(re.findall(r"^\| `(CONDUCTOR_[A-Z_]+)`", README, re.MULTILINE)):
        assert name.removeprefix("CONDUCTOR_").lower() in code.lower(), name
