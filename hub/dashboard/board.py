"""What the dashboard shows, gathered once for the pages and the admin API alike.

Sources, cheapest first: each consumer's in-memory `ConnectorStats` (throughput, error rate,
last success, recent failures, the oldest message it holds), each connector's circuit breaker,
the broker's message counts (passive declares on a channel of the board's own), and the store
through its read-only connection (completeness, lag, samples, dossiers, flows). The overview
is computed at most once per `dashboard.overview_cache_s`, however many operators watch it.

A connector's state (up, degraded, down, credentials_refused or paused), with its reason and
since when, is `hub.health`'s: the same answer `/readyz` and `hub status` give. Operators pause
and resume a connector through `set_paused`, which calls the hub's own (audited) pause.

Counts are the broker's at that moment: waiting is the work queue's and the delay tiers'
messages (ready, plus what the consumer holds unacknowledged), dead letters the parking queue's
(read between two walks of the dead-letter pages, see `hub.health`). Rates are over the last
`rate_window_s` (five minutes, or since the process started if later) and say so; the
`*_since_start` counts are this process's own since `stats_since`. A connector's throughput
counts only what it delivered, not the messages it skipped as none of its business.

"Oldest waiting" is the age (since it first entered a queue, retries included) of the oldest
message the consumer holds, or null when it holds none: the broker cannot say how old the head
of a queue is without taking it, which would count as a delivery (decision 0058). This module
must never change what it reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from hub.config import AlertsConfig, DashboardConfig
from hub.dashboard.flows import facts_of
from hub.dashboard.replicas import replicas_view
from hub.dashboard.timeline import status_name, timeline_page
from hub.dlq import ParkedMessage
from hub.health import QueueProbe, Watched, counts_of, describe, outage_json
from hub.masking import mask, mask_scalar, mask_text, name_key
from hub.store.base import DeliveryEntry, DossierView
from hub.store.dashboard import Sample, StuckFilter, Trouble
from hub.store.sqlite import SqliteStore
from hub.synclag import percentiles
from hub.watch import WINDOW_S

log = structlog.get_logger(__name__)

# The destination whose confirmations the sync figures count (completeness, lag): DVCQG. Its
# delivery state is held like any destination's (`SqliteStore.delivery_work`).
SYNC_DESTINATION = "national_portal"
SAMPLE_MARGIN_S = 0.05  # past an interval boundary before a replica samples
MAX_BROWSE = 1000  # parked messages read per connector for the dead-letter page
TIMELINE_PAGE = 300  # hops per page of a dossier's timeline (about a hundred events)
SEARCH_PAGE = 50  # dossiers per page of a search
# States in which a destination takes nothing: what it lacks waits for it (a degraded one
# still delivers; its failures are the messages' own, journaled).
AWAY = frozenset({"down", "credentials_refused", "paused"})
STUCK_PAGE = 100  # dossiers per page of the stuck list
# Journal outcomes that tell whether a destination took a dossier (not the axis's "received").
JOURNAL_OUTCOMES = frozenset(
    {"delivered", "refused", "failed", "retry", "parked", "replayed", "discarded", "queued"}
)


Pauser = Callable[[str, str, str, bool], Awaitable[bool]]  # (name, actor, reason, paused)


LAG_POINTS = 48  # the lag chart's points over the selected range
FLOW_OUTAGES = 10  # the newest outages a flow page lists per connector


LEASES_READ_TIMEOUT_S = 2.0  # the store's leases, for the replicas section (as /readyz)


class ReplicaDuties(Protocol):
    """This replica's once-only duties (`hub.duties.Duties`), for the replicas section."""

    @property
    def holder(self) -> str: ...

    def held(self) -> list[str]: ...

    def kept(self) -> list[str]: ...


class UnknownConnector(LookupError):
    pass


class PauseUnavailable(RuntimeError):
    """This board was built without a way to pause connectors."""


