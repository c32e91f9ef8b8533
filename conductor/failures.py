"""What a command line user is told when the environment fails: one line that says what
happened and what to do, and the exit code for it (never a traceback)."""

from __future__ import annotations

import errno
import os

from conductor.exit_codes import EXIT_FAILED, EXIT_INVALID, EXIT_UNREACHABLE


def describe_failure(exc: BaseException) -> tuple[str, int]:
    """The message and exit code for an exception no command handled itself."""
    for check in (_redis, _history, _embedded, _port, _os, _invalid):
        found = check(exc)
        if found is not None:
            return found
    return (
        f"internal error ({type(exc).__name__}: {exc}); run again with CONDUCTOR_DEBUG=1 for "
        "the traceback and report it",
        EXIT_FAILED,
    )


def _redis(exc: BaseException) -> tuple[str, int] | None:
    import kombu.exceptions  # noqa: PLC0415  (only on this path: the CLI starts fast)

    from conductor.dispatch import DispatchFailed  # noqa: PLC0415
    from conductor.model.settings import display_url  # noqa: PLC0415
    from storage.redis_client import TRANSPORT_ERRORS  # noqa: PLC0415

    if not isinstance(exc, (*TRANSPORT_ERRORS, kombu.exceptions.OperationalError, DispatchFailed)):
        return None
    url = os.environ.get("CONDUCTOR_REDIS_URL") or "the embedded Redis"
    return (
        f"cannot reach Redis at {display_url(url)} ({exc}): start it, or point "
        "CONDUCTOR_REDIS_URL at a running one (unset, `conductor run` starts its own)",
        EXIT_UNREACHABLE,
    )


def _history(exc: BaseException) -> tuple[str, int] | None:
    import sqlalchemy.exc  # noqa: PLC0415

    from conductor.model.settings import display_url  # noqa: PLC0415

    if not isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        return None
    url = os.environ.get("CONDUCTOR_HISTORY_URL") or "the default SQLite file"
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return (
        f"cannot reach the history store at {display_url(url)} ({reason}): start it, or fix "
        "CONDUCTOR_HISTORY_URL",
        EXIT_UNREACHABLE,
    )


def _embedded(exc: BaseException) -> tuple[str, int] | None:
    from conductor.embedded import EmbeddedError  # noqa: PLC0415

    if isinstance(exc, EmbeddedError):
        return f"the embedded stack did not start: {exc}", EXIT_UNREACHABLE
    return None


def _port(exc: BaseException) -> tuple[str, int] | None:
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"{exc.strerror}: choose another port with --port", EXIT_UNREACHABLE
    return None


def _os(exc: BaseException) -> tuple[str, int] | None:
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}", EXIT_UNREACHABLE
    return None


def _invalid(exc: BaseException) -> tuple[str, int] | None:
    from conductor.model.settings import SettingsError  # noqa: PLC0415
    from storage.blobs import BlobUrlError  # noqa: PLC0415

    # a setting that does not parse, such as a queue route, or an s3:// store without boto3
    if isinstance(exc, SettingsError | BlobUrlError):
        return f"{exc}", EXIT_INVALID
    return None
