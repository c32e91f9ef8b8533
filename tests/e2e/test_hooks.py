"""Webhook triggers through a real `conductor api` (with a token, which hooks do not use) and a
real worker: a signed delivery starts the stored Blueprint with mapped inputs; replays of one
delivery id are one execution; bad signatures, unknown hooks and large bodies are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from conductor.embedded import ApiProcess, RedisServer
from conductor.hooks import sign
from storage.blueprints import open_blueprint_store
from tests.e2e.fault_stack import Stack

pytestmark = pytest.mark.e2e

SECRET = "hook-secret-0123456789"
STORED_SECRET = "stored-secret-9876"
BLUEPRINT = {
    "id": "on-push",
    "name": "On push",
    "variables": {
        "repo": {"type": "string", "defaultValue": "?"},
        "event": {"type": "string", "defaultValue": "?"},
        "ref": {"type": "string", "defaultValue": "main"},
    },
    "nodes": [
        {
            "id": "say",
            "type": "edit-fields",
            "parameters": {
                "values": {"line": "{{$vars.event}} on {{$vars.repo}} at {{$vars.ref}}"},
                "keepOnlySet": True,
            },
        }
    ],
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("hooks")
    (base / "data" / "files").mkdir(parents=True)
    server = RedisServer(base / "redis").start()
    stack = Stack(server, base / "data", f"sqlite:///{base / 'history.sqlite3'}")
    open_blueprint_store(stack.settings.blueprints_dir).create(BLUEPRINT)
    stack.start_worker("hooks", concurrency=2)
    try:
        yield stack
    finally:
        stack.stop_all()
        server.stop()


def conductor(stack: Stack, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conductor", *args],
        env={**os.environ, **stack.env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[ApiProcess]:
    for args in (
        ["push", "--blueprint", "on-push", "--secret-env", "PUSH_HOOK_SECRET",
         "--map", "repo=body.repository.full_name", "--map", "event=headers.X-GitHub-Event",
         "--map", "ref=query.ref"],
        ["whole", "--blueprint", "on-push", "--secret", "-"],
    ):  # fmt: skip
        added = conductor(stack, "hook", "add", *args, stdin=STORED_SECRET + "\n")
        assert added.returncode == 0, added.stderr
    env = {**stack.env, "CONDUCTOR_API_TOKEN": "api-token", "PUSH_HOOK_SECRET": SECRET}
    process = ApiProcess(env).start()
    yield process
    process.stop()


def deliver(
    api: ApiProcess, name: str, body: bytes, secret: str = SECRET, **headers: str
) -> httpx.Response:
    sent = {"content-type": "application/json", "x-hub-signature-256": sign(secret.encode(), body)}
    return httpx.post(
        f"{api.url}/v1/hooks/{name}?ref=v1.2", content=body, headers={**sent, **headers}
    )


PUSH = json.dumps({"repository": {"full_name": "acme/rockets"}, "pusher": "ada"}).encode()


def test_a_signed_delivery_starts_the_blueprint_with_mapped_inputs(
    stack: Stack, api: ApiProcess
) -> None:
    answer = deliver(api, "push", PUSH, **{"X-GitHub-Event": "push", "X-Delivery-Id": "d-1"})
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert set(accepted) == {"id", "status"}
    result = stack.wait_final(accepted["id"])
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["say"]["result"] == {"line": "push on acme/rockets at v1.2"}


def test_the_same_delivery_id_is_the_same_execution(api: ApiProcess) -> None:
    first = deliver(api, "push", PUSH, **{"X-Delivery-Id": "d-2"}).json()["id"]
    again = deliver(api, "push", PUSH, **{"X-Delivery-Id": "d-2"}).json()["id"]
    other = deliver(api, "push", PUSH, **{"X-Delivery-Id": "d-3"}).json()["id"]
    github = deliver(api, "push", PUSH, **{"X-GitHub-Delivery": "d-2"}).json()["id"]
    assert first == again == github
    assert other != first


def test_a_stored_secret_and_the_body_as_inputs(stack: Stack, api: ApiProcess) -> None:
    body = json.dumps({"repo": "acme/web", "event": "release"}).encode()
    answer = deliver(api, "whole", body, secret=STORED_SECRET)
    assert answer.status_code == 202, answer.text
    result = stack.wait_final(answer.json()["id"])
    assert result["data"]["say"]["result"] == {"line": "release on acme/web at main"}


def test_refusals(api: ApiProcess) -> None:
    assert deliver(api, "push", PUSH, secret="wrong").status_code == 401
    unsigned = httpx.post(f"{api.url}/v1/hooks/push", content=PUSH)
    assert unsigned.status_code == 401
    assert unsigned.json()["code"] == "UNAUTHORIZED"
    tampered = deliver(api, "push", PUSH, **{"x-hub-signature-256": sign(SECRET.encode(), b"{}")})
    assert tampered.status_code == 401
    assert deliver(api, "nope", PUSH).status_code == 404
    big = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    answer = deliver(api, "push", big)
    assert answer.status_code == 413
    assert answer.json()["code"] == "PAYLOAD_TOO_LARGE"
    not_json = deliver(api, "push", b"{not json")
    assert not_json.status_code == 400
    # The rest of the API still wants its token.
    assert httpx.get(f"{api.url}/v1/schedules").status_code == 401


@pytest.mark.timeout(300)  # eight CLI processes: ~9 s each on a loaded 2-core machine
def test_the_cli_names_bad_options_and_hides_secrets(stack: Stack, api: ApiProcess) -> None:
    cases = [
        (["x", "--blueprint", "missing", "--secret-env", "S"], "--blueprint"),
        (["x", "--blueprint", "on-push"], "--secret"),
        (["x", "--blueprint", "on-push", "--secret-env", "S", "--secret", "t"], "--secret"),
        (["x", "--blueprint", "on-push", "--secret-env", "S", "--map", "a=cookies.x"], "--map"),
        (["x", "--blueprint", "on-push", "--secret-env", "S", "--map", "nothing"], "--map"),
        (["push", "--blueprint", "on-push", "--secret-env", "S"], "NAME"),
    ]
    for args, option in cases:
        done = conductor(stack, "hook", "add", *args)
        assert done.returncode == 2, (args, done.stderr)
        assert f"error: {option}" in done.stderr, (args, done.stderr)
    listed = conductor(stack, "hook", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert STORED_SECRET not in listed.stdout
    secrets = {hook["name"]: hook["secret"] for hook in json.loads(listed.stdout)}
    assert secrets == {"push": "env:PUSH_HOOK_SECRET", "whole": "stored"}


def test_rm_makes_the_hook_unknown(stack: Stack, api: ApiProcess) -> None:
    assert (
        conductor(
            stack, "hook", "add", "gone", "--blueprint", "on-push", "--secret", "s"
        ).returncode
        == 0
    )
    assert deliver(api, "gone", PUSH, secret="s").status_code == 202
    assert conductor(stack, "hook", "rm", "gone").returncode == 0
    assert deliver(api, "gone", PUSH, secret="s").status_code == 404
    assert conductor(stack, "hook", "rm", "gone").returncode == 1
