"""Celery settings: reliable by default, unsafe combinations refused at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from conductor.model.settings import Settings, SettingsError, display_url
from workers.config import UnsafeSettings, broker_url, celery_config


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env(
        {"CONDUCTOR_REDIS_URL": "redis://127.0.0.1:1/0", "CONDUCTOR_DATA_DIR": str(tmp_path), **env}
    )


def test_reliable_defaults(tmp_path: Path) -> None:
    config = celery_config(settings(tmp_path))
    assert config["accept_content"] == ["json"]
    assert config["task_serializer"] == config["result_serializer"] == "json"
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1
    assert config["worker_send_task_events"] is True
    visibility = config["broker_transport_options"]["visibility_timeout"]
    assert visibility > settings(tmp_path).max_time_limit_s()


def test_a_visibility_timeout_within_a_time_limit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeSettings, match="CONDUCTOR_VISIBILITY_TIMEOUT_S=600"):
        celery_config(settings(tmp_path, CONDUCTOR_VISIBILITY_TIMEOUT_S="600"))


def test_no_redis_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeSettings, match="CONDUCTOR_REDIS_URL"):
        celery_config(Settings.from_env({"CONDUCTOR_DATA_DIR": str(tmp_path)}))


def test_unix_socket_urls_are_spelled_for_kombu() -> None:
    assert broker_url("unix:///run/redis.sock") == "redis+socket:///run/redis.sock"
    assert broker_url("rediss://h:6380/0") == "rediss://h:6380/0"


def test_settings_default_into_the_data_dir(tmp_path: Path) -> None:
    loaded = settings(tmp_path)
    assert loaded.blob_dir == tmp_path / "blobs"
    assert loaded.files_root == tmp_path / "files"
    assert loaded.history_url == f"sqlite:///{tmp_path / 'history.sqlite3'}"
    assert loaded.allow_shell is False


def test_passwords_in_urls_are_masked_for_display() -> None:
    assert display_url("postgresql://conductor:s3cret@postgres:5432/db") == (
        "postgresql://conductor:***@postgres:5432/db"
    )
    assert display_url("redis://:s3cret@redis:6379/0") == "redis://:***@redis:6379/0"
    assert display_url("sqlite:////data/history.sqlite3") == "sqlite:////data/history.sqlite3"


def test_worker_max_memory_is_celerys_per_child_limit_in_kib(tmp_path: Path) -> None:
    assert celery_config(settings(tmp_path))["worker_max_memory_per_child"] is None
    limited = settings(tmp_path, CONDUCTOR_WORKER_MAX_MEMORY_MB="300")
    assert celery_config(limited)["worker_max_memory_per_child"] == 300 * 1024
    with pytest.raises(SettingsError, match="CONDUCTOR_WORKER_MAX_MEMORY_MB='lots'"):
        settings(tmp_path, CONDUCTOR_WORKER_MAX_MEMORY_MB="lots")
