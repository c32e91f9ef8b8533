"""JSON text parsed without letting its nesting crash the node.

`json.loads` raises RecursionError on text nested some thousands of levels deep (`[[[[...`,
from a response body or a template), which is not a ValueError: it escaped the callers'
handling as an unexpected error, was retried, and named Python's recursion limit. Here it is
a JSONDecodeError like any other text that does not parse.
"""

from __future__ import annotations

import json
from typing import Any


def parse_json(text: str | bytes) -> Any:
    """`json.loads(text)`; nesting too deep to parse raises JSONDecodeError (a ValueError)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply to parse", "", 0) from None
