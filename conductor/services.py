"""The one wiring point: every process (CLI, API, worker, recorder, reconciler, tests) builds
its Redis client, stores, history, Blueprint store and Celery app here, from settings, with one
Redis client policy (storage/redis_client.py: timeouts, health checks, bounded retries, a
bounded pool)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, cached_property, partial

from celery import Celery

from conductor.child_references import ChildReferences
from conductor.dispatch import Dispatcher
from conductor.model.settings import Settings, SettingsError
from nodes.registry import NodeRegistry, default_registry
from storage.blobs import open_blob_store
from storage.blueprints import BlueprintStore, open_blueprint_store
from storage.history import HistoryStore, open_history
from storage.redis_backend import RedisBackend
from storage.redis_client import MAX_CONNECTIONS
from workers.app import create_app
from workers.stores import Stores


@dataclass
class Services:
    """What a Conductor process uses, each part built on first use."""

    settings: Settings
    backend: RedisBackend
    registry: NodeRegistry = field(default_factory=default_registry)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        max_connections: int = MAX_CONNECTIONS,
        registry: NodeRegistry | None = None,
        name: str | None = None,
    ) -> Services:
        """Services on `settings.redis_url` (required); nothing connects until used. `name`
        names the process's Redis connections (CLIENT LIST)."""
        if settings.redis_url is None:
            raise SettingsError("set CONDUCTOR_REDIS_URL to the Redis the workers use")
        backend = RedisBackend.connect(
            settings.redis_url,
            master=settings.redis_master,
            max_connections=max_connections,
            name=name,
        )
        return cls(settings, backend, registry if registry is not None else default_registry())

    @cached_property
    def stores(self) -> Stores:
        """Execution state, blobs and retention, as node runs use them."""
        settings = self.settings
        return Stores(
            state=self.backend.state_store(
                ttl_s=settings.state_ttl_s, lease_ms=int(settings.lease_s * 1000)
            ),
            blobs=open_blob_store(settings.blob_store_url()),
            blob_threshold_bytes=settings.blob_threshold_bytes,
            finished_ttl_s=settings.finished_ttl_s,
            slots=self.backend.concurrency_slots(),
            admit=self._admit,
        )

    def _admit(self, execution_id: str) -> None:
        """Dispatch an execution a concurrency slot admitted (the dispatcher is built late:
        it holds these stores)."""
        self.dispatcher.send_admitted(execution_id)

    @cached_property
    def celery(self) -> Celery:
        """The Celery app (its broker connections are kombu's)."""
        return create_app(self.settings)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        """Submits and re-sends executions."""
        # opened on first use, holding no reference back to these services (no cycle)
        store = cache(partial(open_blueprint_store, self.settings.blueprints_dir))
        references = ChildReferences(store, self.settings.max_child_depth)
        return Dispatcher(
            self.celery,
            self.stores,
            self.registry,
            strict=self.settings.strict_parameters,
            references=references,
            archive=self.backend.blueprint_archive(ttl_s=self.settings.state_ttl_s),
            max_running_per_key=self.settings.max_running_per_key,
        )

    @cached_property
    def history(self) -> HistoryStore:
        """The execution-history store."""
        return open_history(self.settings.history_url)

    @cached_property
    def blueprints(self) -> BlueprintStore:
        """The Blueprint store."""
        return open_blueprint_store(self.settings.blueprints_dir)

    def close(self) -> None:
        """Close what was opened."""
        if "history" in self.__dict__:
            self.history.close()
        if "celery" in self.__dict__:  # its broker connection pool (a submission opened one)
            self.celery.close()
        self.backend.close()
