"""The docker-compose topology: the file itself, and `conductor dev` running it as processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import redis
import yaml
from click.testing import CliRunner

from conductor.cli import main
from conductor.embedded import RedisServer, free_port, redis_server_binary
from conductor.model.settings import Settings, sentinel_hosts
from tests.conftest import REPO

Json = dict[str, Any]
CONDUCTOR_SERVICES = {"api", "worker", "recorder", "flower", "beat"}
# The innermost `${...}` (a default may hold another): interpolate repeats until none is left.
_VARIABLE = re.compile(r"\$\{(\w+)(?::?[-?]([^${}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> Json:
    """docker-compose.yml, parsed."""
    parsed: Json = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return parsed


# What a user fills in before the first start (.env.example leaves every secret empty).
SECRETS = {
    "REDIS_PASSWORD": "r3dis-secret",
    "POSTGRES_PASSWORD": "pg-secret",
    "CONDUCTOR_FLOWER_BASIC_AUTH": "admin:flower-secret",
    "CONDUCTOR_API_TOKEN": "api-secret",
}


def example_env() -> dict[str, str]:
    """The variables .env.example defines, as shipped."""
    lines = (REPO / ".env.example").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


@pytest.fixture(scope="module")
def dotenv() -> dict[str, str]:
    """.env.example with its secrets set, as a user's .env would be."""
    shipped = example_env()
    assert set(SECRETS) <= set(shipped), "every secret is listed in .env.example"
    return {**shipped, **SECRETS}


