"""Redis behind Sentinels: CONDUCTOR_REDIS_URL in Celery's `sentinel://` form plus
CONDUCTOR_REDIS_MASTER, read once and handed to kombu, Celery's result backend and every client."""

from __future__ import annotations

from pathlib import Path

import pytest

from conductor.model.settings import Settings, SettingsError, display_url
from storage.redis_backend import RedisBackend
from storage.redis_client import SentinelPool, redis_client
from workers.app import create_app
from workers.config import FAILOVER_PUBLISH_RETRY, UnsafeSettings, celery_config
from workers.result_backend import UnwatchedSentinelBackend

SENTINELS = (
    "sentinel://:s3cret@10.0.0.1:26379/2;sentinel://10.0.0.2:26379;sentinel://10.0.0.3:26380"
)


def settings(tmp_path: Path, **env: str) -> Settings:
    base = {"CONDUCTOR_DATA_DIR": str(tmp_path), "CONDUCTOR_REDIS_URL": SENTINELS}
    return Settings.from_env({**base, **env})


def test_the_master_name_goes_where_celery_and_kombu_expect_it(tmp_path: Path) -> None:
    config = celery_config(settings(tmp_path, CONDUCTOR_REDIS_MASTER="mymaster"))
    assert config["broker_url"] == SENTINELS
    assert config["result_backend"].endswith(f"UnwatchedSentinelBackend+{SENTINELS}")
    for options in ("broker_transport_options", "result_backend_transport_options"):
        assert config[options]["master_name"] == "mymaster"
    assert config["task_publish_retry_policy"] == FAILOVER_PUBLISH_RETRY
    plain = celery_config(Settings.from_env({"CONDUCTOR_DATA_DIR": str(tmp_path),
                                             "CONDUCTOR_REDIS_URL": "redis://h:6379/0"}))  # fmt: skip
    assert "master_name" not in plain["broker_transport_options"]
    assert "task_publish_retry_policy" not in plain


def test_celery_refuses_sentinels_without_a_master(tmp_path: Path) -> None:
    plain = Settings.from_env({"CONDUCTOR_DATA_DIR": str(tmp_path)})
    with pytest.raises(UnsafeSettings, match="CONDUCTOR_REDIS_MASTER"):
        celery_config(plain.with_redis(SENTINELS))
    assert celery_config(plain.with_redis(SENTINELS, "m"))["broker_url"] == SENTINELS


def test_the_result_backend_finds_the_primary_through_the_sentinels(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, CONDUCTOR_REDIS_MASTER="mymaster"))
    try:
        backend = app.backend
        assert isinstance(backend, UnwatchedSentinelBackend)
        assert backend.add_pending_result("result") == "result"  # never subscribes
        assert backend.remove_pending_result("result") == "result"
        hosts = [(host["host"], host["port"]) for host in vars(backend)["connparams"]["hosts"]]
        assert hosts == [("10.0.0.1", 26379), ("10.0.0.2", 26379), ("10.0.0.3", 26380)]
    finally:
        app.close()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "CONDUCTOR_REDIS_MASTER must name"),
        ({"CONDUCTOR_REDIS_URL": "redis://h:6379/0", "CONDUCTOR_REDIS_MASTER": "m"}, "is for"),
        ({"CONDUCTOR_REDIS_URL": "sentinel://h:1;redis://h:2", "CONDUCTOR_REDIS_MASTER": "m"},
         "'redis://h:2' is not sentinel://HOST"),
        ({"CONDUCTOR_REDIS_URL": "sentinel://h:port", "CONDUCTOR_REDIS_MASTER": "m"},
         "'sentinel://h:port' is not"),
        ({"CONDUCTOR_REDIS_URL": "sentinel://", "CONDUCTOR_REDIS_MASTER": "m"}, "is not"),
        ({"CONDUCTOR_REDIS_URL": "sentinel://h", "CONDUCTOR_REDIS_MASTER": "m"}, "HOST:PORT"),
        ({"CONDUCTOR_REDIS_URL": "sentinel://[::1:5", "CONDUCTOR_REDIS_MASTER": "m"}, "is not"),
        ({"CONDUCTOR_REDIS_URL": "sentinel://h:1/x", "CONDUCTOR_REDIS_MASTER": "m"},
         "the database is a number"),
    ],
)  # fmt: skip
def test_a_sentinel_url_needs_its_master_and_nothing_else_takes_one(
    tmp_path: Path, env: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=named):
        settings(tmp_path, **env)


def test_a_client_asks_the_sentinels_with_the_first_urls_credentials() -> None:
    client = redis_client(SENTINELS, master="mymaster", max_connections=3, name="probe")
    try:
        pool = client.connection_pool
        assert isinstance(pool, SentinelPool)
        assert pool.service_name == "mymaster" and pool.max_connections == 3
        kwargs = pool.connection_kwargs
        assert (kwargs["password"], kwargs["db"], kwargs["client_name"]) == ("s3cret", 2, "probe")
        assert kwargs["retry"].get_retries() > 2  # rides out a failover
        sentinels = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]
        assert [(s["host"], s["port"]) for s in sentinels] == [
            ("10.0.0.1", 26379), ("10.0.0.2", 26379), ("10.0.0.3", 26380),
        ]  # fmt: skip
    finally:
        client.close()
    with pytest.raises(SettingsError, match="CONDUCTOR_REDIS_MASTER"):
        redis_client(SENTINELS)


def test_every_password_is_masked_for_display() -> None:
    shown = display_url("sentinel://:a@h1:26379;sentinel://:b@h2:26379")
    assert "a@" not in shown and "b@" not in shown and shown.count("***") == 2


def test_behind_sentinels_creations_and_the_recorder_wait_for_a_replica() -> None:
    backend = RedisBackend.connect(SENTINELS, master="mymaster")
    plain = RedisBackend.connect("redis://127.0.0.1:1/0")
    try:
        assert backend.recorder_stream().replicas == 1
        assert backend.state_store(ttl_s=60, lease_ms=1000).scripts.replicas == 1
        assert plain.recorder_stream().replicas == 0
        assert plain.state_store(ttl_s=60, lease_ms=1000).scripts.replicas == 0
    finally:
        backend.close()
        plain.close()
