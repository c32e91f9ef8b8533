"""Two node types: `text-slug` and `word-stats`."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from nodes.base import Node, NodeContext, NodeParameters
from nodes.errors import NodeError


class SlugParameters(NodeParameters):
    """Parameters of `text-slug`; `text` defaults to the node's input."""

    text: str | None = Field(default=None, description="Text to slugify (default: the input)")
    separator: str = Field(default="-", min_length=1, max_length=3)
    maxLength: int = Field(default=80, ge=1, le=1000)


class SlugNode(Node[SlugParameters]):
    """Turn text into a URL slug: `Hello, Wörld!` -> `hello-world`."""

    type_name = "text-slug"
    version = "0.1.0"
    description = "Turn text into a URL slug"
    parameters_model = SlugParameters

    def run(self, params: SlugParameters, context: NodeContext) -> Mapping[str, Any]:
        text = params.text if params.text is not None else context.data
        if not isinstance(text, str):
            raise NodeError(f"text-slug needs text, got {type(text).__name__}", retryable=False)
        ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        words = re.findall(r"[a-z0-9]+", ascii_text.lower())
        slug = params.separator.join(words)[: params.maxLength].strip(params.separator)
        return {"result": slug, "slug": slug, "length": len(slug)}


class WordStatsParameters(NodeParameters):
    """Parameters of `word-stats`."""

    top: int = Field(default=3, ge=1, le=100, description="How many frequent words to list")


class WordStatsNode(Node[WordStatsParameters]):
    """Count words, and list the most frequent ones."""

    type_name = "word-stats"
    version = "0.1.0"
    description = "Count words and list the most frequent"
    parameters_model = WordStatsParameters

    def run(self, params: WordStatsParameters, context: NodeContext) -> Mapping[str, Any]:
        text = context.data if isinstance(context.data, str) else str(context.data)
        words = re.findall(r"\w+", text.lower())
        common = [{"word": w, "count": n} for w, n in Counter(words).most_common(params.top)]
        return {"result": {"words": len(words), "top": common}, "words": len(words), "top": common}