def test_compose_refuses_to_start_until_every_secret_is_set() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    for name in SECRETS:
        partly = {**example_env(), **SECRETS, name: ""}
        with pytest.raises(AssertionError, match=f"lacks the required {name}"):
            interpolate(text, partly)


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}`; an unset required one fails."""

    def value(match: re.Match[str]) -> str:
        name, fallback = match.group(1), match.group(2)
        if variables.get(name):
            return variables[name]
        assert "?" not in match.group(0), f".env.example lacks the required {name}"
        return fallback or ""

    while (done := _VARIABLE.sub(value, text)) != text:
        text = done
    return done


def test_the_services_are_all_there(compose: Json) -> None:
    assert set(compose["services"]) >= CONDUCTOR_SERVICES | {"redis", "postgres"}


def test_redis_persists_never_evicts_and_needs_a_password(compose: Json) -> None:
    command = compose["services"]["redis"]["command"]
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options["--appendonly"] == "yes"
    assert options["--maxmemory-policy"] == "noeviction"
    assert "REDIS_PASSWORD" in options["--requirepass"]
    check = " ".join(compose["services"]["redis"]["healthcheck"]["test"])
    assert "redis-cli" in check
    assert "ping" in check
    assert "REDISCLI_AUTH" in compose["services"]["redis"]["environment"]


def test_every_service_has_a_health_check(compose: Json) -> None:
    for name, service in compose["services"].items():
        assert service["healthcheck"]["test"], name
    assert "pg_isready" in str(compose["services"]["postgres"]["healthcheck"]["test"])
    assert "/healthz" in str(compose["services"]["api"]["healthcheck"]["test"])


def test_services_wait_for_healthy_dependencies(compose: Json) -> None:
    services = compose["services"]
    for name in CONDUCTOR_SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["redis"] == {"condition": "service_healthy"}, name
    for name in ("api", "recorder"):
        assert services[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_workers_scale(compose: Json) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


def test_every_command_is_a_conductor_entry_point(compose: Json) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["conductor"]' in dockerfile
    runner = CliRunner()
    for name in CONDUCTOR_SERVICES:
        command = compose["services"][name]["command"]
        # Options are parsed before the eager --help: an unknown one fails here.
        result = runner.invoke(main, [*command, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert result.output.startswith(f"Usage: main {command[0]} "), name


def test_flower_is_behind_basic_auth(compose: Json) -> None:
    environment = compose["services"]["flower"]["environment"]
    assert ":?" in environment["CONDUCTOR_FLOWER_BASIC_AUTH"]  # compose refuses to start without


def test_env_example_configures_every_service(compose: Json, dotenv: dict[str, str]) -> None:
    for name in CONDUCTOR_SERVICES:
        environment = {
            key: interpolate(str(value), dotenv)
            for key, value in compose["services"][name]["environment"].items()
        }
        settings = Settings.from_env(environment)
        assert settings.redis_url == f"redis://:{dotenv['REDIS_PASSWORD']}@redis:6379/0"
        assert settings.history_url.startswith("postgresql://conductor:")
        assert settings.blob_dir == Path("/data/blobs")
    assert Settings.from_env(
        {"CONDUCTOR_FLOWER_BASIC_AUTH": dotenv["CONDUCTOR_FLOWER_BASIC_AUTH"]}
    ).flower_basic_auth


def test_api_and_workers_share_the_data_volume(compose: Json) -> None:
    services = compose["services"]
    mounts = {name: set(services[name]["volumes"]) for name in ("api", "worker")}
    assert "data:/data" in mounts["api"] & mounts["worker"]
    assert services["worker"]["environment"]["CONDUCTOR_DATA_DIR"] == "/data"
    assert "data" in compose["volumes"]


SENTINEL_PROFILE = {"redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"}


def test_the_sentinel_profile_is_optional_and_complete(compose: Json) -> None:
    services = compose["services"]
    assert {name for name, service in services.items() if "profiles" in service} == (
        SENTINEL_PROFILE
    )
    assert all(services[name]["profiles"] == ["sentinel"] for name in SENTINEL_PROFILE)
    replica = services["redis-replica"]["command"]
    assert replica[:4] == ["redis-server", "--replicaof", "redis", "6379"]
    assert "--masterauth" in replica and "--requirepass" in replica
    assert "--masterauth" in services["redis"]["command"]  # it may come back as a replica
    for name in SENTINEL_PROFILE - {"redis-replica"}:
        assert services[name]["healthcheck"]["test"]
        assert "redis-server /tmp/sentinel.conf --sentinel" in services[name]["command"][2]
    assert "redis-replica" in compose["volumes"]


def example_sentinel_env() -> dict[str, str]:
    """The Sentinel settings .env.example shows (commented out), with the password set."""
    lines = (REPO / ".env.example").read_text().splitlines()
    shown = [line.lstrip("# ").split("=", 1) for line in lines if line.startswith("#   CONDUCTOR")]
    password = SECRETS["REDIS_PASSWORD"]
    return {name: value.replace("<REDIS_PASSWORD>", password) for name, value in shown}


def test_the_sentinel_settings_reach_every_service(compose: Json, dotenv: dict[str, str]) -> None:
    sentinel_env = example_sentinel_env()
    assert set(sentinel_env) == {"CONDUCTOR_REDIS_URL", "CONDUCTOR_REDIS_MASTER"}
    for name in CONDUCTOR_SERVICES:
        environment = {
            key: interpolate(str(value), {**dotenv, **sentinel_env})
            for key, value in compose["services"][name]["environment"].items()
        }
        settings = Settings.from_env(environment)
        assert settings.redis_url == sentinel_env["CONDUCTOR_REDIS_URL"], name
        assert settings.redis_master == sentinel_env["CONDUCTOR_REDIS_MASTER"], name
        hosts = {host for host, port in sentinel_hosts(settings.redis_url) if port == 26379}
        assert hosts == SENTINEL_PROFILE - {"redis-replica"}
    monitor = compose["services"]["sentinel-1"]["command"][2]
    assert f"sentinel monitor {sentinel_env['CONDUCTOR_REDIS_MASTER']} redis 6379 2" in monitor


def test_the_sentinel_command_runs(compose: Json, tmp_path: Path) -> None:
    """The Sentinel service's script, on loopback ports instead of the compose network, starts
    a Sentinel that watches the primary with the password."""
    with RedisServer(tmp_path / "primary") as primary:
        port = free_port()
        script = compose["services"]["sentinel-1"]["command"][2].replace("$$", "$")
        script = (
            script.replace("port 26379", f"port {port}")
            .replace("redis 6379", f"127.0.0.1 {primary.port}")
            .replace("/tmp/sentinel.conf", str(tmp_path / "sentinel.conf"))
            .replace("exec redis-server", f"exec {redis_server_binary()}")
        )
        env = {"PATH": os.environ["PATH"], "REDIS_PASSWORD": SECRETS["REDIS_PASSWORD"]}
        sentinel = subprocess.Popen(
            ["sh", "-c", script], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=port, socket_timeout=2)
        try:
            deadline = time.monotonic() + 10
            while not _watches(client, primary.port):
                assert sentinel.poll() is None, "the Sentinel exited"
                assert time.monotonic() < deadline, "the Sentinel never watched the primary"
                time.sleep(0.1)
            config = (tmp_path / "sentinel.conf").read_text()
            assert f"auth-pass conductor {SECRETS['REDIS_PASSWORD']}" in config
        finally:
            client.close()
            sentinel.terminate()
            sentinel.wait(10)


def _watches(client: redis.Redis, port: int) -> bool:
    try:
        address: Any = client.sentinel_get_master_addr_by_name("conductor")
    except redis.ConnectionError:
        return False
    return bool(address) and int(address[1]) == port


# ---- `conductor dev`: the same topology as local processes --------------------------------------


GREETING = {
    "name": "Dev stack",
    "nodes": [
        {"id": "make", "type": "edit-fields", "parameters": {"values": {"n": 21}}},
        {"id": "double", "type": "transform", "parameters": {"transformFunction": "x => x.n * 2"}},
    ],
    "edges": [{"id": "e1", "source": "make", "target": "double"}],
}


class DevStack:
    """A `conductor dev` process and the URL of its API."""

    def __init__(self, process: subprocess.Popen[str], api_url: str) -> None:
        self.process = process
        self.api_url = api_url

    def wait_ready(self, timeout_s: float = 40.0) -> list[str]:
        """Read the banner until its last line; returns its lines."""
        assert self.process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + timeout_s
        while not lines or lines[-1] != "Ctrl-C stops everything.":
            line = self.process.stdout.readline()
            assert line, f"conductor dev ended: {self.process.wait()} {lines}"
            assert time.monotonic() < deadline, lines
            lines.append(line.rstrip("\n"))
        return lines


@pytest.fixture
def dev_stack(tmp_path: Path) -> Iterator[DevStack]:
    """`conductor dev` with two one-process workers, in its own data dir."""
    port = free_port()
    command = [sys.executable, "-m", "conductor", "dev", "--workers", "2", "-c", "1"]
    with subprocess.Popen(
        [*command, "--api-port", str(port), "--data-dir", str(tmp_path / "dev")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        yield DevStack(process, f"http://127.0.0.1:{port}")
        if process.poll() is None:
            process.kill()  # its children die with it (PDEATHSIG)


def wait_for(client: httpx.Client, path: str, done: Any, timeout_s: float = 30.0) -> Json:
    """GET `path` until `done(body)`."""
    deadline = time.monotonic() + timeout_s
    while True:
        body: Json = client.get(path).raise_for_status().json()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_conductor_dev_serves_records_and_stops_cleanly(
    dev_stack: DevStack, tmp_path: Path
) -> None:
    banner = dev_stack.wait_ready()
    assert f"  API      {dev_stack.api_url}" in "\n".join(banner)
    exports = dict(
        line.removeprefix("  export ").split("=", 1) for line in banner if "export " in line
    )
    assert exports["CONDUCTOR_REDIS_URL"].startswith("redis://127.0.0.1:")
    assert exports["CONDUCTOR_DATA_DIR"] == str(tmp_path / "dev")
    children = psutil.Process(dev_stack.process.pid).children(recursive=True)
    names = {" ".join(child.cmdline()[2:4]) for child in children}
    assert {"conductor api", "conductor recorder", "conductor worker"} <= names
    assert any("redis-server" in child.name() for child in children)

    blueprint = {"id": f"dev-{uuid.uuid4().hex[:8]}", **GREETING}
    with httpx.Client(base_url=dev_stack.api_url, timeout=10) as client:
        accepted = client.post("/v1/executions", json={"blueprint": blueprint, "inputs": {}})
        assert accepted.status_code == 202, accepted.text
        execution_id = accepted.json()["id"]
        view = wait_for(
            client, f"/v1/executions/{execution_id}", lambda body: body["status"] == "succeeded"
        )
        assert view["result"]["data"]["double"]["result"] == 42
        listing = wait_for(  # the recorder moved it into the history store
            client,
            "/v1/executions?status=succeeded",
            lambda body: execution_id in {item["id"] for item in body["items"]},
        )
        assert execution_id in {item["id"] for item in listing["items"]}

    dev_stack.process.send_signal(signal.SIGTERM)
    assert dev_stack.process.wait(timeout=30) == 0
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []
