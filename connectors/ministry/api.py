"""The ministries API: what operators and systems may see of the ministry connectors.

* `GET /api/v1/ministries`: each configured system, its kind, what it does (hand-off, poll,
  push), its poll cursor, circuit state and last poll round (`last_poll`, with its error);
* `GET /api/v1/ministries/{system}/handoffs?limit=<n>`: dossiers handed off, newest first;
* `GET /api/v1/ministries/quarantine?system=<name>&limit=<n>`: results the hub refused to
  forward (unknown dossier, unreadable, invalid), with the reason, personal data masked;
* `POST /api/v1/ministries/{system}/poll`: one poll round now, its report in the answer.

Reading needs `ministries.read`; polling needs `ministries.poll`. Results are pushed through
`connectors.ministry.routes`, with each system's own credential. This module must never talk
to a ministry system except through the poller.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from connectors.ministry.client import MinistryClient
from connectors.ministry.config import MinistryConfig
from connectors.ministry.models import Handoffs, MinistrySystems, PollReport, Quarantine
from connectors.ministry.poller import PollReport as PollRound
from connectors.ministry.poller import ResultPoller
from connectors.ministry.store import SqliteMinistries
from hub.api import authorize
from hub.auth import Authenticator
from hub.httputil import error_response, reply

MAX_LIMIT = 1000


def _limit(request: web.Request) -> int | web.Response:
    text = request.query.get("limit", "100")
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        return error_response(400, "bad_limit", f"limit must be 1..{MAX_LIMIT}")
    return int(text)


@dataclass(frozen=True)
class System:
    config: MinistryConfig
    client: MinistryClient
    poller: ResultPoller | None

    def last_poll(self) -> PollRound | None:
        """The last poll round's report (its error, if it failed), None before the first."""
        return None if self.poller is None else self.poller.last


@dataclass
class MinistriesApi:
    auth: Authenticator
    ministries: SqliteMinistries
    systems: dict[str, System]

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/ministries", self.list_systems),
            web.get("/api/v1/ministries/quarantine", self.quarantine),
            web.get("/api/v1/ministries/{system}/handoffs", self.handoffs),
            web.post("/api/v1/ministries/{system}/poll", self.poll_now),
        ]

    def _system(self, request: web.Request) -> tuple[str, System] | web.Response:
        name = request.match_info["system"]
        system = self.systems.get(name)
        if system is None:
            return error_response(404, "unknown_system", f"no ministry system {name[:50]!r}")
        return name, system

    async def list_systems(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "ministries.read"), web.Response):
            return denied
        out = [await self._describe(name, s) for name, s in sorted(self.systems.items())]
        return reply(MinistrySystems, {"systems": out})

    async def _describe(self, name: str, system: System) -> dict[str, Any]:
        cfg = system.config
        return {
            "system": name,
            "name": cfg.name,
            "kind": cfg.kind,
            "procedures": cfg.procedures,
            "handoff": cfg.submit is not None,
            "poll": cfg.poll is not None,
            "push": cfg.push is not None,
            "cursor": await self.ministries.cursor(name),
            "circuit": await system.client.guard.breaker_state(),
            "last_poll": last.as_dict() if (last := system.last_poll()) else None,
        }

    async def handoffs(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "ministries.read"), web.Response):
            return denied
        if isinstance(found := self._system(request), web.Response):
            return found
        if isinstance(limit := _limit(request), web.Response):
            return limit
        rows = await self.ministries.handoffs(found[0], limit)
        return reply(Handoffs, {"handoffs": [asdict(r) for r in rows]})

    async def quarantine(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "ministries.read"), web.Response):
            return denied
        if isinstance(limit := _limit(request), web.Response):
            return limit
        system = request.query.get("system") or None
        if system is not None and system not in self.systems:
            return error_response(404, "unknown_system", f"no ministry system {system[:50]!r}")
        rows = await self.ministries.quarantined(system, limit)
        return reply(Quarantine, {"quarantine": [asdict(r) for r in rows]})

    async def poll_now(self, request: web.Request) -> web.Response:
        if isinstance(denied := authorize(self.auth, request, "ministries.poll"), web.Response):
            return denied
        if isinstance(found := self._system(request), web.Response):
            return found
        name, system = found
        if system.poller is None:
            return error_response(
                409, "not_polled", f"ministry system {name} is not polled (no poll)"
            )
        report = await system.poller.poll_once()
        return reply(PollReport, report.as_dict(), 200 if report.error is None else 502)
