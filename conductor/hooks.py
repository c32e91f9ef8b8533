"""Webhook triggers: checking a new hook, verifying a delivery's HMAC-SHA256 signature
(GitHub's `X-Hub-Signature-256: sha256=<hex>` over the raw body), and mapping the request
into the Blueprint's inputs."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from conductor.model.hook import Hook, pick
from conductor.schedules import FieldProblem
from storage.blueprints import BlueprintNotFound, BlueprintStore, BlueprintStoreError

SIGNATURE_HEADER = "x-hub-signature-256"
# The delivery id makes a replay the same execution; GitHub's own header is read too.
DELIVERY_HEADERS = ("x-delivery-id", "x-github-delivery")
MAX_BODY_BYTES = 1024 * 1024


class InvalidHook(ValueError):
    """A hook definition with problems; each names its field."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


class HookSecretMissing(RuntimeError):
    """The hook's secret variable is not set where the API runs."""


class BodyNotJson(ValueError):
    """The hook maps body values but the body is not JSON."""


def parse_map(entries: list[str]) -> dict[str, str]:
    """`input=body.path` options as a mapping; InvalidHook naming `mapping` otherwise."""
    mapping: dict[str, str] = {}
    for entry in entries:
        name, sep, path = (part.strip() for part in entry.partition("="))
        if not sep or not name or not path:
            raise InvalidHook([FieldProblem("mapping", f"{entry!r} is not INPUT=SOURCE.PATH")])
        mapping[name] = path
    return mapping


def new_hook(
    blueprints: BlueprintStore,
    *,
    name: str,
    blueprint_id: str,
    mapping: dict[str, str],
    secret_env: str | None = None,
    secret: str | None = None,
) -> Hook:
    """A checked hook on a stored Blueprint."""
    problems: list[FieldProblem] = []
    try:
        blueprints.get(blueprint_id)
    except BlueprintNotFound:
        problems.append(FieldProblem("blueprint_id", f"no stored Blueprint {blueprint_id!r}"))
    except BlueprintStoreError as exc:
        problems.append(FieldProblem("blueprint_id", str(exc)))
    fields = {
        "name": name, "blueprint_id": blueprint_id, "mapping": mapping,
        "secret_env": secret_env, "secret": secret,
    }  # fmt: skip
    try:
        hook = Hook.model_validate(fields)
    except ValidationError as exc:
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "secret"
            problems.append(FieldProblem(field, str(err["msg"]).removeprefix("Value error, ")))
        raise InvalidHook(problems) from None
    if problems:
        raise InvalidHook(problems)
    return hook


def secret_of(hook: Hook, env: Mapping[str, str] | None = None) -> bytes:
    """The hook's HMAC key: stored with it, or read from the API's environment."""
    if hook.secret is not None:
        return hook.secret.encode()
    assert hook.secret_env is not None  # the model holds exactly one
    value = (os.environ if env is None else env).get(hook.secret_env)
    if not value:
        raise HookSecretMissing(
            f"hook {hook.name!r} takes its secret from {hook.secret_env}, which is not set "
            "where the API runs"
        )
    return value.encode()


def signature_valid(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether `header` is `sha256=<hex HMAC-SHA256 of body>` (compared in constant time)."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
    given = header.removeprefix("sha256=").strip().lower()
    # Bytes: compare_digest refuses str with non-ASCII characters (a 500, not a 401).
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected)


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value for `body`, as a sender computes it."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def inputs_of(
    hook: Hook, body: bytes, headers: Mapping[str, str], query: Mapping[str, str]
) -> dict[str, Any]:
    """The execution's inputs: each mapped value (absent ones left out, so the variable's
    default applies); with no mapping, a JSON object body is the inputs."""
    needs_body = not hook.mapping or any(p.split(".")[0] == "body" for p in hook.mapping.values())
    parsed = _json_body(body) if needs_body else None
    if not hook.mapping:
        return parsed if isinstance(parsed, dict) else {"body": parsed}
    sources = {
        "body": parsed,
        "headers": {k.lower(): v for k, v in headers.items()},
        "query": dict(query),
    }
    inputs: dict[str, Any] = {}
    for name, path in hook.mapping.items():
        source, *rest = path.split(".")
        if source == "headers":
            rest = [".".join(rest).lower()]
        value = pick(sources[source], rest)
        if value is not None:
            inputs[name] = value
    return inputs


def _json_body(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BodyNotJson(f"the body is not JSON: {exc}") from None


def delivery_key(hook: Hook, headers: Mapping[str, str]) -> str | None:
    """The idempotency key of a delivery that carries an id, else None."""
    lowered = {k.lower(): v for k, v in headers.items()}
    delivery = next((lowered[h] for h in DELIVERY_HEADERS if lowered.get(h)), None)
    return None if delivery is None else f"hook:{hook.name}:{delivery}"
