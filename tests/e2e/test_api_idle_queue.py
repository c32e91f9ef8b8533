"""A node sent to a queue no worker consumes (issue 15): the submission says so, naming the
queue and its nodes, instead of leaving the execution `queued` without a word."""

from __future__ import annotations

import uuid

import httpx

from conductor.embedded import ApiProcess
from tests.e2e.test_api import blueprint, delay


def test_a_queue_no_live_worker_consumes_is_named_at_submission(api: ApiProcess) -> None:
    nobody = f"nobody-{uuid.uuid4().hex[:8]}"
    idle = blueprint([{**delay("stuck", 0), "queue": nobody}, delay("fine", 0)])
    with httpx.Client(base_url=api.url, timeout=30) as http:
        response = http.post("/v1/executions", json={"blueprint": idle})
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert accepted["status"] == "queued"
        (warning,) = [w for w in accepted["warnings"] if w["code"] == "NO_WORKER"]
        assert nobody in warning["message"] and "stuck" in warning["message"]
        assert "fine" not in warning["message"]
        # A Blueprint on the queues the session's worker consumes: no such warning.
        response = http.post("/v1/executions", json={"blueprint": blueprint([delay("a", 0)])})
        assert response.status_code == 202
        assert [w for w in response.json()["warnings"] if w["code"] == "NO_WORKER"] == []
        http.post(f"/v1/executions/{accepted['id']}/cancel")  # nothing would ever run it
