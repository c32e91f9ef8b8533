"""Fixtures for unit tests: pure logic, no Redis, no worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from celery import Celery

from conductor.model.settings import Settings
from nodes.registry import NodeRegistry, default_registry
from workers.app import create_app


@pytest.fixture
def registry() -> NodeRegistry:
    """The built-in node types (and installed plugins)."""
    return default_registry()


@pytest.fixture
def celery_app(tmp_path: Path) -> Celery:
    """A configured Celery app; building canvases never connects to its Redis."""
    settings = Settings.from_env(
        {"CONDUCTOR_REDIS_URL": "redis://127.0.0.1:1/0", "CONDUCTOR_DATA_DIR": str(tmp_path)}
    )
    return create_app(settings)
