"""Many viewers of one execution (issue 15): every Server-Sent Events stream ends with the
terminal event, or is refused with 503 and Retry-After past the bound; never an empty 200."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
import redis

from conductor.api.context import REDIS_CLIENT_NAME
from conductor.embedded import ApiProcess, WorkerProcess
from tests.e2e.test_api import chain, parse_sse, submit, wait_until

VIEWERS = 150


@dataclass(frozen=True)
class Viewed:
    """What one viewer got."""

    status: int
    events: list[str]
    retry_after: str | None


def view(url: str, execution_id: str, started: threading.Semaphore | None = None) -> Viewed:
    """Follow the stream to its end (a refusal is read whole); `started` is released once the
    first event came (the stream is subscribed then) or the stream ended without one."""
    timeout = httpx.Timeout(30, read=60)
    events: list[str] = []
    try:
        with (
            httpx.Client(base_url=url, timeout=timeout) as http,
            http.stream("GET", f"/v1/executions/{execution_id}/events") as response,
        ):
            if response.status_code != 200:
                response.read()
                return Viewed(response.status_code, [], response.headers.get("retry-after"))
            for event in parse_sse(response.iter_lines()):
                events.append(event.event)
                if started is not None and len(events) == 1:
                    started.release()
            return Viewed(200, events, None)
    finally:
        if started is not None and not events:
            started.release()


def test_150_concurrent_streams_all_end_with_the_terminal_event(api: ApiProcess) -> None:
    """The execution is paused until every viewer is subscribed, so all 150 wait on live
    events at once."""
    with httpx.Client(base_url=api.url, timeout=30) as http:
        execution_id = submit(http, {"blueprint": chain(200, "a", "b")})
        assert http.post(f"/v1/executions/{execution_id}/pause").status_code == 200
        started = threading.Semaphore(0)
        with ThreadPoolExecutor(VIEWERS) as pool:
            futures = [pool.submit(view, api.url, execution_id, started) for _ in range(VIEWERS)]
            for _ in range(VIEWERS):
                assert started.acquire(timeout=60)
            assert http.post(f"/v1/executions/{execution_id}/resume").status_code == 200
            viewed = [future.result(timeout=120) for future in futures]
    assert [v.status for v in viewed] == [200] * VIEWERS
    cut_short = [v.events for v in viewed if not v.events or v.events[-1] != "execution.succeeded"]
    assert cut_short == [], f"{len(cut_short)} streams did not end with the terminal event"


@pytest.fixture(scope="module")
def bounded_api(api_env: dict[str, str], worker: WorkerProcess) -> Iterator[ApiProcess]:
    """`conductor api` holding at most 3 event streams."""
    process = ApiProcess({**api_env, "CONDUCTOR_API_MAX_STREAMS": "3"}).start()
    yield process
    process.stop()


def test_streams_past_the_bound_get_503_with_retry_after_and_slots_come_back(
    bounded_api: ApiProcess,
) -> None:
    with httpx.Client(base_url=bounded_api.url, timeout=30) as http:
        execution_id = submit(http, {"blueprint": chain(200, "a", "b")})
        assert http.post(f"/v1/executions/{execution_id}/pause").status_code == 200
        started = threading.Semaphore(0)
        with ThreadPoolExecutor(3) as pool:
            held = [pool.submit(view, bounded_api.url, execution_id, started) for _ in range(3)]
            for _ in range(3):
                assert started.acquire(timeout=60)
            refused = view(bounded_api.url, execution_id)  # while the three are still open
            assert http.post(f"/v1/executions/{execution_id}/resume").status_code == 200
            viewed = [future.result(timeout=120) for future in held]
    assert refused.status == 503 and refused.retry_after and int(refused.retry_after) > 0
    assert all(v.status == 200 and v.events[-1] == "execution.succeeded" for v in viewed)
    # The slots are free again once the streams ended: three viewers replay the execution.
    wait_until(lambda: view(bounded_api.url, execution_id).status == 200)
    again = [view(bounded_api.url, execution_id) for _ in range(3)]
    assert [v.status for v in again] == [200, 200, 200]


def test_a_stream_whose_redis_subscription_is_killed_misses_nothing(
    api: ApiProcess, redis_client: redis.Redis
) -> None:
    """The API's shared subscription is killed again and again while the execution runs
    (redis-py subscribes again each time, losing what was published in between): the stream
    still ends with the terminal event, every seq once and in order (gaps come from the
    event log)."""
    nodes = [f"n{i}" for i in range(12)]
    with httpx.Client(base_url=api.url, timeout=30) as http:
        execution_id = submit(http, {"blueprint": chain(30, *nodes)})
        assert http.post(f"/v1/executions/{execution_id}/pause").status_code == 200
        started, stop = threading.Semaphore(0), threading.Event()
        with ThreadPoolExecutor(2) as pool:
            viewing = pool.submit(view_seqs, api.url, execution_id, started)
            assert started.acquire(timeout=60)
            killing = pool.submit(kill_subscriptions, redis_client, stop)
            assert http.post(f"/v1/executions/{execution_id}/resume").status_code == 200
            try:
                kinds, seqs = viewing.result(timeout=90)
            finally:
                stop.set()
            assert killing.result(timeout=30) > 0
    assert kinds[-1] == "execution.succeeded"
    assert seqs == list(range(1, len(seqs) + 1))


def kill_subscriptions(client: redis.Redis, stop: threading.Event) -> int:
    """Kill the API's pub/sub connections until `stop`; how many were killed."""
    killed = 0
    while not stop.wait(0.01):
        for found in client.client_list():
            if found.get("name") == REDIS_CLIENT_NAME and int(found.get("psub", 0)):
                with contextlib.suppress(redis.ResponseError):  # gone meanwhile
                    killed += client.client_kill_filter(_id=found["id"])
    return killed


def view_seqs(
    url: str, execution_id: str, started: threading.Semaphore
) -> tuple[list[str], list[int]]:
    """Follow to the end: each event's type and seq; `started` once the first one came."""
    kinds: list[str] = []
    seqs: list[int] = []
    with (
        httpx.Client(base_url=url, timeout=httpx.Timeout(30, read=60)) as http,
        http.stream("GET", f"/v1/executions/{execution_id}/events") as response,
    ):
        assert response.status_code == 200
        for event in parse_sse(response.iter_lines()):
            kinds.append(event.event)
            seqs.append(event.seq)
            if len(kinds) == 1:
                started.release()
    return kinds, seqs
