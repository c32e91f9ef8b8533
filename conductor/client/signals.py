"""ConductorClient's signals: a payload for an execution's wait-for-signal nodes
(docs/waits.md)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote


class SignalMethods:
    """Sending signals (ConductorClient's base)."""

    if TYPE_CHECKING:

        def _json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def signal(self, execution_id: str, name: str, payload: Any = None) -> dict[str, Any]:
        """Send signal `name` with `payload` (any JSON) to the execution's wait-for-signal
        nodes: `{execution_id, signal, woke}` (woke: the nodes that were waiting for it)."""
        path = f"/v1/executions/{quote(execution_id, safe='')}/signals/{quote(name, safe='')}"
        body = json.dumps(payload).encode()  # a null payload too: `json=None` sends no body
        found: dict[str, Any] = self._json(
            "POST", path, content=body, headers={"content-type": "application/json"}
        )
        return found
