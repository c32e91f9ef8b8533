"""Checking a TCP port before serving on it, naming what holds it when it is taken."""

from __future__ import annotations

import errno
import socket

import click
import psutil

from conductor.exit_codes import EXIT_UNREACHABLE


class PortTaken(click.ClickException):
    """A port to serve on is in use (exit 3, like any environment problem)."""

    exit_code = EXIT_UNREACHABLE


def ensure_port_free(host: str, port: int, *, what: str = "", hint: str = "--port") -> None:
    """Raise PortTaken, naming the process that listens on it where it can be told."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            label = f" ({what})" if what else ""
            if exc.errno != errno.EADDRINUSE:  # no such host or address here
                raise click.BadParameter(
                    f"cannot listen on {host}: {exc.strerror}", param_hint="--host"
                ) from None
            raise PortTaken(
                f"port {port}{label} on {host} is taken{_holder(port)} ({exc.strerror}): stop "
                f"that, or choose another port with {hint}"
            ) from None


def _holder(port: int) -> str:
    """` by pid N (command line)`, or nothing when the system does not tell."""
    try:
        listening = [
            conn.pid
            for conn in psutil.net_connections(kind="tcp")
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port
        ]
        pid = next((pid for pid in listening if pid), None)
        if pid is None:
            return ""
        command = " ".join(psutil.Process(pid).cmdline()) or psutil.Process(pid).name()
    except (psutil.Error, OSError):
        return ""
    return f" by pid {pid} ({command[:120]})"
