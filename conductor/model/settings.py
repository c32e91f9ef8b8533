"""Settings: read once from the environment (CONTRACT section 5), passed everywhere else."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from platformdirs import user_data_path
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conductor.model.timeouts import MAX_TIMEOUT_MS

# A node type or queue name in CONDUCTOR_QUEUE_ROUTES.
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_.:@-]+")

# Celery's hard time limit for a node is its `timeout` plus this margin.
HARD_LIMIT_MARGIN_S = 10


class SettingsError(ValueError):
    """A CONDUCTOR_* variable that does not parse or is out of range; names the variable."""


class Settings(BaseModel):
    """Conductor's configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    redis_url: str | None = Field(default=None, pattern=r"(?i)^(redis|rediss|unix|sentinel)://")
    redis_master: str | None = None  # the Sentinels' name of the primary (sentinel:// URLs)
    history_url: str = Field(pattern=r"(?i)^(sqlite|postgresql|postgres)(\+\w+)?://")
    blueprints_dir: Path
    files_root: Path
    blob_dir: Path
    api_token: str | None = None
    allow_shell: bool = False
    strict_parameters: bool = False  # unknown node fields and parameters are errors
    flower_basic_auth: str | None = None
    state_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    visibility_timeout_s: int = Field(default=2 * 3600, ge=1)
    blob_threshold_bytes: int = Field(default=256 * 1024, ge=1024)
    # file:///path or s3://bucket/prefix; None: the folder `blob_dir`
    blob_url: str | None = Field(default=None, pattern=r"^(file:///.+|s3://[^/]+(/.*)?)$")
    # The blob collector: blobs written this recently are never collected (their reference
    # may not be stored yet), and how often a worker runs a pass.
    blob_gc_grace_s: int = Field(default=3600, ge=0)
    blob_gc_every_s: float = Field(default=3600.0, ge=0)  # 0: workers never collect
    finished_ttl_s: int = Field(default=24 * 3600, ge=1)  # a finished execution's keys
    queue_routes: dict[str, str] = Field(default_factory=dict)  # node type -> queue
    # What http-request may reach beyond public addresses: CIDRs and host names.
    http_allow: tuple[str, ...] = ()
    max_output_mb: int = Field(default=64, ge=1, le=4096)  # one node's output, as JSON
    # A worker's pool process is replaced after a task that leaves it above this resident
    # memory (Celery's worker_max_memory_per_child); 0: never.
    worker_max_memory_mb: int = Field(default=0, ge=0, le=1024 * 1024)
    # The reconciler: how often a worker looks for stuck executions, and how long one may go
    # without progress (and with nothing queued for it) before its nodes are sent again.
    reconcile_every_s: float = Field(default=5.0, gt=0)
    stall_s: int = Field(default=300, ge=1)
    # How long a node attempt holds its node past its last heartbeat (one a second): a worker
    # that died or was cut off mid-node is taken over this long after it stopped.
    lease_s: float = Field(default=10.0, ge=2)
    # A `delay` longer than this parks (its worker is free meanwhile) instead of sleeping.
    park_delay_ms: int = Field(default=5000, ge=0)
    # How deep `blueprint` nodes may nest child executions (docs/children.md).
    max_child_depth: int = Field(default=10, ge=1, le=100)
    # Executions with one concurrency key running at once, unless the Blueprint says
    # (settings.concurrency.maxRunning).
    max_running_per_key: int = Field(default=1, ge=1)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `CONDUCTOR_*` variables, with defaults in the user data dir."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("CONDUCTOR_DATA_DIR") or user_data_path("conductor"))

        def get(name: str) -> str | None:
            return env.get(f"CONDUCTOR_{name}") or None

        numbers = {name: get(name.upper()) for name in _NUMBERS}
        fields: dict[str, Any] = {
            "redis_url": get("REDIS_URL"),
            "redis_master": _redis_master(get("REDIS_URL"), get("REDIS_MASTER")),
            "history_url": get("HISTORY_URL") or f"sqlite:///{data_dir / 'history.sqlite3'}",
            "blueprints_dir": Path(get("BLUEPRINTS_DIR") or data_dir / "blueprints"),
            "files_root": Path(get("FILES_ROOT") or data_dir / "files"),
            "blob_dir": Path(get("BLOB_DIR") or data_dir / "blobs"),
            "blob_url": get("BLOB_URL"),
            "api_token": get("API_TOKEN"),
            "allow_shell": _flag(get("ALLOW_SHELL")),
            "strict_parameters": _flag(get("STRICT_PARAMETERS")),
            "flower_basic_auth": get("FLOWER_BASIC_AUTH"),
            "queue_routes": parse_queue_routes(get("QUEUE_ROUTES") or ""),
            "http_allow": parse_http_allow(get("HTTP_ALLOW") or ""),
            **{name: value for name, value in numbers.items() if value},
        }
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:  # name the variable, not the field
            raise SettingsError(
                "; ".join(
                    f"CONDUCTOR_{str(err['loc'][0]).upper()}={err['input']!r}: {err['msg']}"
                    for err in exc.errors()
                )
            ) from None

    def routed_queues(self) -> list[str]:
        """The queues routes send to, in order of first mention, without repeats."""
        return list(dict.fromkeys(self.queue_routes.values()))

    def with_redis(self, redis_url: str, master: str | None = None) -> Settings:
        """A copy that points at another Redis (or Sentinels and their `master`)."""
        return self.model_copy(update={"redis_url": redis_url, "redis_master": master})

    def blob_store_url(self) -> str:
        """Where blobs are kept: CONDUCTOR_BLOB_URL, else the folder CONDUCTOR_BLOB_DIR."""
        return self.blob_url or f"file://{self.blob_dir.resolve()}"

    def max_time_limit_s(self) -> int:
        """The longest hard time limit any node task can get."""
        return MAX_TIMEOUT_MS // 1000 + HARD_LIMIT_MARGIN_S


