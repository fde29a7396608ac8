"""The one way a connector calls out: retries, a circuit breaker and a rate limit.

`Guard.call(fn)` runs `fn` through, outermost first: tenacity (a few quick retries of
`DestinationUnavailable` only, with exponential backoff), the connector's circuit breaker
(purgatory; an open circuit raises `CircuitOpen` at once, which the consumer wrapper turns
into a delayed retry through the broker). The rate limiter (`guard.limiter`, aiolimiter) is
entered by the client around each HTTP request, logins included. Each connector has its own
guard, so one failing destination never slows another.

This module must never know a protocol: `fn` does the exchange and translates its errors.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
from aiolimiter import AsyncLimiter
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from hub import metrics
from hub.config_blocks import BreakerConfig, RetryConfig
from hub.errors import CircuitOpen, DestinationUnavailable, HubError, PermanentError

T = TypeVar("T")


class Guard:
    def __init__(
        self, name: str, retry: RetryConfig, breaker: BreakerConfig, rate_limit_per_s: float
    ) -> None:
        self.name = name
        self.retry = retry
        self.limiter = AsyncLimiter(rate_limit_per_s, 1.0)
        self.breakers = AsyncCircuitBreakerFactory(
            default_threshold=breaker.failure_threshold,
            default_ttl=breaker.recovery_s,
            exclude=[PermanentError],
        )

    async def breaker_state(self) -> str:
        breaker = await self.breakers.get_breaker(self.name)
        return str(breaker.context.state)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(DestinationUnavailable),
            stop=stop_after_attempt(self.retry.attempts),
            wait=wait_exponential(
                multiplier=self.retry.initial_backoff_s, max=self.retry.max_backoff_s
            ),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._once(fn)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _once(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            breaker = await self.breakers.get_breaker(self.name)
            async with breaker:
                metrics.CIRCUIT_OPEN.labels(self.name).set(0)
                return await fn()
        except OpenedState:
            metrics.CIRCUIT_OPEN.labels(self.name).set(1)
            raise CircuitOpen(f"{self.name} circuit is open", connector=self.name) from None


def translate_http_error(exc: BaseException, connector: str, system: str) -> HubError:
    """Every library exception of one outbound HTTP exchange, most specific first."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return DestinationUnavailable(
            f"HTTP {exc.status} from {system}", connector=connector, http_status=exc.status
        )
    if isinstance(exc, aiohttp.ContentTypeError | json.JSONDecodeError | UnicodeDecodeError):
        return DestinationUnavailable(f"{system} replied with no JSON: {exc}", connector=connector)
    if isinstance(exc, TimeoutError):
        return DestinationUnavailable(f"{system} did not answer in time", connector=connector)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return DestinationUnavailable(f"cannot reach {system}: {exc!r}", connector=connector)
    return DestinationUnavailable(
        f"unexpected failure talking to {system}: {exc!r}", connector=connector
    )
