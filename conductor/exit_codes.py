"""The exit codes of every `conductor` command (CONTRACT section 9)."""

EXIT_OK = 0
EXIT_FAILED = 1  # the execution failed (or the command could not do what it was asked)
EXIT_INVALID = 2  # invalid input or usage (click's own code for usage errors too)
EXIT_UNREACHABLE = 3  # a service (Redis, the history store, a port) is not reachable
EXIT_INTERRUPTED = 130  # Ctrl-C
