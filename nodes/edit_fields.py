"""`edit-fields`: set or create fields on the input object."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from nodes.base import Node, NodeContext, NodeParameters


class EditFieldsParameters(NodeParameters):
    """Parameters of `edit-fields`."""

    values: dict[str, Any] = Field(default_factory=dict, description="Fields to set")
    keepOnlySet: bool = Field(default=False, description="Drop the input's other fields")

    @field_validator("values", mode="before")
    @classmethod
    def _values_from_json(cls, value: Any) -> Any:
        """Atomiton also accepts `values` as a JSON object in a string."""
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"values is a string but not a JSON object: {exc}") from None
        return value


class EditFieldsNode(Node[EditFieldsParameters]):
    """Set fields from `values` (templates already rendered) over the input object."""

    type_name = "edit-fields"
    description = "Edit existing fields or create new data fields"
    parameters_model = EditFieldsParameters

    def run(self, params: EditFieldsParameters, context: NodeContext) -> Mapping[str, Any]:
        data = context.data
        base = {} if params.keepOnlySet or not isinstance(data, dict) else dict(data)
        edited = {**base, **params.values}
        return {"result": edited, "data": edited}
