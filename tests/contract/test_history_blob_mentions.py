"""The history tells the blob collector which blobs recorded executions still show (results,
kept node outputs, events), on every history backend; pruning an execution drops them."""

from __future__ import annotations

import json

from storage.blob_refs import mentions
from storage.events import EventType
from storage.sql_history import SqlHistoryStore
from storage.state import ExecutionStatus
from tests.contract.test_history import T0, Script

TEXT_REF = {"$blob": "sha256:" + "a" * 64, "bytes": 300000, "kind": "text"}
DOCUMENT_REF = {"$blob": "sha256:" + "b" * 64, "bytes": 500000}
KEPT_REF = {"$blob": "sha256:" + "c" * 64, "bytes": 400000, "kind": "text"}


def _with_result(result: object, start: float) -> Script:
    script = Script(start=start).queued()
    script.add(EventType.EXECUTION_STARTED)
    script.add(
        EventType.EXECUTION_SUCCEEDED,
        status=ExecutionStatus.SUCCEEDED.value,
        error=None,
        duration_ms=10,
        result=result,
    )
    return script


def test_results_that_mention_blobs_are_found_until_pruned(store: SqlHistoryStore) -> None:
    old = _with_result({"data": {"read": {"content": TEXT_REF}}}, T0)
    recent = _with_result(DOCUMENT_REF, T0 + 1000)
    plain = _with_result({"data": {"n": "small"}}, T0 + 1000)
    for script in (old, recent, plain):
        store.record(script.events)
    kept = {"between": '{"result":' + json.dumps(KEPT_REF, separators=(",", ":")) + "}"}
    store.keep_for_replay({}, {plain.execution_id: kept})  # a node in between, kept
    found: dict[str, bool] = {}
    for text in store.blob_mentions():
        found |= mentions(text)
    assert found == {
        TEXT_REF["$blob"]: False,
        DOCUMENT_REF["$blob"]: True,
        KEPT_REF["$blob"]: False,
    }
    store.prune(older_than_s=500, now=T0 + 1010)  # the old execution only
    remaining: dict[str, bool] = {}
    for text in store.blob_mentions():
        remaining |= mentions(text)
    assert remaining == {DOCUMENT_REF["$blob"]: True, KEPT_REF["$blob"]: False}
