"""Queues by node type: CONDUCTOR_QUEUE_ROUTES parsing and the router's choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from conductor.model.settings import Settings, parse_queue_routes
from conductor.queues import standard_queues
from workers.app import create_app
from workers.signatures import NODE_TASK


def settings(tmp_path: Path, routes: str | None = None) -> Settings:
    env = {"CONDUCTOR_REDIS_URL": "redis://127.0.0.1:1/0", "CONDUCTOR_DATA_DIR": str(tmp_path)}
    if routes is not None:
        env["CONDUCTOR_QUEUE_ROUTES"] = routes
    return Settings.from_env(env)


def test_routes_parse_type_to_queue() -> None:
    routes = parse_queue_routes(" http-request = io, file-system=io,image=cpu, ")
    assert routes == {"http-request": "io", "file-system": "io", "image": "cpu"}


def test_no_routes_by_default(tmp_path: Path) -> None:
    assert settings(tmp_path).queue_routes == {}
    assert settings(tmp_path, "").queue_routes == {}


def test_settings_read_the_routes(tmp_path: Path) -> None:
    loaded = settings(tmp_path, "http-request=io,image=cpu,file-system=io")
    assert loaded.queue_routes == {"http-request": "io", "image": "cpu", "file-system": "io"}
    assert loaded.routed_queues() == ["io", "cpu"]


@pytest.mark.parametrize(
    "text", ["http-request", "http-request=", "=io", "a=b=c", "image=c p u", "a=io;b=cpu"]
)
def test_malformed_routes_name_the_variable(text: str) -> None:
    with pytest.raises(ValueError, match=r"CONDUCTOR_QUEUE_ROUTES: .* is not NODE_TYPE=QUEUE"):
        parse_queue_routes(text)


def test_a_type_routed_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CONDUCTOR_QUEUE_ROUTES: node type 'image'"):
        settings(tmp_path, "image=cpu,image=gpu")


def test_workers_consume_every_routed_queue_by_default(tmp_path: Path) -> None:
    assert standard_queues(settings(tmp_path)) == ["conductor", "celery"]
    routed = settings(tmp_path, "image=cpu,http-request=io,delay=conductor")
    assert standard_queues(routed) == ["conductor", "celery", "cpu", "io"]


def chosen_queue(loaded: Settings, node_type: str, own: str | None = None) -> str:
    """The queue Celery's router picks for a node task as the dispatcher sends it."""
    options = {"queue": own} if own else {}
    route = create_app(loaded).amqp.router.route(options, NODE_TASK, (), {"node_type": node_type})
    return str(route["queue"].name)


def test_a_node_goes_to_its_own_queue_then_its_types_then_the_default(tmp_path: Path) -> None:
    loaded = settings(tmp_path, "http-request=io,image=cpu")
    assert chosen_queue(loaded, "http-request") == "io"
    assert chosen_queue(loaded, "image") == "cpu"
    assert chosen_queue(loaded, "image", own="gpu") == "gpu"
    assert chosen_queue(loaded, "edit-fields") == "conductor"
    assert chosen_queue(settings(tmp_path), "image") == "conductor"


def test_other_tasks_keep_the_default_queue(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, "image=cpu"))
    route = app.amqp.router.route({}, "conductor.submit", ("e", "n"), {})
    assert route["queue"].name == "conductor"
