"""`conductor worker`: a Celery worker for node tasks and `conductor.submit`."""

from __future__ import annotations

from dataclasses import replace

import click

from conductor.blob_collection import collect_in_worker
from conductor.children import ChildLauncher
from conductor.cli.shared_redis import shared_settings
from conductor.queues import standard_queues
from conductor.reconciler import reconcile_in_worker
from conductor.services import Services
from conductor.submission import Submitter
from conductor.submit_task import register_submit_task
from workers.presence import announce_presence
from workers.tasks import node_environment, register_tasks


@click.command()
@click.option(
    "-Q",
    "--queues",
    default=None,
    help="Comma-separated queues to consume (default: conductor, celery and every queue in "
    "CONDUCTOR_QUEUE_ROUTES; 'celery' carries conductor.submit from plain Celery clients).",
)
@click.option(
    "-c", "--concurrency", type=int, default=None, help="Worker processes (default: CPUs)."
)
@click.option("-n", "--hostname", default=None, help="Worker name, e.g. io@%h.")
@click.option("--loglevel", default="INFO", show_default=True)
def worker(
    queues: str | None, concurrency: int | None, hostname: str | None, loglevel: str
) -> None:
    """Run a Celery worker for node tasks (needs CONDUCTOR_REDIS_URL)."""
    settings = shared_settings()
    consumed = [name.strip() for name in (queues or "").split(",") if name.strip()]
    consumed = consumed or standard_queues(settings)
    services = Services.from_settings(settings)
    app, backend, registry = services.celery, services.backend, services.registry
    announce_presence(app, backend.presence(), consumed)
    children = ChildLauncher(services.dispatcher, lambda: services.blueprints)
    environment = node_environment(settings, services.stores.blobs)
    environment = replace(environment, children=children)
    register_tasks(app, services.stores, registry, environment, backend.rate_limiter())
    submitter = Submitter(
        services.dispatcher,
        backend.idempotency(),
        services.blueprints,
        claim_ttl_s=settings.state_ttl_s,
    )
    register_submit_task(app, submitter)
    reconcile_in_worker(settings, registry)
    collect_in_worker(settings)
    # No mingle: revocations are not Celery's in-memory ones (Conductor's state is in Redis),
    # and mingle makes every worker wait a second at start-up.
    argv = ["worker", "-Q", ",".join(consumed), "--loglevel", loglevel, "-E", "--without-mingle"]
    if concurrency:
        argv += ["-c", str(concurrency)]
    if hostname:
        argv += ["-n", hostname]
    app.worker_main(argv)
