"""The recorder: event lag into the history store, one recorder's throughput, bytes stored.

    .venv/bin/python -m benchmarks.recorder [--executions N] [--rate R] [--events E]
                                            [--postgres URL]

One private Redis and one `conductor worker`; the Recorder runs in a thread of this process and
writes to a fresh SQLite file (and to a fresh schema of the PostgreSQL database at --postgres).
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import celery
import redis
import sqlalchemy as sa

from benchmarks.canvas_overhead import Client, make_client
from benchmarks.event_copies import prefill
from benchmarks.history_backends import Backend, Footprint, fresh_store, postgres_version
from benchmarks.recorder_report import (
    Drain,
    Lag,
    lag_of,
    print_footprints,
    print_lags,
    print_throughput,
    rates_of,
)
from benchmarks.scenarios import NOOP_NODE, linear_blueprint
from benchmarks.sides import RUN_TIMEOUT_S, RunFailed
from benchmarks.timed_history import TimedHistory
from conductor.dispatch import Dispatcher
from conductor.embedded import RedisServer, WorkerProcess
from conductor.model.blueprint import Blueprint
from conductor.recorder import BATCH_SIZE, Recorder
from conductor.waiting import wait_for_result
from storage.blueprint_archive import RedisBlueprintArchive
from storage.events import Event, EventType
from storage.history import HistoryStore
from storage.node_outputs import RedisNodeOutputs

NODES = 10
STOP_TIMEOUT_S = 10.0  # Recorder.run notices its stop event within its block time (1 s)


@dataclass(frozen=True)
class Options:
    """Command-line options."""

    executions: int
    warmup: int
    rate: float
    events: int
    worker_concurrency: int
    postgres: str | None
    replay: bool = True  # the recorder keeps Blueprints and outputs, as `conductor recorder`


def parse_options(argv: Sequence[str] | None = None) -> Options:
    """Options from the command line; the defaults finish in under a minute on two cores."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recorder")
    parser.add_argument(
        "--executions", type=int, default=250, help="measured executions for the lag"
    )
    parser.add_argument("--warmup", type=int, default=10, help="discarded executions first")
    parser.add_argument("--rate", type=float, default=10.0, help="executions submitted per second")
    parser.add_argument(
        "--events", type=int, default=50_000, help="events pre-filled for the throughput"
    )
    parser.add_argument("--worker-concurrency", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also measure PostgreSQL, each run in a fresh schema of this database (dropped "
        "after; needs CREATE on it), e.g. postgresql://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument(
        "--without-replay",
        action="store_true",
        help="the recorder keeps no Blueprints or node outputs (what replay needs), for comparison",
    )
    args = parser.parse_args(argv)
    if min(args.executions, args.events, args.worker_concurrency) < 1 or args.rate <= 0:
        parser.error("--executions, --events, --worker-concurrency and --rate must be > 0")
    return Options(
        args.executions,
        max(args.warmup, 0),
        args.rate,
        args.events,
        args.worker_concurrency,
        args.postgres,
        replay=not args.without_replay,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run every measurement and print the report."""
    options = parse_options(argv)
    with tempfile.TemporaryDirectory(prefix="conductor-bench-") as tmp:
        root = Path(tmp)
        (root / "redis").mkdir()
        server = RedisServer(root / "redis").start()
        try:
            client = make_client(server.url, {"CONDUCTOR_DATA_DIR": str(root / "data")})
            backends = [Backend("SQLite", sqlite_dir=root / "history")]
            if options.postgres:
                backends.append(Backend("PostgreSQL", postgres_url=options.postgres))
            _print_header(options, client, backends)
            run_benchmark(client, options, backends, root / "worker.log")
        finally:
            server.stop()


def run_benchmark(
    client: Client, options: Options, backends: Sequence[Backend], log_path: Path
) -> None:
    """Lag with the worker running; then, the worker gone, throughput and bytes."""
    with conductor_worker(client, options, log_path):
        template, live = lag_section(client, options, backends)
    measured = [measure_drain(client, backend, template, options) for backend in backends]
    print_throughput([drain for drain, _ in measured], len(template), BATCH_SIZE)
    print_footprints([footprint for _, footprint in measured] + live, NODES, len(template))


@contextmanager
def conductor_worker(client: Client, options: Options, log_path: Path) -> Iterator[None]:
    """`conductor worker` (WorkerProcess), running and past its first one-node execution."""
    worker = WorkerProcess(
        client.url, concurrency=options.worker_concurrency, env=client.env, log_path=log_path
    )
    worker.start()
    try:
        plan = client.dispatcher.submit(linear_blueprint(1), {})
        wait_for_result(client.redis, client.dispatcher.stores, plan.execution_id, RUN_TIMEOUT_S)
        yield
    except Exception:
        _print_log_tail(log_path)  # the log goes away with the temporary folder
        raise
    finally:
        worker.kill()  # as embedded() does


def _print_log_tail(log_path: Path, lines: int = 40) -> None:
    if log_path.exists():
        tail = log_path.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- last lines of the worker's log ({log_path})", *tail, sep="\n")


# ---- 1. event lag ---------------------------------------------------------------------------


def lag_section(
    client: Client, options: Options, backends: Sequence[Backend]
) -> tuple[list[Event], list[Footprint]]:
    """Measure and print the lag on each backend; return the last execution's events as
    recorded, and each store's footprint."""
    lags: list[Lag] = []
    footprints: list[Footprint] = []
    template: list[Event] = []
    for backend in backends:
        lag, footprint, template = measure_lag(client, backend, options)
        lags.append(lag)
        footprints.append(footprint)
    print(
        f"\n1. Event lag, node finished -> its event committed in the history store, ms\n"
        f"   ({options.executions} executions of a {NODES}-node chain after {options.warmup} "
        f"warm-up, submitted at {options.rate:g}/s;\n   lag = time.time() when the store's "
        f"record() returned - the event's ts)"
    )
    print_lags(lags)
    return template, footprints


def measure_lag(
    client: Client, backend: Backend, options: Options
) -> tuple[Lag, Footprint, list[Event]]:
    """Executions submitted at a steady rate while a Recorder thread writes to a fresh store."""
    with fresh_store(backend, "lag") as fresh:
        empty_bytes = fresh.size_bytes()
        timed = TimedHistory(fresh.store)
        with recording(client, timed, f"bench-lag-{backend.name}", replay=options.replay):
            ids = submit_at_rate(_dispatcher(client, options), linear_blueprint(NODES), options)
            timed.wait_until_ended(ids, RUN_TIMEOUT_S)
        failed = [key for key in ids if timed.ended[key] != EventType.EXECUTION_SUCCEEDED]
        if failed:
            raise RunFailed(f"{len(failed)} executions did not succeed, e.g. {failed[0]}")
        template = fresh.store.events(ids[-1])
        # Every execution this store holds: the measured ones, warm-up, perhaps a start-up one.
        footprint = fresh.footprint(backend.name, "recorded live", empty_bytes, len(timed.ended))
    return lag_of(backend.name, timed.calls, set(ids[options.warmup :])), footprint, template


def _dispatcher(client: Client, options: Options) -> Dispatcher:
    """The client's dispatcher, archiving Blueprints (as Services' does) unless --without-replay."""
    if not options.replay:
        return client.dispatcher
    archive = RedisBlueprintArchive(client.redis, client.settings.state_ttl_s)
    base = client.dispatcher
    return Dispatcher(base.app, base.stores, base.registry, archive=archive)


def _recorder(client: Client, history: HistoryStore, consumer: str, *, replay: bool) -> Recorder:
    """A Recorder on a client of its own; with `replay`, keeping what replay needs."""
    own = redis.Redis.from_url(client.url)
    if not replay:
        return Recorder(own, history, consumer=consumer)
    archive = RedisBlueprintArchive(own, client.settings.state_ttl_s)
    return Recorder(
        own, history, consumer=consumer, blueprints=archive, outputs=RedisNodeOutputs(own)
    )


@contextmanager
def recording(
    client: Client, history: HistoryStore, consumer: str, *, replay: bool
) -> Iterator[None]:
    """`Recorder.run` in a thread of this process for the duration of the block."""
    stop = threading.Event()
    recorder = _recorder(client, history, consumer, replay=replay)
    thread = threading.Thread(target=recorder.run, args=(stop,), name="recorder", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(STOP_TIMEOUT_S)


def submit_at_rate(dispatcher: Dispatcher, blueprint: Blueprint, options: Options) -> list[str]:
    """Submit warm-up plus measured executions on a fixed schedule (waiting for none)."""
    ids, start = [], time.monotonic()
    for index in range(options.warmup + options.executions):
        delay = start + index / options.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        ids.append(dispatcher.submit(blueprint, {}).execution_id)
    return ids


# ---- 2. throughput, 3. bytes ----------------------------------------------------------------


def measure_drain(
    client: Client, backend: Backend, template: list[Event], options: Options
) -> tuple[Drain, Footprint]:
    """Pre-fill the stream with copies of `template`, then time Recorder.drain() into a fresh
    store; its size before and after."""
    executions = math.ceil(options.events / len(template))
    with fresh_store(backend, "drain") as fresh:
        empty_bytes = fresh.size_bytes()
        began = time.perf_counter()
        events = prefill(client.redis, template, executions)
        fill_s = time.perf_counter() - began
        timed = TimedHistory(fresh.store)
        consumer = f"bench-drain-{backend.name}"
        recorder = _recorder(client, timed, consumer, replay=options.replay)
        wall_began, began = time.time(), time.perf_counter()
        handled = recorder.drain()
        drain_s = time.perf_counter() - began
        _check_drained(fresh.store, handled, events, timed)
        how = f"drained in batches of {BATCH_SIZE}"
        footprint = fresh.footprint(backend.name, how, empty_bytes, executions)
    record_s = sum(call.seconds for call in timed.calls)
    first_rate, last_rate = rates_of(timed.calls, wall_began)
    drain = Drain(
        backend.name, events, executions, fill_s, drain_s, record_s, first_rate, last_rate
    )
    return drain, footprint


def _check_drained(store: HistoryStore, handled: int, events: int, timed: TimedHistory) -> None:
    if handled != events:
        raise RunFailed(f"drain handled {handled} entries, {events} were added")
    last = next(reversed(timed.ended))
    record = store.execution(last)
    if record is None or record.status != "succeeded" or record.last_seq != len(store.events(last)):
        raise RunFailed(f"execution {last} not fully recorded as succeeded")


def _print_header(options: Options, client: Client, backends: Sequence[Backend]) -> None:
    info = client.redis.info("server")
    databases = f"SQLAlchemy {sa.__version__}, SQLite {sqlite3.sqlite_version}"
    for backend in backends:
        if backend.postgres_url:
            databases += f", PostgreSQL {postgres_version(backend.postgres_url)}"
    print(
        f"recorder: Python {platform.python_version()}, Celery {celery.__version__}, "
        f"Redis {info['redis_version']}, {databases}, {os.cpu_count()} CPUs; worker: "
        f"`conductor worker -c {options.worker_concurrency}`; Recorder.run in a thread of this "
        f"process; no-op node: {NOOP_NODE['type']} {NOOP_NODE['parameters']}; keeping what "
        f"replay needs (Blueprints, node outputs): {'yes' if options.replay else 'no'}"
    )


if __name__ == "__main__":
    main()
