"""The parameters of `file-system`, under Atomiton's names and spellings."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from nodes.base import NodeParameters, without_shadowed_aliases

Operation = Literal["read", "write", "create", "list", "delete", "copy", "move", "exists"]
Encoding = Literal["utf8", "base64", "binary", "ascii", "hex"]

# Atomiton's flows spell some parameters differently from its schema.
_ALIASES = {"filePath": "path", "createDirectory": "createDirectories"}
_ENCODING_SPELLINGS = {"utf-8": "utf8", "latin1": "binary", "latin-1": "binary"}
MAX_PATTERNS = 256  # brace alternatives one `pattern` may expand to
_BRACES = re.compile(r"\{([^{}]*,[^{}]*)\}")


class FileSystemParameters(NodeParameters):
    """Parameters of `file-system`. Atomiton's spellings are accepted too: `filePath` for
    `path`, `createDirectory` for `createDirectories`, and encoding `utf-8` for `utf8`."""

    operation: Operation = Field(default="read", description="What to do")
    path: str = Field(
        min_length=1,
        validation_alias=AliasChoices("path", "filePath"),
        description="File or folder, relative to the files root (alias: filePath)",
    )
    content: Any = Field(
        default=None,
        description="What `write` writes: a string as is, any other value as JSON; "
        "the node's input when unset",
    )
    encoding: Encoding = Field(default="utf8", description="How `read`/`write` encode content")
    createDirectories: bool = Field(
        default=False,
        validation_alias=AliasChoices("createDirectories", "createDirectory"),
        description="Create missing parent folders (alias: createDirectory)",
    )
    overwrite: bool = Field(default=False, description="Replace an existing destination")
    recursive: bool = Field(default=False, description="list, create and delete recursively")
    targetPath: str | None = Field(default=None, min_length=1, description="copy/move target")
    pattern: str | None = Field(
        default=None, description="list: glob on names, with {a,b} alternatives"
    )
    fileFilter: str | None = Field(default=None, description="list: regular expression on names")
    includeStats: bool = Field(default=False, description="list: size, modified, isDirectory")
    includeHidden: bool = Field(default=False, description="list: include names starting with .")
    fullPaths: bool = Field(
        default=False, description="list: paths from the files root, not from `path`"
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_shadowed_aliases(cls, data: Any) -> Any:
        """An input port overrides a parameter by its own name; it then wins over an alias."""
        return without_shadowed_aliases(data, _ALIASES)

    @field_validator("encoding", mode="before")
    @classmethod
    def _encoding_spelling(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _ENCODING_SPELLINGS.get(value.lower(), value.lower())
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern_expands(cls, value: str | None) -> str | None:
        if value is not None:
            expand_braces(value)
        return value

    @field_validator("fileFilter")
    @classmethod
    def _filter_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value


def expand_braces(pattern: str) -> list[str]:
    """`*.{jpg,png}` as `['*.jpg', '*.png']`; nested braces too, at most MAX_PATTERNS."""
    match = _BRACES.search(pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    expanded: list[str] = []
    for option in match.group(1).split(","):
        expanded.extend(expand_braces(head + option + tail))
        if len(expanded) > MAX_PATTERNS:
            raise ValueError(f"{pattern!r} expands to more than {MAX_PATTERNS} patterns")
    return list(dict.fromkeys(expanded))
