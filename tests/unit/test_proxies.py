"""Whose address a request counts as (`hub.proxies.client_address`): the TCP peer, unless it
is a trusted proxy, then the rightmost address in X-Forwarded-For that is not one."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from hub.proxies import client_address

PROXIES = [ip_network("10.0.0.0/24"), ip_network("fd00::/64")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # No trusted proxy in the way: the peer, whatever the header says.
        ("203.0.113.5", [], "203.0.113.5"),
        ("203.0.113.5", ["198.51.100.7"], "203.0.113.5"),
        # One proxy: the address it appended.
        ("10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
        # A client's own header is at the left; the proxy appended the real address.
        ("10.0.0.2", ["1.2.3.4, 198.51.100.7"], "198.51.100.7"),
        # Two trusted hops: past both.
        ("10.0.0.2", ["198.51.100.7, 10.0.0.9"], "198.51.100.7"),
        # Two headers are one list, in order.
        ("10.0.0.2", ["1.2.3.4", "198.51.100.7, 10.0.0.9"], "198.51.100.7"),
        # Only trusted addresses: the leftmost known one.
        ("10.0.0.2", ["10.0.0.7, 10.0.0.9"], "10.0.0.7"),
        # A trusted proxy that sent no header: the proxy itself.
        ("10.0.0.2", [], "10.0.0.2"),
        # Not an address: the hop that passed it on.
        ("10.0.0.2", ["garbage"], "10.0.0.2"),
        ("10.0.0.2", ["198.51.100.7, bad, 10.0.0.9"], "10.0.0.9"),
        ("10.0.0.2", ["198.51.100.7,, 10.0.0.9"], "10.0.0.9"),
        # IPv6, written as proxies write it, in canonical form after.
        ("fd00::1", ["2001:db8::0:1"], "2001:db8::1"),
        # No peer known (a Unix socket): "?".
        (None, ["198.51.100.7"], "?"),
    ],
)
def test_the_client_is_the_first_untrusted_address_from_the_right(
    peer: str | None, forwarded: list[str], client: str
) -> None:
    assert client_address(peer, forwarded, PROXIES) == client


def test_without_trusted_proxies_the_header_is_never_read() -> None:
    assert client_address("10.0.0.2", ["198.51.100.7"], []) == "10.0.0.2"
