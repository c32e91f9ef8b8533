"""The egress policy of `http-request` (issue 15, item 5): loopback, link-local, private and
reserved addresses refused by default, after resolution and on every redirect, opened by
CONDUCTOR_HTTP_ALLOW; the connection goes to the address that was checked."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

import httpcore
import pytest

from conductor.model.settings import Settings, SettingsError
from nodes.base import NodeEnvironment
from nodes.egress import EgressPolicy, EgressRefused, GuardedBackend
from tests.unit.test_node_http_request import LocalServer, failure, request, serving

REFUSED = [
    "127.0.0.1", "127.1.2.3", "0.0.0.0", "10.1.2.3", "172.16.0.1", "172.31.255.255",
    "192.168.1.1", "100.64.0.1", "169.254.169.254", "224.0.0.1", "240.0.0.1",
    "255.255.255.255", "::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "2002:7f00:1::1",
    "64:ff9b::7f00:1",
]  # fmt: skip
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2001:4860:4860::8888"]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with serving() as running:
        yield running


@pytest.mark.parametrize("address", REFUSED)
def test_internal_addresses_are_refused_by_default(address: str) -> None:
    assert not EgressPolicy().allows(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert EgressPolicy().allows(ipaddress.ip_address(address))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433", "0x7f.1", "127.1"])
def test_every_spelling_of_loopback_is_refused_after_resolution(host: str) -> None:
    with pytest.raises(EgressRefused) as caught:
        EgressPolicy().resolve(host, 80)
    assert "127.0.0.1" in str(caught.value) and "CONDUCTOR_HTTP_ALLOW" in str(caught.value)


def test_the_allow_list_opens_networks_and_host_names() -> None:
    policy = EgressPolicy.parse(["10.0.0.0/8", " fd00::/8", "LocalHost", ""])
    assert policy.allows(ipaddress.ip_address("10.9.8.7"))
    assert policy.allows(ipaddress.ip_address("::ffff:10.9.8.7"))
    assert policy.allows(ipaddress.ip_address("fd00::5"))
    assert not policy.allows(ipaddress.ip_address("192.168.0.1"))
    assert policy.resolve("localhost", 80) == ["127.0.0.1"]  # the host name is allowed
    with pytest.raises(EgressRefused):
        policy.resolve("127.0.0.1", 80)  # its address is not


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "a b", "http://x/"])
def test_a_bad_allow_entry_is_refused_naming_it(entry: str) -> None:
    with pytest.raises(ValueError, match="neither a CIDR nor a host name"):
        EgressPolicy.parse([entry])


def test_settings_read_conductor_http_allow() -> None:
    env = {"CONDUCTOR_DATA_DIR": "/tmp/x", "CONDUCTOR_HTTP_ALLOW": "127.0.0.1, api.internal"}
    assert Settings.from_env(env).http_allow == ("127.0.0.1", "api.internal")
    with pytest.raises(SettingsError, match="CONDUCTOR_HTTP_ALLOW: 'a b'"):
        Settings.from_env({**env, "CONDUCTOR_HTTP_ALLOW": "a b"})


class _Recorder(httpcore.NetworkBackend):
    """Records where it is asked to connect, connecting nowhere."""

    def __init__(self) -> None:
        self.hosts: list[str] = []

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        self.hosts.append(host)
        raise httpcore.ConnectError("not here")


def test_the_connection_goes_to_the_address_checked_not_the_name() -> None:
    inner = _Recorder()
    backend = GuardedBackend(EgressPolicy.parse(["127.0.0.0/8"]), inner)
    with pytest.raises(httpcore.ConnectError):
        backend.connect_tcp("localhost", 80)
    assert inner.hosts == ["127.0.0.1"]  # resolved once, here: no second lookup to rebind


def test_the_node_refuses_loopback_by_default(server: LocalServer) -> None:
    error = failure(server.url("echo"), environment=NodeEnvironment())
    assert isinstance(error, EgressRefused) and not error.retryable
    assert "127.0.0.1" in str(error) and "CONDUCTOR_HTTP_ALLOW" in str(error)


def test_a_redirect_to_a_refused_address_is_refused(server: LocalServer) -> None:
    error = failure(server.url("away/127.0.0.2:9"), maxRetries=0)
    assert isinstance(error, EgressRefused)
    assert "127.0.0.2" in str(error)


def test_an_allowed_address_is_reached(server: LocalServer) -> None:
    assert request(server.url("echo"))["status"] == 200


def test_proxy_variables_are_not_used(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy would connect for the node, out of the policy's sight: requests go direct."""
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert request(server.url("echo"), maxRetries=0)["status"] == 200
