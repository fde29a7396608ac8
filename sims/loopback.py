"""The lifecycle every loopback simulator shares: an aiohttp server on a free port.

A simulator subclasses `LoopbackServer`, adds its routes in `routes(app)`, and gets `async
with`, `start()` / `stop()`, `base_url` (http://host:port) and `_sleep`, a fault delay that
`stop()` cuts short so shutdown never waits for a simulated time-out; `parse_seconds` and
`parse_count` check the fault settings a test posts, `apply_changes` applies them all or
nothing, `control_routes` serves the usual `/_sim/faults`, `/_sim/state` and `/_sim/reset`,
`read_json` and `read_json_object` read request bodies without raising; `serve_until_signalled`
runs one as a standalone program until Ctrl-C. Given an `ssl_context` before it starts, a
simulator serves HTTPS (`base_url` https://...) and keeps the SHA-256 of every client
certificate it saw (`peer_certificates`), as a TLS-terminating gateway (LGSP/NGSP) would.
It belongs to the simulators, which play external systems: it must never import hub code.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict
from types import TracebackType
from typing import Any, Protocol, Self

from aiohttp import web


class LoopbackServer:
    max_body_bytes = 4 * 1024 * 1024

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.base_url = ""
        self.ssl_context: ssl.SSLContext | None = None  # HTTPS when set (before start)
        self.peer_certificates: set[str] = set()  # hex SHA-256 of client certificates seen
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=self.max_body_bytes, middlewares=[self._peer])
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        port = self._runner.addresses[0][1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.ssl_context is not None else "http"
        self.base_url = f"{scheme}://{host}:{port}"

    @web.middleware
    async def _peer(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        tls = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = tls.getpeercert(binary_form=True) if tls is not None else None
        if der:
            self.peer_certificates.add(hashlib.sha256(der).hexdigest())
        return await handler(request)

    async def stop(self) -> None:
        # Wake handlers parked in a fault sleep so shutdown does not wait for them.
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)


# -- reading request bodies -----------------------------------------------------------------------


async def read_json(request: web.Request) -> Any:
    """The request's JSON body, or None when it is not JSON."""
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        return None


async def read_json_object(request: web.Request) -> dict[str, Any] | None:
    """The request's JSON object, or None when the body is not one."""
    body = await read_json(request)
    return body if isinstance(body, dict) else None


# -- fault settings and the `_sim` control endpoints ----------------------------------------------


def apply_changes(
    target: object, changes: dict[str, Any], parsers: Mapping[str, Callable[[object], object]]
) -> None:
    """Set the fields in `changes` on `target`, each checked by its parser; all or nothing
    (`ValueError` naming unknown fields or the first bad value)."""
    unknown = set(changes) - set(parsers)
    if unknown:
        raise ValueError(f"unknown fault fields {sorted(unknown)}")
    parsed = {name: parsers[name](value) for name, value in changes.items()}
    for name, value in parsed.items():
        setattr(target, name, value)


class Controlled(Protocol):
    """A simulator with faults to set, a state to read and a reset, over `/_sim/...`."""

    @property
    def faults(self) -> Any: ...

    def state(self) -> dict[str, Any]: ...

    def reset(self) -> None: ...


def control_routes(app: web.Application, sim: Controlled, prefix: str = "/_sim") -> None:
    """`POST <prefix>/faults` (a JSON object of fault fields), `GET <prefix>/state`,
    `POST <prefix>/reset`; errors as `{"error": "bad_request", "message": ...}` with 400."""

    def answer(payload: dict[str, Any], status: int = 200) -> web.Response:
        return web.json_response(payload, status=status, dumps=_dumps)

    async def set_faults(request: web.Request) -> web.Response:
        body = await read_json_object(request)
        if body is None:
            return answer(
                {"error": "bad_request", "message": "the body must be a JSON object"}, 400
            )
        try:
            sim.faults.update(body)
        except ValueError as exc:
            return answer({"error": "bad_request", "message": str(exc)}, 400)
        return answer({"status": "ok", "faults": asdict(sim.faults)})

    async def get_state(_: web.Request) -> web.Response:
        return answer(sim.state())

    async def reset(_: web.Request) -> web.Response:
        sim.reset()
        return answer({"status": "ok", "message": "state, counters and faults cleared"})

    app.router.add_post(f"{prefix}/faults", set_faults)
    app.router.add_get(f"{prefix}/state", get_state)
    app.router.add_post(f"{prefix}/reset", reset)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


# -- parsing fault settings sent to `<url>/_sim/faults` -------------------------------------------


def parse_seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"expected a non-negative number of seconds, got {value!r}")
    return float(value)


def parse_count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


# -- standalone -----------------------------------------------------------------------------------


async def serve_until_signalled(
    server: LoopbackServer, name: str, describe: Callable[[], Iterable[str]]
) -> None:
    """Serve until SIGINT or SIGTERM, printing `describe()`'s lines once started."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        for line in describe():
            print(line, flush=True)
        await stop.wait()
    print(f"{name} stopped", flush=True)
