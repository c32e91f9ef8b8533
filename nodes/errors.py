"""What can go wrong while a node runs."""

from __future__ import annotations


class NodeError(Exception):
    """A node failed; `code` is one of the contract's error codes."""

    code = "EXECUTION_FAILED"
    retryable = True
    node_id: str | None = None  # the node it comes from, when not the one raising it

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool | None = None,
        node_id: str | None = None,
    ):
        super().__init__(message)
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable
        self.node_id = node_id


class InvalidParameters(NodeError):
    """Parameters (after templates and input overrides) fail the node's schema."""

    code = "INVALID_PARAMETERS"
    retryable = False


class NodeTimeout(NodeError):
    """The node ran past its `timeout`."""

    code = "TIMEOUT"


class NodeStopped(NodeError):
    """The node stopped because its execution was cancelled."""

    code = "CANCELLED"
    retryable = False


class ScriptError(NodeError):
    """User JavaScript threw, did not compile, or broke a sandbox limit."""

    retryable = False


class UnknownNodeType(LookupError):
    """No node type is registered under this name."""


class DuplicateNodeType(ValueError):
    """Two node types were registered under one name."""
