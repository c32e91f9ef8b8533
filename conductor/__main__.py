"""`python -m conductor` is the `conductor` command."""

from conductor.cli import main

main()