class Board:
    def __init__(
        self,
        config: DashboardConfig,
        reader: SqliteStore,
        probe: QueueProbe | None,
        watched: list[Watched],
        flows: dict[str, Callable[[], Awaitable[dict[str, Any]]] | None] | None = None,
        pauser: Pauser | None = None,
        alerts: AlertsConfig | None = None,
    ) -> None:
        self.config = config
        self.alerts = alerts or AlertsConfig()
        self.pauser = pauser
        self.reader = reader
        self.probe = probe
        self.watched = {w.name: w for w in watched}
        self.flows = flows or {}
        self._overview: tuple[float, dict[str, Any]] | None = None
        self._overview_lock = asyncio.Lock()
        self._last_successes: dict[str, float] = {}
        # The hub's firing alerts (`hub.alerts.Alerting.active`), for the overview's banner.
        self.firing: Callable[[], list[dict[str, Any]]] | None = None
        # This replica's duties (`hub.duties.Duties`), for the overview's replicas section.
        self.duties: ReplicaDuties | None = None

    async def start(self) -> None:
        """What outlives a restart: each connector's last success from the samples."""
        with contextlib.suppress(Exception):
            self._last_successes = await self.reader.dashboard.last_successes()

    # -- overview -------------------------------------------------------------------------------

    async def overview(self) -> dict[str, Any]:
        async with self._overview_lock:
            cached = self._overview
            if cached and time.monotonic() - cached[0] < self.config.overview_cache_s:
                return cached[1]
            data = await self._compute_overview()
            self._overview = (time.monotonic(), data)
            return data

    async def _compute_overview(self) -> dict[str, Any]:
        now = time.time()
        completeness = await self.reader.dashboard.completeness(SYNC_DESTINATION)
        lag = await self.lag(now - self.config.lag_window_h * 3600)
        cards = [await self.card(w) for w in self.watched.values()]
        return {
            "generated_at": _iso(now),
            "completeness": {
                "dossiers": completeness.dossiers,
                "confirmed": completeness.confirmed,
                "unconfirmed": completeness.unconfirmed,
                "ratio": completeness.ratio,
                "min_ratio": self.alerts.completeness_min_ratio,
                "below_min": completeness.ratio is not None
                and completeness.ratio < self.alerts.completeness_min_ratio,
            },
            "lag": {
                "window_h": self.config.lag_window_h,
                **lag,
                "p95_max_s": self.alerts.lag_p95_max_s,
                "over_max": lag["p95_s"] is not None and lag["p95_s"] > self.alerts.lag_p95_max_s,
            },
            "connectors": cards,
            "alerts": self.firing() if self.firing else [],
            "replicas": await self.replicas(),
        }

    async def replicas(self) -> dict[str, Any] | None:
        """The replicas and who holds which duty (`hub.dashboard.replicas`), from the leases
        read through the read-only connection; None for a board outside a hub."""
        duties = self.duties
        if duties is None:
            return None
        try:
            leases = await asyncio.wait_for(self.reader.leases.leases(), LEASES_READ_TIMEOUT_S)
        except Exception as exc:  # the section says the store did not answer
            log.warning("duty_leases_unread", error=repr(exc))
            leases = None
        return replicas_view(duties.holder, duties.kept(), duties.held(), leases)

    async def lag(self, since: float) -> dict[str, Any]:
        counts = await self.reader.dashboard.lag_histogram(SYNC_DESTINATION, since)
        found = percentiles(counts, (0.5, 0.95))
        return {"samples": sum(counts.values()), "p50_s": found[0.5], "p95_s": found[0.95]}

    async def card(self, w: Watched) -> dict[str, Any]:
        circuit = await w.guard.breaker_state() if w.guard else "closed"
        health = describe(w)
        card: dict[str, Any] = {
            "name": w.name,
            "kind": "queue" if w.consumer else "calls",
            "circuit": circuit,
            "state": health["state"],
            "since": health["since"],
            "reason": health["reason"],
            "reason_code": health["reason_code"],
            "reason_args": health["reason_args"],
            "outage": health["outage"],
            "last_success_at": None,
            "throughput_per_min": None,
            "error_rate": None,
            "rate_window_s": None,
            "queue_depth": None,
            "oldest_waiting_s": None,
            "dead_letters": None,
            "stats_since": None,
            "delivered_since_start": None,
            "retried_since_start": None,
            "parked_since_start": None,
            "skipped_since_start": None,
        }
        if w.consumer is None or w.queues is None:
            return card
        stats = w.consumer.stats
        now = time.time()
        per_min, error_rate = stats.rates()
        counts = await counts_of(w, self.probe) if self.probe else None
        oldest = stats.oldest_held_age_s()
        last = stats.last_success_at or self._last_successes.get(w.name)
        card.update(
            last_success_at=_iso(last) if last else None,
            throughput_per_min=round(per_min, 2),
            error_rate=None if error_rate is None else round(error_rate, 4),
            rate_window_s=round(min(WINDOW_S, max(1.0, now - stats.started_at))),
            queue_depth=counts.waiting if counts else None,
            oldest_waiting_s=None if oldest is None else round(oldest, 1),
            dead_letters=counts.parked if counts else None,
            stats_since=_iso(stats.started_at),
            delivered_since_start=stats.done,
            retried_since_start=stats.retried,
            parked_since_start=stats.parked,
            skipped_since_start=stats.skipped,
        )
        return card

    # -- one connector --------------------------------------------------------------------------

    def watched_named(self, name: str) -> Watched:
        found = self.watched.get(name)
        if found is None:
            raise UnknownConnector(name)
        return found

    async def connector(self, name: str, hours: float) -> dict[str, Any]:
        w = self.watched_named(name)
        now = time.time()
        since = now - hours * 3600
        samples = await self.reader.dashboard.samples(name, since)
        failures = list(w.consumer.stats.failures) if w.consumer else []
        out = {
            "card": await self.card(w),
            "hours": hours,
            "interval_s": self.config.sample_interval_s,
            "series": _series(samples, self.config.sample_interval_s),
            "recent_failures": [
                {
                    "at": _iso(f.at),
                    "outcome": f.outcome,
                    "reason": mask_text(f.reason),
                    "message_id": f.message_id,
                    "dossier_code": f.dossier_code,
                }
                for f in failures
            ],
            "lag_series": [],
            "lag_step_s": max(60.0, hours * 3600 / LAG_POINTS),
            "outages": [outage_json(o) for o in (w.guard.gate.outages if w.guard else [])],
        }
        if name == SYNC_DESTINATION:
            out["lag_series"] = await self._lag_series(since, now)
        return out

    def may_pause(self, name: str) -> bool:
        """Whether pausing `name` stops anything: a pauser is at hand and it has a gate."""
        w = self.watched.get(name)
        return self.pauser is not None and w is not None and w.guard is not None

    async def set_paused(self, name: str, actor: str, reason: str, paused: bool) -> dict[str, Any]:
        """Pause or resume `name` now (audited by the hub): its state after, and whether
        anything changed."""
        w = self.watched_named(name)
        if self.pauser is None:
            raise PauseUnavailable(name)
        try:
            changed = await self.pauser(name, actor, reason, paused)
        except KeyError:
            raise UnknownConnector(name) from None
        self._overview = None  # the state changed
        return {"connector": name, "state": describe(w)["state"], "changed": changed}

    async def _lag_series(
        self, since: float, now: float, points: int = LAG_POINTS
    ) -> list[dict[str, Any]]:
        rows = await self.reader.dashboard.lag_minutes(SYNC_DESTINATION, since)
        step = max(60.0, (now - since) / points)
        grouped: dict[int, dict[int, int]] = {}
        for minute, bucket, n in rows:
            slot = int((minute * 60 - since) // step)
            counts = grouped.setdefault(slot, {})
            counts[bucket] = counts.get(bucket, 0) + n
        out = []
        for slot in sorted(grouped):
            found = percentiles(grouped[slot], (0.5, 0.95))
            out.append(
                {
                    "at": _iso(since + slot * step),
                    "p50_s": found[0.5],
                    "p95_s": found[0.95],
                    "samples": sum(grouped[slot].values()),
                }
            )
        return out

    # -- dossiers -------------------------------------------------------------------------------

    async def search(self, text: str, page: int = 0, size: int = SEARCH_PAGE) -> dict[str, Any]:
        """Dossiers whose code holds `text` (any case), whose procedure code starts with it,
        or whose owner is named `text` in full (accents and case aside): a page of them, the
        owner's name masked, and how many there are (decision 0064)."""
        total, hits = await self.reader.dashboard.find_dossiers(
            text, name_key(text), size, page * size
        )
        return {
            "q": text,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // size)),
            "size": size,
            "items": [
                {
                    "code": h.code,
                    "status": status_name(h.status),
                    "updated_at": h.updated_at,
                    "procedure_code": h.procedure_code,
                    "owner_name": mask_scalar(h.owner_name) if h.owner_name else None,
                    "matched": h.matched,
                }
                for h in hits
            ],
        }

    async def state_destinations(self) -> list[str]:
        """Destinations that keep a delivery state of every dossier: DVCQG always, and any
        other the store holds a state for."""
        found = await self.reader.dashboard.state_destinations()
        return sorted({SYNC_DESTINATION, *found})

    async def stuck(
        self, where: StuckFilter, page: int = 0, size: int = STUCK_PAGE
    ) -> dict[str, Any]:
        """Dossiers a destination has not confirmed the newest state of, oldest first, with
        why (the trouble journaled, or the destination's own state when it is not up) and
        the total (decision 0063)."""
        now = datetime.now(UTC)
        destinations = await self.state_destinations()
        total, rows = await self.reader.dashboard.stuck(destinations, where, now, size, page * size)
        items = []
        for r in rows:
            since = _parse(r.since)
            w = self.watched.get(r.destination)
            health = describe(w) if w else None
            outcome, reason = r.outcome, mask_text(r.reason or "")
            reason_code, reason_args = r.reason_code, _masked_args(r.reason_args)
            if outcome is None and health and health["state"] in AWAY:
                outcome, reason = "waiting", health["reason"] or ""
                reason_code, reason_args = health["reason_code"], health["reason_args"]
            items.append(
                {
                    "code": r.code,
                    "destination": r.destination,
                    "destination_state": health["state"] if health else None,
                    "since": since.isoformat(timespec="seconds") if since else r.since,
                    "age_s": round((now - since).total_seconds()) if since else None,
                    "status": status_name(r.status),
                    "procedure_code": r.procedure_code,
                    "version": r.version,
                    "confirmed_version": r.confirmed_version,
                    "outcome": outcome or "queued",
                    "reason": reason,
                    "reason_code": reason_code,
                    "reason_args": reason_args,
                    "reason_at": r.reason_at,
                }
            )
        return {
            "filter": {
                "destination": where.destination,
                "agency": where.agency,
                "procedure": where.procedure,
                "status": status_name(where.status) if where.status is not None else None,
                "older_than_s": where.older_than_s,
            },
            "destinations": sorted({*destinations, *self.watched}),
            "total": total,
            "page": page,
            "pages": max(1, -(-total // size)),
            "size": size,
            "items": items,
        }

    async def dossier(
        self, code: str, page: int = 0, size: int = TIMELINE_PAGE
    ) -> dict[str, Any] | None:
        view = await self.reader.dossier(code)
        if view.snapshot is None and not view.history and not view.deliveries:
            return None
        snap = view.snapshot
        confirmed = view.confirmed.get(SYNC_DESTINATION, 0)
        shown = timeline_page(view, size, page)
        trouble = await self.reader.dashboard.trouble(code)
        return {
            "code": code,
            "status": status_name(int(snap.status)) if snap else None,
            "status_at": snap.status_at.isoformat() if snap else None,
            "version": snap.version if snap else 0,
            "portal_version": confirmed,
            "portal_confirmed": bool(snap) and confirmed >= (snap.version if snap else 0),
            "why": self._why(view, trouble, await self.state_destinations()),
            "record": mask(snap.record.model_dump(mode="json")) if snap and snap.record else None,
            "timeline": [h.as_json() for h in shown.hops],
            "timeline_total": shown.total,
            "timeline_first": shown.first,
            "timeline_page": page,
            "timeline_pages": max(1, -(-shown.total // size)),
        }

    def _why(
        self, view: DossierView, trouble: list[Trouble], state_destinations: list[str]
    ) -> dict[str, Any]:
        """Who has and has not confirmed the dossier's newest state, the last error and its
        cause, and where its parked messages wait (to replay them)."""
        snap = view.snapshot
        version = snap.version if snap else 0
        troubled = {t.destination: t for t in trouble}
        last_line: dict[str, DeliveryEntry] = {}
        for d in view.deliveries:
            if d.outcome in JOURNAL_OUTCOMES:
                last_line[d.connector] = d
        rows = []
        for name in sorted({*state_destinations, *last_line, *troubled}):
            t = troubled.get(name)
            keeps_state = name in state_destinations
            if keeps_state:
                got = view.confirmed.get(name)
                steps_missing = any(
                    h.kind == "step" and name not in h.confirmed for h in view.history
                )
                ok = got is not None and got >= version and not steps_missing
            else:
                got = None
                line = last_line.get(name)
                ok = t is None and line is not None and line.outcome == "delivered"
            rows.append(self._destination_row(name, ok, got, keeps_state, t, last_line.get(name)))
        errors = sorted(trouble, key=lambda t: t.at, reverse=True)
        last_error = None
        if errors:
            e = errors[0]
            w = self.watched.get(e.destination)
            health = describe(w) if w else None
            last_error = {
                "destination": e.destination,
                "outcome": e.outcome,
                "reason": mask_text(e.reason or ""),
                "reason_code": e.reason_code,
                "reason_args": _masked_args(e.reason_args),
                "at": e.at,
                "since": e.since,
                "destination_state": health["state"] if health else None,
                "cause": health["reason"] if health and health["state"] in AWAY else "",
                "cause_code": health["reason_code"] if health and health["state"] in AWAY else "",
                "cause_args": health["reason_args"] if health and health["state"] in AWAY else {},
            }
        return {
            "status": status_name(int(snap.status)) if snap else None,
            "version": version,
            "confirmed_by_all": all(r["confirmed"] for r in rows),
            "destinations": rows,
            "last_error": last_error,
            "parked_at": [r["name"] for r in rows if r["outcome"] in ("parked", "refused")],
        }

    def _destination_row(
        self,
        name: str,
        ok: bool,
        confirmed_version: int | None,
        keeps_state: bool,
        trouble: Trouble | None,
        line: DeliveryEntry | None,
    ) -> dict[str, Any]:
        w = self.watched.get(name)
        health = describe(w) if w else None
        waiting = not ok and trouble is None and health is not None and health["state"] in AWAY
        return {
            "name": name,
            "confirmed": ok,
            "keeps_state": keeps_state,
            "confirmed_version": confirmed_version,
            "outcome": trouble.outcome if trouble else ("waiting" if waiting else None),
            "reason": mask_text(trouble.reason or "")
            if trouble
            else (health["reason"] if waiting and health else ""),
            "reason_code": trouble.reason_code
            if trouble
            else (health["reason_code"] if waiting and health else None),
            "reason_args": _masked_args(trouble.reason_args)
            if trouble
            else (health["reason_args"] if waiting and health else {}),
            "at": trouble.at if trouble else (line.at if line else None),
            "state": health["state"] if health else None,
        }

    # -- dead letters ---------------------------------------------------------------------------

    def parking_of(self, name: str) -> Watched:
        w = self.watched_named(name)
        if w.parking is None:
            raise UnknownConnector(name)
        return w

    async def dead_letters(
        self,
        connector: str | None,
        reason: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        names = [connector] if connector else [n for n, w in self.watched.items() if w.parking]
        out: list[dict[str, Any]] = []
        for name in names:
            w = self.parking_of(name)
            assert w.parking is not None
            async with w.lock:
                parked = await w.parking.browse(MAX_BROWSE)
            for m in parked:
                if _matches(m, reason, since, until):
                    out.append(_parked_row(name, m))
        out.sort(key=lambda r: r["parked_at"], reverse=True)
        return out[:limit]

    async def dead_letter(self, connector: str, message_id: str) -> dict[str, Any] | None:
        w = self.parking_of(connector)
        assert w.parking is not None
        async with w.lock:
            parked = await w.parking.browse(MAX_BROWSE)
        for m in parked:
            if m.message_id == message_id:
                return {
                    **_parked_row(connector, m),
                    "body": mask(m.body),
                    "headers": mask(m.headers),
                }
        return None

    def forget_overview(self) -> None:
        """The counts changed (an act on dead letters): the next overview is read afresh."""
        self._overview = None

    async def act_on_dead_letters(
        self, connector: str, message_ids: list[str], action: str, actor: str
    ) -> tuple[list[str], list[str]]:
        """Replay or discard the named parked messages: (done, missing)."""
        w = self.parking_of(connector)
        assert w.parking is not None
        wanted = set(message_ids)
        async with w.lock:
            acted = await w.parking.act(lambda m: m.message_id in wanted, actor, action)
        done = [m.message_id for m in acted]
        self._overview = None  # the counts changed
        return done, [i for i in message_ids if i not in set(done)]

    # -- flows ----------------------------------------------------------------------------------

    async def flow(self, name: str) -> dict[str, Any]:
        """A flow page's facts and tables (masked), and the state, dead letters and outage
        log of each connector it names: a flow's outages show on its own page."""
        source = self.flows.get(name)
        if source is None:
            return {"enabled": False}
        data = mask(await source())
        data["facts"] = facts_of(data.get("facts"))
        named = [n for n in data.pop("connectors", []) if n in self.watched]
        connectors = []
        for n in named:
            w = self.watched[n]
            card = await self.card(w)
            outages = [outage_json(o) for o in (w.guard.gate.outages if w.guard else [])]
            connectors.append({**card, "outages": outages[:FLOW_OUTAGES]})
        return {"enabled": True, **data, "connectors": connectors}

    async def audit(self, before: int | None, limit: int) -> list[dict[str, Any]]:
        entries = await self.reader.audit_entries(limit, before)
        return [{**dataclasses.asdict(e), "detail": mask(e.detail)} for e in entries]


class Sampler:
    """Every `sample_interval_s`, one row per queue connector into the store: what it settled
    since the last row, its queue depth and dead letters. The charts draw these rows.

    A row is stamped with the start of its interval on the wall clock (`interval_start`), and
    every replica samples just after each interval ends: the replicas of one store add their
    counts to the same row, so a chart shows the hub's total, not one replica's share drawn
    at twice the rate between another's rows."""

    def __init__(self, board: Board, writer: SqliteStore) -> None:
        self.board = board
        self.writer = writer
        self._last: dict[str, tuple[int, int, int]] = {}

    async def sample_once(self) -> None:
        now = interval_start(time.time(), self.board.config.sample_interval_s)
        rows = []
        for w in self.board.watched.values():
            if w.consumer is None or w.queues is None:
                continue
            s = w.consumer.stats
            counts = await counts_of(w, self.board.probe) if self.board.probe else None
            before = self._last.get(w.name, (0, 0, 0))
            self._last[w.name] = (s.done, s.retried, s.parked)
            rows.append(
                Sample(
                    at=now,
                    connector=w.name,
                    done=s.done - before[0],
                    retried=s.retried - before[1],
                    parked=s.parked - before[2],
                    queue_depth=counts.waiting if counts else None,
                    dead_letters=counts.parked if counts else None,
                    last_success=s.last_success_at,
                )
            )
        keep_s = self.board.config.samples_keep_days * 86400
        await self.writer.dashboard.add_samples(rows, keep_s)

    async def run(self) -> None:
        while True:
            interval = self.board.config.sample_interval_s
            await asyncio.sleep(until_next_interval(time.time(), interval))
            try:
                await self.sample_once()
            except Exception as exc:  # a missed sample is a gap in a chart, nothing more
                log.warning("dashboard_sample_failed", error=repr(exc))


def interval_start(now: float, interval_s: float) -> float:
    """The start of the sampling interval `now` ends (wall clock, the same on every replica):
    a sample taken just after a boundary counts for the interval before it."""
    return (math.floor(now / interval_s) - 1) * interval_s


def until_next_interval(now: float, interval_s: float) -> float:
    """Seconds from `now` to just after the next interval boundary (a small margin, so that
    a clock a little behind still lands in the new interval)."""
    return (math.floor(now / interval_s) + 1) * interval_s - now + SAMPLE_MARGIN_S


def _series(samples: list[Sample], interval_s: float) -> list[dict[str, Any]]:
    out = []
    previous: float | None = None
    for s in samples:
        span_min = ((s.at - previous) if previous else interval_s) / 60
        previous = s.at
        settled = s.done + s.retried + s.parked
        out.append(
            {
                "at": _iso(s.at),
                "throughput_per_min": round(s.done / span_min, 2) if span_min > 0 else None,
                "errors_per_min": round((s.retried + s.parked) / span_min, 2)
                if span_min > 0
                else None,
                "error_rate": round((s.retried + s.parked) / settled, 4) if settled else None,
                "queue_depth": s.queue_depth,
                "dead_letters": s.dead_letters,
            }
        )
    return out


def _matches(
    m: ParkedMessage, reason: str | None, since: datetime | None, until: datetime | None
) -> bool:
    if reason and reason.casefold() not in (m.reason + " " + (m.code or "")).casefold():
        return False
    if since or until:
        try:
            at = datetime.fromisoformat(m.parked_at)
        except ValueError:
            return False
        if since and at < since:
            return False
        if until and at > until:
            return False
    return True


def _parked_row(connector: str, m: ParkedMessage) -> dict[str, Any]:
    code = m.body.get("dossier_code")
    return {
        "connector": connector,
        "message_id": m.message_id,
        "reason": mask_text(m.reason),
        "code": m.code,
        "parked_at": m.parked_at,
        "attempts": m.attempts + 1,  # the first try and each retry tier
        "dossier_code": code if isinstance(code, str) else None,
    }


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _parse(text: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _masked_args(args: dict[str, Any]) -> dict[str, Any]:
    """A journaled reason's values as they may leave the hub (text masked like its reason)."""
    return {k: mask_text(v) if isinstance(v, str) else v for k, v in args.items()}
