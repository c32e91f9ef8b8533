"""What the API's handlers share: settings, Redis, stores, the dispatcher and submitter."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from conductor.dispatch import Dispatcher
from conductor.model.settings import Settings
from conductor.submission import Submitter
from nodes.registry import NodeRegistry, default_registry
from storage.blueprints import BlueprintStore, open_blueprint_store
from storage.history import HistoryStore, open_history
from workers.app import create_app
from workers.stores import Stores
from workers.tasks import make_stores


@dataclass(frozen=True)
class ApiContext:
    """Built once when the API starts."""

    settings: Settings
    client: redis.Redis
    stores: Stores
    registry: NodeRegistry
    history: HistoryStore
    blueprints: BlueprintStore
    dispatcher: Dispatcher
    submitter: Submitter

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiContext:
        """Connect everything (Redis connections are made lazily, per request)."""
        assert settings.redis_url is not None, "the API needs CONDUCTOR_REDIS_URL"
        client = redis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=2, socket_timeout=10
        )
        stores = make_stores(settings)
        registry = default_registry()
        blueprints = open_blueprint_store(settings.blueprints_dir)
        dispatcher = Dispatcher(
            create_app(settings), stores, registry, strict=settings.strict_parameters
        )
        return cls(
            settings=settings,
            client=client,
            stores=stores,
            registry=registry,
            history=open_history(settings.history_url),
            blueprints=blueprints,
            dispatcher=dispatcher,
            submitter=Submitter(dispatcher, client, blueprints, claim_ttl_s=settings.state_ttl_s),
        )
