"""The client's address behind reverse proxies the operator trusts (`http.trusted_proxies`).

Behind nginx or a load balancer every request's TCP peer is the proxy, so the per-address rate
limits, the dashboard's login lock-outs and the logs would see one client. A proxy appends the
address it received the request from to `X-Forwarded-For`; only a request whose TCP peer is a
trusted proxy has its header read, right to left: each address that is itself a trusted proxy
is a hop, the first that is not is the client. What a client writes at the left of the header
is never reached while a trusted proxy appended the real address at its right, so a client
cannot choose its own address; a request straight from an untrusted peer keeps that peer, the
header ignored. An entry that is not an address stops the walk at the hop that passed it on.

aiohttp-remotes has this as middleware, but its `XForwardedFiltered` reads the header whoever
sent it (a direct client picks its own address) and `XForwardedStrict` wants a fixed number of
hops and refuses direct requests, which the national portal's and ministries' calls are.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

Network = IPv4Network | IPv6Network


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        found = ip_address(address)
    except ValueError:
        return False
    return any(found in net for net in proxies)


def client_address(peer: str | None, forwarded: Sequence[str], proxies: Sequence[Network]) -> str:
    """The client's address: `peer` unless it is a trusted proxy, then the rightmost address
    of the `X-Forwarded-For` values (in the order received) that is not one."""
    if peer is None or not proxies or not _trusted(peer, proxies):
        return peer or "?"
    hops = [part.strip() for value in forwarded for part in value.split(",")]
    client = peer
    for hop in reversed(hops):
        try:
            address = str(ip_address(hop))
        except ValueError:
            return client  # not an address: the hop that passed it on is what is known
        client = address
        if not _trusted(address, proxies):
            return client
    return client


def forwarded_for(proxies: Sequence[Network]) -> Middleware:
    """Middleware: `request.remote` is the client's address (`client_address`)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.remote
        client = client_address(peer, request.headers.getall(hdrs.X_FORWARDED_FOR, []), proxies)
        if client != peer:
            request = request.clone(remote=client)
        return await handler(request)

    return middleware
