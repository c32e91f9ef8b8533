"""The egress policy of `http-request`: which addresses a node may connect to.

Refused unless allowed: loopback, link-local (cloud metadata at 169.254.169.254 too), private
and shared ranges, unspecified, multicast and reserved addresses, in IPv4 and IPv6, and IPv4
addresses written as IPv6 (::ffff:127.0.0.1). A host name is resolved here and the connection
goes to the address that was checked, so DNS cannot answer differently between the check and
the connection; every connection is checked, so every redirect is too. `CONDUCTOR_HTTP_ALLOW`
(comma-separated CIDRs and host names) opens what it names.
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from collections.abc import Iterable
from dataclasses import dataclass

import httpcore

from nodes.errors import NodeError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ALLOW_VARIABLE = "CONDUCTOR_HTTP_ALLOW"

# Refused by default, beyond what `ipaddress` calls loopback, link-local, private...
_REFUSED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4",
        "240.0.0.0/4", "::/128", "::1/128", "64:ff9b::/96", "fc00::/7", "fe80::/10", "ff00::/8",
    )
)  # fmt: skip


class EgressRefused(NodeError):
    """A connection the egress policy does not allow; a retry would be refused again."""

    retryable = False


@dataclass(frozen=True)
class EgressPolicy:
    """What `CONDUCTOR_HTTP_ALLOW` opens: networks, and host names (exact, any case)."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> EgressPolicy:
        """From CIDRs, addresses and host names; raises ValueError naming a bad entry."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if "/" in entry or not _HOST_CHARS.issuperset(entry.lower()):
                    raise ValueError(f"{entry!r} is neither a CIDR nor a host name") from None
                hosts.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def allows(self, address: IPAddress) -> bool:
        """Whether a connection to `address` is allowed."""
        checked = _unmapped(address)
        if any(checked in network or address in network for network in self.networks):
            return True
        return not _refused_by_default(checked)

    def resolve(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for `host`, in order, when every one it resolves to
        is allowed (or the host name itself is). Raises EgressRefused otherwise."""
        addresses = _resolve(host, port)
        if host.lower().rstrip(".") in self.hosts:
            return [str(address) for address in addresses]
        for address in addresses:
            if not self.allows(address):
                shown = host if host == str(address) else f"{host} ({address})"
                raise EgressRefused(
                    f"http-request may not connect to {shown}: loopback, link-local, private "
                    f"and reserved addresses are refused unless {ALLOW_VARIABLE} "
                    f"(comma-separated CIDRs and host names) allows them"
                )
        return [str(address) for address in addresses]


_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")


def _unmapped(address: IPAddress) -> IPAddress:
    """An IPv4 address written as IPv6 (::ffff:a.b.c.d, or the old ::a.b.c.d) as IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if int(address) >> 32 == 0 and int(address) > 1:
            return ipaddress.IPv4Address(int(address))
    return address


def _refused_by_default(address: IPAddress) -> bool:
    if any(address in network for network in _REFUSED if network.version == address.version):
        return True
    return not address.is_global or address.is_multicast or address.is_reserved


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (a literal address, in any form inet_aton reads,
    such as 2130706433 for 127.0.0.1, resolves to itself)."""
    try:
        found = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]
    return list(dict.fromkeys(addresses))


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's network backend, connecting only to addresses the policy allows: the
    address checked is the one connected to; TLS still names the host (SNI, certificate)."""

    def __init__(self, policy: EgressPolicy, inner: httpcore.NetworkBackend | None = None):
        self.policy = policy
        self.inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        failure: httpcore.ConnectError | None = None
        for address in self.policy.resolve(host, port):  # only the addresses checked
            try:
                return self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None  # resolving gives at least one address
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise EgressRefused(f"http-request may not connect to the unix socket {path}")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)
