"""CONDUCTOR_BLOB_URL and the collector's settings; `conductor blobs gc` refuses bad usage."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conductor.cli.main import main
from conductor.failures import describe_failure
from conductor.model.settings import Settings, SettingsError
from storage.blobs import BlobUrlError, open_blob_store


def test_the_blob_store_defaults_to_the_blob_folder(tmp_path: Path) -> None:
    settings = Settings.from_env({"CONDUCTOR_DATA_DIR": str(tmp_path)})
    assert settings.blob_store_url() == f"file://{tmp_path / 'blobs'}"
    assert (settings.blob_gc_every_s, settings.blob_gc_grace_s) == (3600, 3600)


def test_a_blob_url_names_a_folder_or_a_bucket(tmp_path: Path) -> None:
    for url in ("s3://bucket/some/prefix", "s3://bucket", "file:///srv/blobs"):
        assert Settings.from_env({"CONDUCTOR_BLOB_URL": url}).blob_store_url() == url
    for bad in ("ftp://host/x", "s3://", "/srv/blobs", "file://relative"):
        with pytest.raises(SettingsError, match="CONDUCTOR_BLOB_URL"):
            Settings.from_env({"CONDUCTOR_BLOB_URL": bad})
    with pytest.raises(SettingsError, match="CONDUCTOR_BLOB_GC_GRACE_S"):
        Settings.from_env({"CONDUCTOR_BLOB_GC_GRACE_S": "-1"})


def test_blobs_gc_needs_redis(tmp_path: Path) -> None:
    env = {"CONDUCTOR_DATA_DIR": str(tmp_path), "CONDUCTOR_REDIS_URL": ""}
    outcome = CliRunner().invoke(main, ["blobs", "gc"], env=env)
    assert outcome.exit_code == 2
    assert "CONDUCTOR_REDIS_URL" in outcome.output


def test_an_s3_store_without_boto3_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if the s3 extra were not installed
    monkeypatch.delitem(sys.modules, "storage.s3_blobs", raising=False)
    with pytest.raises(BlobUrlError, match=r"pip install 'conductor\[s3\]'"):
        open_blob_store("s3://bucket/prefix")
    message, code = describe_failure(BlobUrlError("s3://b needs boto3"))
    assert code == 2 and "boto3" in message
