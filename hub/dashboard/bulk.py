"""Dead letters by filter: the grouped list with its true count, and bulk replay or discard.

A filter (connector, reason, time range, dossier code or prefix) selects parked messages. The
preview walks the parking queues it names (every message, not a page of them) and answers how
many match, grouped by connector, dossier and reason. A bulk action runs on the server as a
job: it walks the queues again and acts on what matches then (a message parked since the
preview is included, one replayed meanwhile is not), reporting its progress; one audit entry
per action holds who, the filter, how many matched at the preview and how many were acted on
(written before the first message is touched, completed at the end). Each walk keeps the
connector's parking lock (`hub.health`), so the dashboard's counts stay the broker's.
Discarding cannot be undone: the pages and the admin API ask for an explicit confirmation.

This module must never act on a message the filter does not select.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from hub.dashboard.board import Board
from hub.dlq import ParkedMessage
from hub.masking import mask_text

log = structlog.get_logger(__name__)

ACTIONS = {"replay": "dlq.replay", "discard": "dlq.discard"}
WALK_MAX = 50_000  # parked messages a preview reads per connector
KEEP_JOBS = 50  # finished jobs remembered for their progress pages
# A dead-letter page refreshing itself reuses a walk this recent of the same filter, so that
# open pages do not walk thousands of parked messages every few seconds (decision 0074).
LIVE_WALK_EVERY_S = 10.0
KEEP_PREVIEWS = 32


class BulkAudit(Protocol):
    async def audit_open(
        self, actor: str, action: str, target: str, detail: dict[str, Any]
    ) -> int: ...

    async def audit_close(self, entry_id: int, detail: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which parked messages: every field left empty matches all."""

    connector: str | None = None
    reason: str | None = None  # in the reason or the destination's code, any case
    since: datetime | None = None  # parked at or after
    until: datetime | None = None  # parked at or before
    dossier_prefix: str | None = None
    dossier: str | None = None  # one dossier's code, exactly

    def matches(self, m: ParkedMessage) -> bool:
        code = m.body.get("dossier_code")
        code = code if isinstance(code, str) else ""
        if self.dossier is not None and code != self.dossier:
            return False
        if self.dossier_prefix and not code.startswith(self.dossier_prefix):
            return False
        if self.reason and self.reason.casefold() not in f"{m.reason} {m.code or ''}".casefold():
            return False
        if self.since or self.until:
            try:
                at = datetime.fromisoformat(m.parked_at)
            except ValueError:
                return False
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            if (self.since and at < self.since) or (self.until and at > self.until):
                return False
        return True

    def as_json(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "reason": self.reason,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "dossier_prefix": self.dossier_prefix,
            "dossier": self.dossier,
        }


@dataclass
class BulkJob:
    id: str
    action: str  # replay | discard
    filter: DeadLetterFilter
    actor: str
    expected: int | None  # what the preview counted, when the operator saw one
    started_at: float = field(default_factory=time.time)
    state: str = "running"  # running | done | failed
    done: int = 0
    ended_at: float | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "filter": self.filter.as_json(),
            "by": self.actor,
            "expected": self.expected,
            "state": self.state,
            "done": self.done,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at) if self.ended_at else None,
            "error": self.error,
        }


