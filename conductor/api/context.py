"""What the API's handlers share: settings, stores, the dispatcher and submitter, built from
the one wiring point (conductor/services.py)."""

from __future__ import annotations

from dataclasses import dataclass

from conductor.api.streams import StreamSlots
from conductor.dispatch import Dispatcher
from conductor.model.settings import Settings
from conductor.services import Services
from conductor.submission import QueueWatch, Submitter
from nodes.registry import NodeRegistry
from storage.blueprints import BlueprintStore
from storage.event_source import EventSource
from storage.history import HistoryStore
from storage.node_outputs import NodeOutputs
from storage.presence import PresenceStore
from storage.redis_backend import RedisBackend
from workers.stores import Stores

# Redis connections one API process may open: event streams share one (the fan-out), so
# these serve the requests' short reads; a request waits for a free one, then gets a 503.
API_MAX_CONNECTIONS = 50
REDIS_CLIENT_NAME = "conductor-api"  # the API's connections in Redis's CLIENT LIST


@dataclass(frozen=True)
class ApiContext:
    """Built once when the API starts."""

    settings: Settings
    backend: RedisBackend
    stores: Stores
    registry: NodeRegistry
    history: HistoryStore
    blueprints: BlueprintStore
    dispatcher: Dispatcher
    submitter: Submitter
    events: EventSource
    outputs: NodeOutputs
    presence: PresenceStore
    streams: StreamSlots

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiContext:
        """Connect everything (Redis connections are made lazily, per request)."""
        services = Services.from_settings(
            settings, max_connections=API_MAX_CONNECTIONS, name=REDIS_CLIENT_NAME
        )
        return cls.from_services(services)

    @classmethod
    def from_services(cls, services: Services) -> ApiContext:
        """The API's view of `services`."""
        backend = services.backend
        return cls(
            settings=services.settings,
            backend=backend,
            stores=services.stores,
            registry=services.registry,
            history=services.history,
            blueprints=services.blueprints,
            dispatcher=services.dispatcher,
            submitter=Submitter(
                services.dispatcher,
                backend.idempotency(),
                services.blueprints,
                claim_ttl_s=services.settings.state_ttl_s,
                queues=QueueWatch(backend.presence(), services.settings.queue_routes),
            ),
            events=backend.event_source(shared=True),
            outputs=backend.node_outputs(),
            presence=backend.presence(),
            streams=StreamSlots.from_env(),
        )
