"""End-to-end helpers: submit Blueprints to the session's worker and wait for results."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conductor.embedded import ApiProcess, RedisServer, WorkerProcess
from conductor.model.loader import load_blueprint_text
from conductor.model.settings import Settings
from conductor.services import Services
from conductor.waiting import wait_for_result
from tests.e2e.fault_stack import Hits

RunBlueprint = Callable[..., dict[str, Any]]


@pytest.fixture
def run_blueprint(settings: Settings, worker: WorkerProcess) -> Iterator[RunBlueprint]:
    """Submit Blueprint text to the real worker and return the result object."""
    services = Services.from_settings(settings)
    events = services.backend.event_source()

    def run(
        text: str, inputs: dict[str, Any] | None = None, timeout_s: float = 30
    ) -> dict[str, Any]:
        plan = services.dispatcher.submit(load_blueprint_text(text), inputs or {})
        return wait_for_result(events, services.stores, plan.execution_id, timeout_s)

    yield run
    services.close()


@pytest.fixture(scope="session")
def api_env(redis_server: RedisServer, worker_env: dict[str, str]) -> dict[str, str]:
    """Environment for API and recorder processes on the session's Redis and data dir."""
    return {"CONDUCTOR_REDIS_URL": redis_server.url, **worker_env}


@pytest.fixture(scope="session")
def api(api_env: dict[str, str], worker: WorkerProcess) -> Iterator[ApiProcess]:
    """`conductor api` (no token) as its own process, with the session's worker."""
    process = ApiProcess(api_env).start()
    yield process
    process.stop()


@pytest.fixture
def hits() -> Iterator[Hits]:
    """A local HTTP server counting requests per path."""
    server = Hits()
    yield server
    server.server.shutdown()
    server.server.server_close()
