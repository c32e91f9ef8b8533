"""Paging cursors, shared by the stores that list things."""

from __future__ import annotations


class InvalidCursor(ValueError):
    """A listing cursor this store did not hand out."""
