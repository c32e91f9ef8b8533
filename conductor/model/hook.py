"""A webhook trigger: a stored Blueprint, how a request's body, headers and query become its
inputs, and where the HMAC secret comes from."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

HOOK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
SOURCES = ("body", "headers", "query")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Hook(BaseModel):
    """What `conductor hook add` stores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=HOOK_NAME)
    blueprint_id: str = Field(min_length=1)
    # input name -> where its value is: body, body.a.b.0, headers.x-event, query.ref
    mapping: dict[str, str] = Field(default_factory=dict)
    secret_env: str | None = None  # the API reads the secret from this variable
    secret: str | None = Field(default=None, repr=False)  # or it is stored with the hook

    @field_validator("mapping")
    @classmethod
    def _paths(cls, mapping: dict[str, str]) -> dict[str, str]:
        for name, path in mapping.items():
            if not name:
                raise ValueError("an input name is empty")
            if path.split(".", 1)[0] not in SOURCES:
                raise ValueError(
                    f"{name}={path}: a value comes from body, headers.NAME or query.NAME "
                    "(e.g. body.repository.full_name)"
                )
            if path.startswith(("headers", "query")) and "." not in path:
                raise ValueError(f"{name}={path}: name the header or query parameter")
        return mapping

    @field_validator("secret_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _one_secret(self) -> Hook:
        if (self.secret_env is None) == (self.secret is None):
            raise ValueError("give exactly one of secret_env and secret")
        if self.secret is not None and not self.secret:
            raise ValueError("the secret is empty")
        return self

    def public(self) -> dict[str, Any]:
        """The hook as listings show it: where the secret comes from, never the secret."""
        source = f"env:{self.secret_env}" if self.secret_env else "stored"
        return {**self.model_dump(exclude={"secret", "secret_env"}), "secret": source}


def pick(source: Any, path: list[str]) -> Any:
    """The value at `path` (keys, or list indexes) inside `source`; None when absent."""
    for part in path:
        if isinstance(source, dict):
            source = source.get(part)
        elif isinstance(source, list) and part.isdigit() and int(part) < len(source):
            source = source[int(part)]
        else:
            return None
    return source
