"""The `conductor` command line: one module per command group, imported when it runs."""

from conductor.cli.main import main

__all__ = ["main"]
