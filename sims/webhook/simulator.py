"""A stand-in for a subscriber's REST endpoint (a "webhook receiver"), for tests and demos.

The hub delivers events (`procedure.created`, `procedure.updated`, `procedure.locked`, later
payment results) by HTTP POST to each subscriber: the provincial one-stop system or a sectoral
ministry system. This receiver plays such a subscriber on loopback. It checks what a careful
subscriber checks (bearer token, JSON object body, `event_id` and `type`, and the
`X-Hub-Event-Id` / `X-Hub-Event-Type` headers agreeing with the body), stores each distinct
event once (a repeated `event_id` is acknowledged as a duplicate, not stored again), keeps
what it received where a test can read it (`events`, `receipts`, counters), and lets a test or
an operator inject faults: outages, timeouts, slow answers, lost replies and refusals, from
Python (`receiver.faults`) or over HTTP.

URLs: `url` is where the hub POSTs events, `base_url + path`. The control endpoints hang off
`base_url` (the URL without the event path), not off `url`:

- `POST <base_url>/_sim/faults` with a JSON object of `SimFaults` fields to change;
- `GET <base_url>/_sim/state` for `state()`;
- `POST <base_url>/_sim/reset` for `reset()`.

It plays the external system honestly, so it must never import hub code, never bend its rules
to suit the hub, and never be exposed beyond a test or demo machine (its token is throwaway
and its `_sim` endpoints have no authentication).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Literal

from aiohttp import web

from sims.loopback import (
    LoopbackServer,
    apply_changes,
    parse_count,
    parse_seconds,
    read_json_object,
    serve_until_signalled,
)

Mode = Literal["ok", "http_503", "timeout", "slow", "lost_reply", "reject"]
MODES: tuple[Mode, ...] = ("ok", "http_503", "timeout", "slow", "lost_reply", "reject")

DEFAULT_PATH = "/hub/events"
SIM_PREFIX = "/_sim"
EVENT_ID_HEADER = "X-Hub-Event-Id"
EVENT_TYPE_HEADER = "X-Hub-Event-Type"
MAX_BODY_BYTES = 4 * 1024 * 1024

_dumps = partial(json.dumps, ensure_ascii=False)


def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(payload, status=status, dumps=_dumps)


def _bad_request(message: str) -> web.Response:
    return _json({"error": "bad_request", "message": message}, 400)


def _unavailable() -> web.Response:
    return web.Response(status=503, text="Service Unavailable")


# -- faults -------------------------------------------------------------------------------------


def _parse_mode(value: object) -> Mode:
    if value not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {value!r}")
    return value


def _parse_types(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
        raise ValueError('reject_types must be a list of event types, e.g. ["procedure.locked"]')
    return list(value)


_FAULT_PARSERS: dict[str, Any] = {
    "mode": _parse_mode,
    "delay_s": parse_seconds,
    "timeout_sleep_s": parse_seconds,
    "fail_next": parse_count,
    "reject_types": _parse_types,
}


@dataclass
class SimFaults:
    """What goes wrong, and how. Faults apply to POSTs on the event path only.

    - "ok": answer normally;
    - "http_503": HTTP 503 to every event, nothing stored;
    - "timeout": wait `timeout_sleep_s`, store nothing, then HTTP 504 (a hung gateway);
    - "slow": wait `delay_s`, then answer normally;
    - "lost_reply": store the event, then wait `timeout_sleep_s` before answering, so the
      caller times out although the receiver holds the event (tests idempotent redelivery);
    - "reject": HTTP 422 `{"error": "rejected"}` to every well-formed, authorized event,
      nothing stored.
    `fail_next` makes the next N events fail with HTTP 503 before any check, nothing stored
    (ignored while `mode` is "http_503" or "timeout"); `reject_types` answers HTTP 422 to
    every well-formed, authorized event of those types, nothing stored.
    """

    mode: Mode = "ok"
    delay_s: float = 0.5
    timeout_sleep_s: float = 30.0
    fail_next: int = 0
    reject_types: list[str] = field(default_factory=list)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply the fields present in `changes`; all or nothing (raises ValueError)."""
        apply_changes(self, changes, _FAULT_PARSERS)


# -- request checks -----------------------------------------------------------------------------


def _header_problem(request: web.Request, name: str, expected: str, field_name: str) -> str | None:
    value = request.headers.get(name)
    if value is None:
        return f"the {name} header is required"
    if value != expected:
        return f"the {name} header {value!r} does not match {field_name} {expected!r}"
    return None


def _event_problem(body: dict[str, Any], request: web.Request) -> str | None:
    """Why a JSON object with its headers is not a well-formed event, or None if it is."""
    event_id, event_type = body.get("event_id"), body.get("type")
    if not isinstance(event_id, str) or not event_id.strip():
        return "event_id must be a non-empty string"
    if not isinstance(event_type, str) or not event_type.strip():
        return "type must be a non-empty string"
    return _header_problem(request, EVENT_ID_HEADER, event_id, "event_id") or _header_problem(
        request, EVENT_TYPE_HEADER, event_type, "type"
    )


# -- the simulator ------------------------------------------------------------------------------


