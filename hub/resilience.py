"""The one way a connector calls out: retries, the destination's gate and a rate limit.

`Guard.call(fn)` runs `fn` through, outermost first: tenacity (a few quick retries of
`DestinationUnavailable` only, with exponential backoff), then the destination's `Gate`
(`hub.outage`): while the destination is down a call is refused at once with `CircuitOpen`,
except the one probe the gate lets through. The rate limiter (`guard.limiter`, aiolimiter) is
entered by the client around each HTTP request, logins included. Each connector has its own
guard, so one failing destination never slows another; its pollers have guards of their own
(their own names, metrics and outage logs).

Every call that reaches the network is counted by outcome and timed; every failed one is
logged with the destination, the HTTP status or error class and the elapsed time.
This module must never know a protocol: `fn` does the exchange and translates its errors.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
import structlog
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from hub import metrics
from hub.config_blocks import BreakerConfig, RetryConfig
from hub.errors import DestinationUnavailable, HubError, Unavailable
from hub.outage import Claim, Gate, outcome_of

log = structlog.get_logger(__name__)

T = TypeVar("T")


class Guard:
    def __init__(
        self, name: str, retry: RetryConfig, breaker: BreakerConfig, rate_limit_per_s: float
    ) -> None:
        self.name = name
        self.retry = retry
        self.limiter = AsyncLimiter(rate_limit_per_s, 1.0)
        self.gate = Gate(
            name,
            failure_threshold=breaker.failure_threshold,
            first_probe_s=breaker.first_probe_s,
            max_probe_interval_s=breaker.recovery_s,
        )

    async def breaker_state(self) -> str:
        return self.gate.breaker_state()

    async def call(self, fn: Callable[[], Awaitable[T]], retry: bool = True) -> T:
        """`fn` through the gate, with quick retries unless `retry` is off (a call that may
        have been applied when it failed is settled by its caller, not repeated blind)."""
        if not retry:
            return await self._once(fn)
        retrying = AsyncRetrying(
            # No quick retries while the destination is down: a probe is one call.
            retry=retry_if_exception(
                lambda e: isinstance(e, DestinationUnavailable) and self.gate.outage is None
            ),
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
        claim = self.gate.claim()
        if claim is Claim.refused:
            metrics.OUTBOUND_CALLS.labels(self.name, "circuit_open").inc()
            raise self.gate.refusal()
        started = time.monotonic()
        try:
            result = await fn()
        except Unavailable as exc:
            self._count(exc, started)
            self.gate.failed(exc)
            if claim is Claim.probe:
                self.gate.probe_failed()
            raise
        except BaseException as exc:
            self._count(exc, started)
            if isinstance(exc, HubError):
                self.gate.succeeded()  # it answered (refused the item): it is not down
            elif claim is Claim.probe:
                self.gate.release()  # cancelled or a bug around the call: it tells nothing
            raise
        self._count(None, started)
        self.gate.succeeded()
        return result

    def _count(self, error: BaseException | None, started: float) -> None:
        elapsed = time.monotonic() - started
        outcome = outcome_of(error)
        metrics.OUTBOUND_CALLS.labels(self.name, outcome).inc()
        metrics.OUTBOUND_CALL_SECONDS.labels(self.name).observe(elapsed)
        if error is None or not isinstance(error, HubError):
            return
        log.warning(
            "outbound_call_failed",
            connector=self.name,
            outcome=outcome,
            http_status=getattr(error, "http_status", None),
            error_class=type(error.__cause__ or error).__name__,
            elapsed_ms=round(elapsed * 1000, 1),
            error=error.message[:300],
        )


def translate_http_error(exc: BaseException, connector: str, system: str) -> HubError:
    """Every library exception of one outbound HTTP exchange, most specific first."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return DestinationUnavailable(
            f"HTTP {exc.status} from {system}", connector=connector, http_status=exc.status
        )
    if isinstance(exc, aiohttp.ContentTypeError | json.JSONDecodeError | UnicodeDecodeError):
        return DestinationUnavailable(f"{system} replied with no JSON: {exc}", connector=connector)
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return DestinationUnavailable(
            f"{system} did not answer in time", connector=connector, cause="timeout"
        )
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        # Our trust or our certificate, not the item: an outage until the `tls` block (or the
        # destination's certificate) is corrected; nothing is parked meanwhile.
        return DestinationUnavailable(
            f"TLS with {system} failed (check its tls block: ca_file, cert_file): {exc}",
            connector=connector,
            cause="connect_error",
        )
    if isinstance(exc, aiohttp.ClientError | OSError):
        return DestinationUnavailable(
            f"cannot reach {system}: {exc!r}", connector=connector, cause="connect_error"
        )
    return DestinationUnavailable(
        f"unexpected failure talking to {system}: {exc!r}", connector=connector
    )
