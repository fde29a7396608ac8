"""Time limits on the hub's HTTP connections, so slow or idle clients cannot hold them open.

Three limits, all in `http.*` (`docs/how-to/production.md#limits`):

* **Request head** (`header_timeout_s`): the request line and headers must arrive whole within
  this long of the connection opening, or of the first byte of the next request on a kept-alive
  connection. Past it the hub answers 408 (if the client sent anything) and closes.
* **Request body** (`body_timeout_s`, `body_min_bytes_per_s`): the body must arrive within
  `body_timeout_s`, plus one second for every `body_min_bytes_per_s` bytes received so far
  (Apache's mod_reqtimeout rule: a large upload at a decent pace always finishes, a body
  trickled byte by byte is cut). Past it the request's handler is cancelled, the hub answers
  408 and closes the connection.
* **Idle keep-alive** (`keepalive_timeout_s`): aiohttp's own time-out, from the end of one
  response to the first byte of the next request.

aiohttp has the third but not the first two. The head limit needs the connection itself (no
request exists yet), so it lives in a `RequestHandler` subclass built by `LimitedRunner`; the
body limit needs the request, so it is a middleware (`body_deadline`) that watches the
request's stream with one timer, re-armed only when it fires. Decision 0045 says why.

This module must never read a body or decide anything about a request's content.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestHandler

from hub import metrics
from hub.httputil import error_response

log = structlog.get_logger(__name__)

_HEAD_LATE = b"the request head did not arrive in time\n"
REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_HEAD_LATE), _HEAD_LATE)
)


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float
    body_timeout_s: float
    body_min_bytes_per_s: int
    keepalive_timeout_s: float


class HeadTimedHandler(RequestHandler):
    """aiohttp's connection protocol, with a deadline on each request head.

    The timer starts when the connection opens, and again at the first byte that arrives
    while the connection waits for its next request; it is cancelled as soon as the parser has
    a whole head (aiohttp counts those in `_request_count`). When it fires with no new head,
    the connection is closed. Body bytes never start it: while a request is being handled the
    protocol is not waiting for a head (`_waiter` is unset)."""

    def __init__(self, *args: object, header_timeout_s: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._head_timeout_s = header_timeout_s
        self._head_timer: asyncio.TimerHandle | None = None
        self._heads_at_arming = 0
        self._head_started = False  # bytes of the awaited head arrived

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_head_timer(started=False)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self._awaiting_head():
            self._arm_head_timer(started=True)
        elif self._head_timer is not None and data:
            self._head_started = True
        super().data_received(data)
        if self._head_timer is not None and self._request_count > self._heads_at_arming:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _awaiting_head(self) -> bool:
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def _arm_head_timer(self, started: bool) -> None:
        self._heads_at_arming = self._request_count
        self._head_started = started
        self._head_timer = self._loop.call_later(self._head_timeout_s, self._head_overdue)

    def _head_overdue(self) -> None:
        self._head_timer = None
        if self._request_count > self._heads_at_arming or self.transport is None:
            return
        metrics.SLOW_CLIENTS.labels("head").inc()
        peer = self.transport.get_extra_info("peername")
        log.warning("http_head_too_slow", client=str(peer[0]) if peer else "?")
        if self._head_started:
            with contextlib.suppress(Exception):
                self.transport.write(REQUEST_TIMEOUT)
        self.force_close()


class LimitedServer(web.Server):
    """`web.Server` building `HeadTimedHandler`s (aiohttp's `Server.__call__` builds its own
    class, with no hook for another)."""

    def __init__(self, *args: object, header_timeout_s: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.header_timeout_s = header_timeout_s

    def __call__(self) -> RequestHandler:
        return HeadTimedHandler(
            self, loop=self._loop, header_timeout_s=self.header_timeout_s, **self._kwargs
        )


class LimitedRunner(web.AppRunner):
    """`web.AppRunner` whose server cuts slow request heads and idle keep-alive connections."""

    def __init__(self, app: web.Application, limits: ConnectionLimits, **kwargs: object) -> None:
        super().__init__(app, keepalive_timeout=limits.keepalive_timeout_s, **kwargs)  # type: ignore[arg-type]
        self.limits = limits

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()  # the application started, its server's settings
        return LimitedServer(
            made.request_handler,
            request_factory=made.request_factory,
            loop=made._loop,
            header_timeout_s=self.limits.header_timeout_s,
            **made._kwargs,
        )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def body_deadline(limits: ConnectionLimits) -> Middleware:
    """A middleware that cancels a request's handler, answers 408 and closes the connection
    when the body arrives slower than the limits allow. A handler that has its whole body is
    never touched: the watch ends as the stream reaches its end."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.body_exists or request.content.is_eof():
            return await handler(request)
        watch = _BodyWatch(request, limits, asyncio.current_task())
        try:
            return await handler(request)
        except asyncio.CancelledError:
            if not watch.fired:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            return await _too_slow(request, limits)
        finally:
            watch.stop()

    return middleware


class _BodyWatch:
    def __init__(
        self, request: web.Request, limits: ConnectionLimits, task: asyncio.Task[object] | None
    ) -> None:
        self.request = request
        self.limits = limits
        self.task = task
        self.fired = False
        self.loop = asyncio.get_running_loop()
        self.started = self.loop.time()
        self.timer: asyncio.TimerHandle | None = self.loop.call_at(self._deadline(), self._check)

    def _deadline(self) -> float:
        allowance = self.limits.body_timeout_s
        if self.limits.body_min_bytes_per_s:
            allowance += self.request.content.total_bytes / self.limits.body_min_bytes_per_s
        return self.started + allowance

    def _check(self) -> None:
        self.timer = None
        if self.request.content.is_eof() or self.task is None or self.task.done():
            return
        deadline = self._deadline()
        if self.loop.time() < deadline:  # bytes came since: more time earned
            self.timer = self.loop.call_at(deadline, self._check)
            return
        self.fired = True
        metrics.SLOW_CLIENTS.labels("body").inc()
        log.warning(
            "http_body_too_slow",
            path=self.request.path,
            client=self.request.remote or "?",
            received_bytes=self.request.content.total_bytes,
        )
        self.task.cancel()

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


async def _too_slow(request: web.Request, limits: ConnectionLimits) -> web.StreamResponse:
    """408, then the connection closed: the rest of a slow body is not waited for."""
    rate = limits.body_min_bytes_per_s
    message = (
        f"the request body did not arrive in time ({math.ceil(limits.body_timeout_s)} s, "
        f"plus one second per {rate} bytes received)"
    )
    response = error_response(408, "request_timeout", message)
    response.force_close()
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.prepare(request)
        await response.write_eof()
    request.protocol.force_close()
    return response