class BulkActions:
    def __init__(self, board: Board, audit: BulkAudit) -> None:
        self.board = board
        self.audit = audit
        self.jobs: OrderedDict[str, BulkJob] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._recent: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()

    def connectors(self, only: str | None) -> list[str]:
        """The connectors a filter walks (`UnknownConnector` for one without a parking queue)."""
        if only:
            self.board.parking_of(only)
            return [only]
        return [n for n, w in self.board.watched.items() if w.parking]

    async def preview(self, where: DeadLetterFilter, groups_max: int = 200) -> dict[str, Any]:
        """How many parked messages match, of how many, grouped by connector, dossier and
        reason (the biggest groups first, at most `groups_max`)."""
        parked = matched = 0
        groups: dict[tuple[str, str, str], dict[str, Any]] = {}
        for name in self.connectors(where.connector):
            w = self.board.parking_of(name)
            assert w.parking is not None
            async with w.lock:
                found = await w.parking.browse(WALK_MAX)
            parked += len(found)
            for m in found:
                if not where.matches(m):
                    continue
                matched += 1
                _add_to_group(groups, name, m)
        ordered = sorted(groups.values(), key=lambda g: (-g["count"], g["last_parked_at"]))
        return {
            "filter": where.as_json(),
            "parked": parked,
            "matched": matched,
            "groups_total": len(groups),
            "groups": ordered[:groups_max],
        }

    async def preview_recent(
        self, where: DeadLetterFilter, max_age_s: float = LIVE_WALK_EVERY_S
    ) -> dict[str, Any]:
        """`preview`, or the same filter's walk of the last `max_age_s` (for a page that
        refreshes itself; a page opened or reloaded by the operator walks afresh)."""
        key = repr(sorted(where.as_json().items()))
        now = time.monotonic()
        held = self._recent.get(key)
        if held is not None and now - held[0] <= max_age_s:
            return held[1]
        found = await self.preview(where)
        self._recent[key] = (now, found)
        self._recent.move_to_end(key)
        while len(self._recent) > KEEP_PREVIEWS:
            self._recent.popitem(last=False)
        return found

    def forget_previews(self) -> None:
        """After an action: the next refresh walks again."""
        self._recent.clear()

    def start(
        self, action: str, where: DeadLetterFilter, actor: str, expected: int | None
    ) -> BulkJob:
        self.connectors(where.connector)  # an unknown connector is refused before any job
        job = BulkJob(secrets.token_hex(8), action, where, actor, expected)
        self.jobs[job.id] = job
        while len(self.jobs) > KEEP_JOBS:
            oldest = next(iter(self.jobs))
            if self.jobs[oldest].state == "running":
                break
            self.jobs.pop(oldest)
        task = asyncio.create_task(self._run(job), name=f"dlq-bulk-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def job(self, job_id: str) -> BulkJob | None:
        return self.jobs.get(job_id)

    async def stop(self) -> None:
        """Cancel running jobs (the hub stops): each completes its audit entry as it ends."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def _run(self, job: BulkJob) -> None:
        verb = ACTIONS[job.action]
        detail = {"filter": job.filter.as_json(), "matched_at_preview": job.expected}
        entry = await self.audit.audit_open(
            job.actor, f"{verb}.bulk", job.filter.connector or "*", detail
        )
        try:
            for name in self.connectors(job.filter.connector):
                w = self.board.parking_of(name)
                assert w.parking is not None
                base = job.done

                def progress(n: int, base: int = base) -> None:
                    job.done = base + n

                async with w.lock:
                    acted = await w.parking.act_all(job.filter.matches, job.actor, verb, progress)
                job.done = base + len(acted)
            job.state = "done"
        except BaseException as exc:
            job.state, job.error = "failed", mask_text(repr(exc))[:500]
            log.error("dlq_bulk_failed", job=job.id, error=job.error)
            if not isinstance(exc, Exception):
                raise
        finally:
            job.ended_at = time.time()
            self.board.forget_overview()
            self.forget_previews()
            with contextlib.suppress(Exception):
                await self.audit.audit_close(
                    entry, {**detail, "done": job.done, "state": job.state}
                )
            log.info("dlq_bulk_ended", job=job.id, action=job.action, done=job.done)


def _add_to_group(
    groups: dict[tuple[str, str, str], dict[str, Any]], connector: str, m: ParkedMessage
) -> None:
    code = m.body.get("dossier_code")
    code = code if isinstance(code, str) else ""
    reason = mask_text(m.reason)
    group = groups.get((connector, code, reason))
    if group is None:
        group = groups[(connector, code, reason)] = {
            "connector": connector,
            "dossier_code": code or None,
            "reason": reason,
            "code": m.code,
            "count": 0,
            "first_parked_at": m.parked_at,
            "last_parked_at": m.parked_at,
            "message_id": m.message_id,
            "attempts": m.attempts + 1,
        }
    group["count"] += 1
    if m.parked_at < group["first_parked_at"]:
        group["first_parked_at"] = m.parked_at
    if m.parked_at >= group["last_parked_at"]:
        group["last_parked_at"] = m.parked_at
        group["message_id"] = m.message_id
        group["attempts"] = m.attempts + 1


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
