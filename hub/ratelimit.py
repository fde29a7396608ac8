"""Request rate limits at the hub's doors: per client address and per authenticated source.

Each inbound door (the facade, the canonical API, the ministry push door, the payment
callback) holds a `DoorLimiter` built from its `DoorLimits` section. The address is checked
first, before the body is read or a credential checked, so a flood costs the hub almost
nothing; the source after authentication, so nobody can spend another system's allowance by
naming it. A request over a limit is answered 429 with `Retry-After` (each door words the
body in its own protocol) and counted in `hub_http_rate_limited_total`.

A limit is a token bucket: `burst` requests at once, refilled at `per_*_per_s`. aiolimiter,
which the outbound calls use, has one bucket per limiter, no keys and no "when may I try
again"; the `limits` library's in-memory store scans every key on each hit. Keyed buckets
with a known wait are twenty lines (decision 0046). At most `MAX_KEYS` buckets are kept, the
least recently used dropped first: a bucket idle long enough to be full is the same as a new
one, so only a flood from more addresses than that gets a fresh burst per address.

The client address is `request.remote`: the TCP peer's, or behind a proxy listed in
`http.trusted_proxies` the client it names in X-Forwarded-For (`hub.proxies`, a middleware).
This module must never read a request's body.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web

from hub import metrics
from hub.config_blocks import DoorLimits

MAX_KEYS = 10_000


class Buckets:
    """Token buckets by key: `burst` tokens at most, refilled at `rate_per_s`."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when

    def _tokens(self, key: str) -> float:
        tokens, at = self._buckets.get(key, (self.burst, self.clock()))
        return min(self.burst, tokens + (self.clock() - at) * self.rate_per_s)

    def take(self, key: str) -> float:
        """Take a token: 0 if there was one, else the seconds until there will be (none taken)."""
        tokens = self._tokens(key)
        if tokens < 1.0:
            return (1.0 - tokens) / self.rate_per_s
        self._buckets[key] = (tokens - 1.0, self.clock())
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return 0.0


class DoorLimiter:
    """One door's limits; a check returns None (go on) or the seconds to wait."""

    def __init__(self, door: str, limits: DoorLimits) -> None:
        self.door = door
        self.limits = limits
        self._addresses = (
            Buckets(limits.per_address_per_s, limits.burst) if limits.per_address_per_s else None
        )
        self._sources = (
            Buckets(limits.per_source_per_s, limits.burst) if limits.per_source_per_s else None
        )

    def address(self, request: web.Request) -> float | None:
        return self._check(self._addresses, client_address(request), "address")

    def source(self, name: str) -> float | None:
        return self._check(self._sources, name, "source")

    def _check(self, buckets: Buckets | None, key: str, by: str) -> float | None:
        if buckets is None:
            return None
        wait = buckets.take(key)
        if not wait:
            return None
        metrics.RATE_LIMITED.labels(self.door, by).inc()
        return wait


def client_address(request: web.Request) -> str:
    return request.remote or "?"


def retry_after(response: web.Response, wait_s: float) -> web.Response:
    """`response` (a 429) with `Retry-After` in whole seconds, at least one."""
    response.headers["Retry-After"] = str(max(1, math.ceil(wait_s)))
    return response