# Numeric settings, read from CONDUCTOR_<NAME> as text and checked by the model.
_NUMBERS = (
    "state_ttl_s", "visibility_timeout_s", "blob_threshold_bytes", "finished_ttl_s",
    "stall_s", "reconcile_every_s", "lease_s", "max_output_mb", "park_delay_ms",
    "max_child_depth", "max_running_per_key", "blob_gc_grace_s", "blob_gc_every_s",
    "worker_max_memory_mb",
)  # fmt: skip


SENTINEL_SCHEME = "sentinel"


def sentinel_hosts(url: str) -> list[tuple[str, int]]:
    """The (host, port) of each Sentinel in `sentinel://h1:26379;sentinel://h2:26379` (every
    port spelled out: Celery would take 6379 for a missing one, kombu 26379)."""
    hosts = []
    for part in (text.strip() for text in url.split(";")):
        try:  # a port that is not a number, a broken [IPv6] address
            found = urlsplit(part)
            scheme, host, port, database = found.scheme, found.hostname, found.port, found.path
        except ValueError:
            scheme, host, port, database = "", None, None, ""
        if scheme.lower() != SENTINEL_SCHEME or not host or not port:
            raise SettingsError(
                f"CONDUCTOR_REDIS_URL: {part!r} is not sentinel://HOST:PORT "
                "(expected e.g. 'sentinel://s1:26379;sentinel://s2:26379')"
            )
        if database.strip("/") and not database.strip("/").isdigit():
            raise SettingsError(f"CONDUCTOR_REDIS_URL: {part!r}: the database is a number")
        hosts.append((host, port))
    return hosts


def _redis_master(url: str | None, master: str | None) -> str | None:
    """CONDUCTOR_REDIS_MASTER, required with Sentinels and refused without them."""
    sentinels = url is not None and url.split("://", 1)[0].lower() == SENTINEL_SCHEME
    if sentinels and url is not None:
        sentinel_hosts(url)
        if master is None:
            raise SettingsError(
                "CONDUCTOR_REDIS_MASTER must name the Sentinels' primary (e.g. 'mymaster') "
                "when CONDUCTOR_REDIS_URL is sentinel://"
            )
    elif master is not None:
        raise SettingsError(
            f"CONDUCTOR_REDIS_MASTER={master!r} is for Sentinels: CONDUCTOR_REDIS_URL is not "
            "sentinel://HOST:PORT;sentinel://..."
        )
    return master


def _flag(value: str | None) -> bool:
    return (value or "").lower() in {"1", "true", "yes", "on"}


_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)[^@/]*@")


def display_url(url: str) -> str:
    """`url` with any password masked, for logs and banners."""
    return _PASSWORD_IN_URL.sub(r"\1***@", url)


_ALLOW_ENTRY = re.compile(r"[0-9A-Za-z.:_-]+(/\d{1,3})?")


def parse_http_allow(text: str) -> tuple[str, ...]:
    """`CONDUCTOR_HTTP_ALLOW` ("127.0.0.1,10.0.0.0/8,api.internal") as its entries."""
    entries = tuple(filter(None, (part.strip() for part in text.split(","))))
    for entry in entries:
        if not _ALLOW_ENTRY.fullmatch(entry):
            raise SettingsError(
                f"CONDUCTOR_HTTP_ALLOW: {entry!r} is neither a CIDR nor a host name "
                "(expected e.g. '127.0.0.1,10.0.0.0/8,api.internal')"
            )
    return entries


def parse_queue_routes(text: str) -> dict[str, str]:
    """`CONDUCTOR_QUEUE_ROUTES` ("http-request=io,image=cpu") as node type -> queue."""
    routes: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        node_type, sep, queue = (part.strip() for part in entry.partition("="))
        if not sep or not _QUEUE_NAME.fullmatch(node_type) or not _QUEUE_NAME.fullmatch(queue):
            raise SettingsError(
                f"CONDUCTOR_QUEUE_ROUTES: {entry!r} is not NODE_TYPE=QUEUE "
                "(expected e.g. 'http-request=io,image=cpu')"
            )
        if node_type in routes:
            raise SettingsError(f"CONDUCTOR_QUEUE_ROUTES: node type {node_type!r} is routed twice")
        routes[node_type] = queue
    return routes
