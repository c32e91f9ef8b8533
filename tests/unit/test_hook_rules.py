"""Webhook rules without a server: signatures, the input mapping, delivery keys."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from conductor.hooks import (
    BodyNotJson,
    HookSecretMissing,
    InvalidHook,
    delivery_key,
    inputs_of,
    parse_map,
    secret_of,
    sign,
    signature_valid,
)
from conductor.model.hook import Hook


def hook(**fields: object) -> Hook:
    return Hook.model_validate({"name": "h", "blueprint_id": "b", "secret": "k", **fields})


def test_a_signature_over_the_raw_body() -> None:
    body = b'{"a": 1}'
    header = sign(b"k", body)
    assert header.startswith("sha256=")
    assert signature_valid(b"k", body, header)
    assert signature_valid(b"k", body, header.upper().replace("SHA256=", "sha256="))
    assert not signature_valid(b"k", body + b" ", header)
    assert not signature_valid(b"other", body, header)
    assert not signature_valid(b"k", body, None)
    assert not signature_valid(b"k", body, header.replace("sha256=", "sha1="))


def test_a_non_ascii_signature_is_refused_not_an_error() -> None:
    # Starlette decodes header bytes as latin-1: any character may arrive.
    assert not signature_valid(b"k", b"{}", "sha256=\u00e9" + "0" * 63)
    assert not signature_valid(b"k", b"{}", "sha256=\u2603")


def test_mapped_inputs_from_body_headers_and_query() -> None:
    found = hook(mapping={
        "repo": "body.repository.full_name", "first": "body.items.0.id", "all": "body",
        "event": "headers.X-GitHub-Event", "ref": "query.ref", "absent": "body.nope.deeper",
    })  # fmt: skip
    body = json.dumps({"repository": {"full_name": "a/b"}, "items": [{"id": 7}]}).encode()
    inputs = inputs_of(found, body, {"x-github-event": "push"}, {"ref": "main"})
    assert inputs == {
        "repo": "a/b", "first": 7, "event": "push", "ref": "main",
        "all": {"repository": {"full_name": "a/b"}, "items": [{"id": 7}]},
    }  # fmt: skip


def test_without_a_mapping_the_body_is_the_inputs() -> None:
    assert inputs_of(hook(), b'{"x": 1}', {}, {}) == {"x": 1}
    assert inputs_of(hook(), b"[1, 2]", {}, {}) == {"body": [1, 2]}
    assert inputs_of(hook(), b"", {}, {}) == {}
    with pytest.raises(BodyNotJson):
        inputs_of(hook(), b"{no", {}, {})
    # Only header and query values: the body is never parsed.
    assert inputs_of(hook(mapping={"q": "query.q"}), b"{no", {}, {"q": "1"}) == {"q": "1"}


def test_delivery_ids_make_idempotency_keys() -> None:
    assert delivery_key(hook(), {"X-Delivery-Id": "d1"}) == "hook:h:d1"
    assert delivery_key(hook(), {"X-GitHub-Delivery": "g1"}) == "hook:h:g1"
    assert delivery_key(hook(), {}) is None


def test_secrets_come_from_the_hook_or_the_environment() -> None:
    assert secret_of(hook()) == b"k"
    from_env = hook(secret=None, secret_env="HOOK_SECRET")
    assert secret_of(from_env, {"HOOK_SECRET": "s"}) == b"s"
    with pytest.raises(HookSecretMissing, match="HOOK_SECRET"):
        secret_of(from_env, {})
    assert "k" not in json.dumps(hook().public())


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"secret": None}, "exactly one"), ({"secret_env": "X"}, "exactly one"),
     ({"mapping": {"a": "cookies.x"}}, "body, headers"), ({"mapping": {"a": "headers"}}, "name the header"),
     ({"secret": None, "secret_env": "1BAD"}, "not an environment variable name")],
)  # fmt: skip
def test_bad_hooks_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        hook(**fields)


def test_map_options_must_be_input_equals_path() -> None:
    assert parse_map(["a=body.x", " b = query.y "]) == {"a": "body.x", "b": "query.y"}
    with pytest.raises(InvalidHook, match="mapping"):
        parse_map(["nothing"])
