"""The Python client of the HTTP API: submit Blueprints, follow and control executions."""

from conductor.api.models import ExecutionAccepted as Submitted
from conductor.api.models import ExecutionPage, ValidationReport
from conductor.api.models import ExecutionView as Execution
from conductor.client.bodies import BlueprintSource
from conductor.client.conductor_client import ConductorClient
from conductor.client.errors import (
    AuthError,
    ConductorError,
    ConflictError,
    ExecutionFailed,
    InvalidBlueprintError,
    InvalidRequestError,
    NotFoundError,
    UnavailableError,
    WaitTimeout,
)
from conductor.client.results import Result, ResultError
from storage.blueprints import BlueprintPage, StoredBlueprint

__all__ = [
    "AuthError",
    "BlueprintPage",
    "BlueprintSource",
    "ConductorClient",
    "ConductorError",
    "ConflictError",
    "Execution",
    "ExecutionFailed",
    "ExecutionPage",
    "InvalidBlueprintError",
    "InvalidRequestError",
    "NotFoundError",
    "Result",
    "ResultError",
    "StoredBlueprint",
    "Submitted",
    "UnavailableError",
    "ValidationReport",
    "WaitTimeout",
]
