"""How deeply a JSON value nests, measured without recursion: outputs nested deeper than
MAX_DEPTH are refused when stored, since every reader (the terminal event, the recorder, the
API, JSON parsers with a recursion limit such as pydantic's at 200) must be able to read them."""

from __future__ import annotations

from typing import Any

# A node output may nest this deep; the result and the events that carry it add a few levels.
MAX_DEPTH = 128


class TooDeeplyNested(ValueError):
    """A value nests deeper than the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the value nests deeper than {limit} levels of arrays and objects")
        self.limit = limit


def check_nesting(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise TooDeeplyNested when `value` has more than `limit` levels of lists and dicts."""
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth + 1 > limit:
            raise TooDeeplyNested(limit)
        todo.extend((child, depth + 1) for child in children)
