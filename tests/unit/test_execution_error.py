"""conductor/model/errors.py: the error object is built typed, and refuses unknown codes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from conductor.model.errors import ExecutionError, error_data
from conductor.model.problems import ErrorCode


def test_the_error_object_has_the_contract_keys() -> None:
    assert error_data(ErrorCode.TIMEOUT, "too slow", "fetch") == {
        "code": "TIMEOUT",
        "message": "too slow",
        "nodeId": "fetch",
    }


def test_an_unknown_code_or_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="code"):
        ExecutionError.model_validate({"code": "OOPS", "message": "m"})
    with pytest.raises(ValidationError, match="extra"):
        ExecutionError.model_validate({"code": "TIMEOUT", "message": "m", "detail": "d"})
