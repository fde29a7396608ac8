"""Polling a ministry system for results since the saved cursor.

One round: read the cursor (`poll.first_cursor` before the first result), ask the system's
poll operation for a page (`poll.params`, with `$cursor` and `$limit` filled in), hand the
page's results to the intake together with the page's next cursor, which is committed with
them, and go on while pages come back full (or the mapping's `more` says so), up to
`poll.max_pages`. A failed call or an unreadable reply ends the round with the cursor where it
was: nothing is skipped, and results read again are duplicates. A reply the mapping cannot read
(an expression failing on it: `MappingFailed`) is quarantined with its reason, counted, and
ends the round the same way; it never escapes as an exception. The schedule runs a round every
`poll.interval_s`; the last round's report is kept for the ministries API and page. This module
must never map or store a result itself.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from connectors.ministry.client import MinistryClient
from connectors.ministry.config import PollConfig
from connectors.ministry.intake import ResultIntake
from connectors.ministry.mapping import MappingFailed, MinistryMapping
from connectors.ministry.store import SqliteMinistries
from hub import metrics
from hub.errors import HubError

log = structlog.get_logger(__name__)


@dataclass
class PollReport:
    system: str
    pages: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    cursor: str | None = None
    error: str | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def as_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "at": self.at,
            "pages": self.pages,
            "results": self.verdicts,
            "cursor": self.cursor,
            "error": self.error,
        }


def fill(params: dict[str, str], cursor: str, limit: int) -> dict[str, Any]:
    """`poll.params` with `$cursor` and `$limit` put in (a lone `$limit` stays a number)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if value == "$limit":
            out[name] = limit
        else:
            out[name] = value.replace("$cursor", cursor).replace("$limit", str(limit))
    return out


class ResultPoller:
    def __init__(
        self,
        client: MinistryClient,
        mapping: MinistryMapping,
        intake: ResultIntake,
        ministries: SqliteMinistries,
        config: PollConfig,
    ) -> None:
        self.system = client.system
        self.client = client
        self.mapping = mapping
        self.intake = intake
        self.ministries = ministries
        self.config = config
        self.last: PollReport | None = None  # the last round's
        self._lock = asyncio.Lock()

    async def poll_once(self) -> PollReport:
        async with self._lock:  # the schedule and an operator's "poll now" never overlap
            self.last = report = await self._round()
            return report

    async def _round(self) -> PollReport:
        report = PollReport(self.system)
        cursor = await self.ministries.cursor(self.system) or self.config.first_cursor
        report.cursor = cursor
        try:
            while report.pages < self.config.max_pages:
                cursor, go_on = await self._page(cursor, report)
                report.cursor = cursor
                if not go_on:
                    break
        except HubError as exc:
            report.error = exc.message
            metrics.MINISTRY_POLLS.labels(self.system, "failed").inc()
            log.warning("ministry_poll_failed", system=self.system, error=exc.message)
            return report
        metrics.MINISTRY_POLLS.labels(self.system, "ok").inc()
        # A round that found nothing is the common case: not worth a line at info level.
        level = logging.INFO if report.verdicts else logging.DEBUG
        log.log(level, "ministry_polled", **report.as_dict())
        return report

    async def _page(self, cursor: str, report: PollReport) -> tuple[str, bool]:
        size = self.config.page_size
        reply = await self.client.poll(fill(self.config.params, cursor, size))
        report.pages += 1
        try:
            page = self.mapping.page(reply)
        except MappingFailed as exc:
            await self.intake.quarantine_reply(reply, "poll", exc)
            report.verdicts["quarantined"] = report.verdicts.get("quarantined", 0) + 1
            raise
        following = page.cursor if page.cursor else cursor
        outcomes = await self.intake.accept(page.items, "poll", cursor=following)
        for outcome in outcomes:
            report.verdicts[outcome.verdict] = report.verdicts.get(outcome.verdict, 0) + 1
        moved = following != cursor
        return following, moved and bool(page.items) and (page.more or len(page.items) >= size)

    async def run_schedule(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception:  # keep polling: one bad round must not end the schedule
                log.exception("ministry_poll_crashed", system=self.system)
            await asyncio.sleep(self.config.interval_s)