class WebhookReceiver(LoopbackServer):
    """A subscriber on loopback. `async with WebhookReceiver() as receiver:` then POST to
    `receiver.url`; the `_sim` control endpoints live under `receiver.base_url`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = DEFAULT_PATH,
        token: str = "sub-token",  # noqa: S107 - a throwaway credential of a loopback fake
    ) -> None:
        if not path.startswith("/") or path.startswith(SIM_PREFIX):
            raise ValueError(f"path must start with '/' and not with {SIM_PREFIX!r}: {path!r}")
        super().__init__(host, port)
        self.path, self.token = path, token
        self.faults = SimFaults()
        self.events: list[dict[str, Any]] = []
        self.receipts: Counter[str] = Counter()
        self.requests = 0
        self.responses: Counter[int] = Counter()
        self._stored = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------------

    max_body_bytes = MAX_BODY_BYTES

    @property
    def url(self) -> str:
        """Where the hub POSTs events (empty until started)."""
        return f"{self.base_url}{self.path}" if self.base_url else ""

    def routes(self, app: web.Application) -> None:
        app.router.add_post(self.path, self._handle)
        app.router.add_post(f"{SIM_PREFIX}/faults", self._set_faults)
        app.router.add_get(f"{SIM_PREFIX}/state", self._get_state)
        app.router.add_post(f"{SIM_PREFIX}/reset", self._reset)

    # -- reading what arrived -------------------------------------------------------------------

    def by_type(self, type: str) -> list[dict[str, Any]]:
        """The distinct events of one type, in arrival order."""
        return [event for event in self.events if event["type"] == type]

    def duplicates(self) -> dict[str, int]:
        """Event ids accepted more than once, with how many times each was accepted."""
        return {event_id: n for event_id, n in self.receipts.items() if n > 1}

    def state(self) -> dict[str, Any]:
        total = sum(self.receipts.values())
        return {
            "event_count": len(self.events),
            "types": dict(Counter(event["type"] for event in self.events)),
            "receipts": {
                "unique": len(self.receipts),
                "total": total,
                "duplicates": total - len(self.receipts),
            },
            "duplicated_events": self.duplicates(),
            "requests": self.requests,
            "responses": {str(status): n for status, n in sorted(self.responses.items())},
            "faults": asdict(self.faults),
            "events": self.events,
        }

    async def wait_for(self, count: int, timeout_s: float, type: str | None = None) -> bool:
        """Wait until at least `count` distinct events (of `type`, if given) are stored.

        True once they are, False if `timeout_s` passes first. Woken on each store, no polling.
        """

        def held() -> int:
            return len(self.events if type is None else self.by_type(type))

        try:
            async with asyncio.timeout(timeout_s):
                while held() < count:
                    await self._stored.wait()
        except TimeoutError:
            return held() >= count
        return True

    # -- control from Python --------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every event, receipt, counter and fault."""
        self.faults = SimFaults()
        self.events.clear()
        self.receipts.clear()
        self.requests = 0
        self.responses.clear()

    # -- control over HTTP ----------------------------------------------------------------------

    async def _set_faults(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)
        if body is None:
            return _bad_request("the body must be a JSON object")
        try:
            self.faults.update(body)
        except ValueError as exc:
            return _bad_request(str(exc))
        return _json({"status": "ok", "faults": asdict(self.faults)})

    async def _get_state(self, request: web.Request) -> web.Response:
        return _json(self.state())

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return _json({"status": "ok", "message": "events, counters and faults cleared"})

    # -- the event endpoint ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        response = await self._outage()
        if response is None:
            response = await self._receive(request)
        # Counted when decided: under "lost_reply" the caller may never see it.
        self.responses[response.status] += 1
        if self.faults.mode == "lost_reply" and response.status == 200:
            await self._sleep(self.faults.timeout_sleep_s)
        return response

    async def _outage(self) -> web.Response | None:
        """The answer of a receiver that is down, hung or slow, before it looks at anything."""
        mode = self.faults.mode
        if mode == "http_503":
            return _unavailable()
        if mode == "timeout":
            await self._sleep(self.faults.timeout_sleep_s)
            return web.Response(status=504, text="Gateway Timeout")
        if mode == "slow":
            await self._sleep(self.faults.delay_s)
        if self.faults.fail_next > 0:
            self.faults.fail_next -= 1
            return _unavailable()
        return None

    async def _receive(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response(
                {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
        if request.content_type != "application/json":
            message = f"Content-Type must be application/json, got {request.content_type!r}"
            return _json({"error": "unsupported_media_type", "message": message}, 415)
        body = await read_json_object(request)
        if body is None:
            return _bad_request("the body must be a JSON object")
        problem = _event_problem(body, request)
        if problem is not None:
            return _bad_request(problem)
        refusal = self._refusal(body["type"])
        if refusal is not None:
            return _json({"error": "rejected", "message": refusal}, 422)
        duplicate = self._store(body)
        return _json({"status": "accepted", "event_id": body["event_id"], "duplicate": duplicate})

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return secrets.compare_digest(credential.strip().encode(), self.token.encode())

    def _refusal(self, event_type: str) -> str | None:
        if self.faults.mode == "reject":
            return "the subscriber refuses every event (fault mode reject)"
        if event_type in self.faults.reject_types:
            return f"the subscriber refuses events of type {event_type!r}"
        return None

    def _store(self, event: dict[str, Any]) -> bool:
        """Record one accepted delivery; True if the event was already held."""
        event_id = str(event["event_id"])
        self.receipts[event_id] += 1
        if self.receipts[event_id] > 1:
            return True
        self.events.append(event)
        # Wake every wait_for, then arm a fresh event for the next store.
        self._stored.set()
        self._stored = asyncio.Event()
        return False


# -- standalone ---------------------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> None:
    receiver = WebhookReceiver(args.host, args.port, args.path, args.token)

    def describe() -> list[str]:
        base = receiver.base_url
        return [
            f"webhook receiver: POST {receiver.url}  (Bearer token set)",
            f"  faults: POST {base}/_sim/faults   state: GET {base}/_sim/state",
        ]

    await serve_until_signalled(receiver, "webhook receiver", describe)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the webhook receiver until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--path", default=DEFAULT_PATH, help="where events are POSTed")
    parser.add_argument("--token", default="sub-token", help="the expected bearer token")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
