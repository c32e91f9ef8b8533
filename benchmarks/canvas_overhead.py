"""Conductor's overhead over bare Celery canvases: latency and Redis round trips per node.

    .venv/bin/python -m benchmarks.canvas_overhead [--runs N] [--warmup W] [--concurrency C]
                                                   [--no-recorder] [--quick]

One private Redis, one worker process (`benchmarks.worker`: Conductor's tasks plus bare no-op
tasks on the same app and settings) and `conductor recorder` (as the README asks wherever
workers run; --no-recorder leaves it out, to see what it costs); the two sides run
interleaved. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import celery
import redis

from benchmarks.node_work import measure_node_work
from benchmarks.recording import maybe_recorder
from benchmarks.redis_stats import RedisCounts, counted_sends, read_stats, reset_stats
from benchmarks.report import Cost, Latencies, print_costs, print_latencies, print_node_work
from benchmarks.scenarios import NOOP_NODE, Scenario, linear_blueprint, scenarios
from benchmarks.sides import (
    RUN_TIMEOUT_S,
    BareSide,
    ConductorSide,
    Side,
    Timing,
    wait_for_message,
)
from benchmarks.worker import DONE_TASK, BenchWorkerProcess, done_channel
from conductor.dispatch import Dispatcher
from conductor.embedded import RedisServer, WorkerProcess
from conductor.model.settings import Settings
from conductor.waiting import wait_for_result
from nodes.registry import default_registry
from workers.app import create_app
from workers.tasks import make_stores

SETTLE_S = 0.2  # lets the worker finish acks and events of the last run before counting
IDLE_S = 3.0


@dataclass(frozen=True)
class Options:
    """Command-line options."""

    runs: int
    warmup: int
    concurrency: int
    worker_concurrency: int
    cost_runs: int
    recorder: bool = True


@dataclass(frozen=True)
class Client:
    """The client side: settings, a Celery app and Redis connections, shared by both sides."""

    settings: Settings
    env: dict[str, str]
    redis: redis.Redis
    dispatcher: Dispatcher

    @property
    def url(self) -> str:
        """The private Redis."""
        return str(self.settings.redis_url)


def parse_options(argv: Sequence[str] | None = None) -> Options:
    """Options from the command line; the defaults finish in about a minute on two cores."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.canvas_overhead")
    parser.add_argument("--runs", type=int, default=100, help="measured runs per side and shape")
    parser.add_argument("--warmup", type=int, default=10, help="discarded runs first")
    parser.add_argument("--concurrency", type=int, default=1, help="executions in flight")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--cost-runs", type=int, default=10, help="executions per side and shape for Redis counts"
    )
    parser.add_argument(
        "--no-recorder", action="store_true", help="no recorder on Conductor's side"
    )
    parser.add_argument("--quick", action="store_true", help="5 runs, 2 warm-up, 2 cost runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.warmup, args.cost_runs = 5, 2, 2
    if min(args.runs, args.concurrency, args.worker_concurrency, args.cost_runs) < 1:
        parser.error("--runs, --concurrency, --worker-concurrency and --cost-runs must be >= 1")
    return Options(
        args.runs,
        max(args.warmup, 0),
        args.concurrency,
        args.worker_concurrency,
        args.cost_runs,
        recorder=not args.no_recorder,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run every measurement and print the report."""
    options = parse_options(argv)
    with tempfile.TemporaryDirectory(prefix="conductor-bench-") as tmp:
        root = Path(tmp)
        (root / "redis").mkdir()
        server = RedisServer(root / "redis")
        redis_start_s = _timed(server.start)
        try:
            client = make_client(server.url, {"CONDUCTOR_DATA_DIR": str(root / "data")})
            _print_header(options, client)
            _print_startup(redis_start_s, client, options)
            with (
                maybe_recorder(client.env, root, enabled=options.recorder),
                bench_worker(client, options, root / "worker.log") as ready_s,
            ):
                _print_timing("benchmarks.worker start -> first bare task done", ready_s)
                run_benchmark(client, options)
        finally:
            server.stop()


def make_client(redis_url: str, env: dict[str, str]) -> Client:
    """Settings read from the same environment the worker gets, and the client objects."""
    env = {**env, "CONDUCTOR_REDIS_URL": redis_url}
    settings = Settings.from_env({**os.environ, **env})
    dispatcher = Dispatcher(create_app(settings), make_stores(settings), default_registry())
    return Client(settings, env, redis.Redis.from_url(redis_url), dispatcher)


@contextmanager
def bench_worker(client: Client, options: Options, log_path: Path) -> Iterator[float]:
    """The benchmark worker, running; yields the seconds from start to its first task done."""
    worker = BenchWorkerProcess(
        client.url, concurrency=options.worker_concurrency, env=client.env, log_path=log_path
    )
    try:
        yield _until_first_bare_task(client, worker.start)
    except Exception:
        _print_log_tail(log_path)  # the log goes away with the temporary folder
        raise
    finally:
        worker.kill()  # as embedded() does: the private Redis goes away with it


def _print_log_tail(log_path: Path, lines: int = 40) -> None:
    if log_path.exists():
        tail = log_path.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- last lines of the worker's log ({log_path})", *tail, sep="\n")


def run_benchmark(client: Client, options: Options) -> None:
    """Latencies, Redis counts, then Conductor's own per-node work, for every scenario."""
    sides: list[Side] = [
        BareSide(client.dispatcher.app, client.redis),
        ConductorSide(client.dispatcher, client.dispatcher.stores, client.redis),
    ]
    shapes = scenarios()
    latency_section(sides, shapes, options)
    # Its own connection pool: sharing the sides' pool would shift connection hand-shakes
    # (pub/sub connections are closed after each run) in or out of the counted batch.
    cost_section(sides, shapes, options, redis.Redis.from_url(client.url))
    node_work_section(shapes, options, client.dispatcher)


def latency_section(sides: Sequence[Side], shapes: Sequence[Scenario], options: Options) -> None:
    """Measure and print the latencies."""
    with ThreadPoolExecutor(max_workers=options.concurrency) as pool:
        latencies = [measure_latencies(sides, shape, options, pool) for shape in shapes]
    print(
        f"\nLatency, submit -> result known to the client, ms ({options.runs} runs per side "
        f"after {options.warmup} warm-up, interleaved; {options.concurrency} in flight)"
    )
    print_latencies(latencies)


def cost_section(
    sides: Sequence[Side], shapes: Sequence[Scenario], options: Options, stats: redis.Redis
) -> None:
    """Measure and print the Redis work per node."""
    idle = measure_idle(stats)
    costs = [
        measure_cost(side, shape, options.cost_runs, stats) for shape in shapes for side in sides
    ]
    print(
        f"\nRedis work per node ({options.cost_runs} executions per side and shape, one at a "
        "time; INFO commandstats and total_reads_processed deltas after CONFIG RESETSTAT)"
    )
    print_costs(costs, idle, IDLE_S)


def node_work_section(shapes: Sequence[Scenario], options: Options, dispatcher: Dispatcher) -> None:
    """Measure and print run_node's own time and requests."""
    print(
        f"\nConductor's own work per node, without Celery (run_node in this process, "
        f"{options.cost_runs} executions; requests = Redis requests sent)"
    )
    for shape in shapes:
        work = measure_node_work(
            shape.blueprint, dispatcher.stores, dispatcher.registry, options.cost_runs
        )
        print_node_work(shape.label, work)


def measure_latencies(
    sides: Sequence[Side], scenario: Scenario, options: Options, pool: ThreadPoolExecutor
) -> Latencies:
    """Rounds of one batch per side, the order alternating each round; warm-up discarded."""
    samples: dict[str, list[Timing]] = {side.name: [] for side in sides}
    for index in range(options.warmup + options.runs):
        order = sides if index % 2 == 0 else list(reversed(sides))
        for side in order:
            batch = run_batch(side, scenario, options.concurrency, pool)
            if index >= options.warmup:
                samples[side.name] += batch
    return Latencies(scenario, bare=samples["bare"], conductor=samples["conductor"])


def run_batch(
    side: Side, scenario: Scenario, concurrency: int, pool: ThreadPoolExecutor
) -> list[Timing]:
    """`concurrency` runs at once; their latencies."""
    if concurrency == 1:
        return [side.run(scenario)]
    return list(pool.map(lambda _: side.run(scenario), range(concurrency)))


def measure_cost(side: Side, scenario: Scenario, executions: int, stats: redis.Redis) -> Cost:
    """Redis's counters over `executions` runs one at a time, and the client's own requests."""
    time.sleep(SETTLE_S)
    reset_stats(stats)
    with counted_sends() as sends:
        for _ in range(executions):
            side.run(scenario)
    time.sleep(SETTLE_S)
    return Cost(scenario, side.name, executions, read_stats(stats), sends.sends)


def measure_idle(stats: redis.Redis) -> RedisCounts:
    """What the idle worker alone costs Redis over IDLE_S."""
    reset_stats(stats)
    time.sleep(IDLE_S)
    return read_stats(stats)


def _print_header(options: Options, client: Client) -> None:
    info = client.redis.info("server")
    print(
        f"canvas_overhead: Python {platform.python_version()}, Celery {celery.__version__}, "
        f"Redis {info['redis_version']}, {os.cpu_count()} CPUs; worker: `conductor worker -c "
        f"{options.worker_concurrency}` plus bare tasks; no-op node: {NOOP_NODE['type']} "
        f"{NOOP_NODE['parameters']}; recorder: {'running' if options.recorder else 'none'}"
    )


def _print_startup(redis_start_s: float, client: Client, options: Options) -> None:
    ready_s, stop_s = conductor_worker_startup(client, options.worker_concurrency)
    print("\nEmbedded start-up (what `conductor run` without CONDUCTOR_REDIS_URL pays)")
    _print_timing("RedisServer().start()", redis_start_s)
    _print_timing("WorkerProcess.start() -> 1-node execution's result", ready_s)
    _print_timing("WorkerProcess.kill() (as embedded() ends)", stop_s)


def _print_timing(label: str, seconds: float) -> None:
    print(f"  {label:<52}{seconds * 1000:8.1f} ms")


def conductor_worker_startup(client: Client, concurrency: int) -> tuple[float, float]:
    """`conductor worker` (conductor.embedded.WorkerProcess): seconds to a first result, to kill."""
    worker = WorkerProcess(client.url, concurrency=concurrency, env=client.env)
    start = time.perf_counter()
    worker.start()
    try:
        plan = client.dispatcher.submit(linear_blueprint(1), {})
        stores = client.dispatcher.stores
        wait_for_result(client.redis, stores, plan.execution_id, RUN_TIMEOUT_S)
        ready_s = time.perf_counter() - start
    finally:
        stop_s = _timed(worker.kill)
    return ready_s, stop_s


def _until_first_bare_task(client: Client, start: Callable[[], object]) -> float:
    """Seconds from `start()` to a `bench.done` task sent right after it announcing itself."""
    pubsub = client.redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(done_channel("ready"))
    try:
        began = time.perf_counter()
        start()
        client.dispatcher.app.send_task(DONE_TASK, args=("ready",), ignore_result=True)
        wait_for_message(pubsub, RUN_TIMEOUT_S)
        return time.perf_counter() - began
    finally:
        pubsub.close()


def _timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


if __name__ == "__main__":
    main()
