"""Syncing the national procedure catalogue into the hub, resumably.

A run reads the national list, records it as the run's items (one commit), then reads each
pending procedure with bounded concurrency (the client's rate limit paces the calls) and
applies it: the lifecycle transition, its event in the outbox and the item marked done, in the
applier's commit (one for whatever the readers fetched meanwhile; the events are published
after it, without holding up the readers). A crash at any instant therefore resumes where it
stopped: the next process that syncs takes over the run once its owner has stopped beating
(`stale_after_s`), reads only the items still pending, and re-announces nothing, because a
procedure already applied compares unchanged and event ids are derived from the change itself.

After the items, a full run locks every active procedure the national list no longer names,
unless that would lock more than `max_removal_share` of them (a truncated list must not lock
the catalogue): then the run ends `partial` and says why.

Records that cannot be read are quarantined with their reason and never propagated; a portal
that keeps failing for one item marks that item failed (the next sync tries again); an open
circuit stops the run early, leaving it `partial`. The rest of the sync goes on in every case.

This module must never talk HTTP or SQL itself: it goes through `CatalogueSource` and
`ProcedureStore`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

import structlog

from connectors.national_portal.config import CatalogueConfig
from connectors.national_portal.procedures.lifecycle import Current, Transition, on_record
from connectors.national_portal.procedures.records import (
    ItemState,
    ListEntry,
    Listing,
    Refused,
    RunState,
    SyncRun,
)
from connectors.national_portal.procedures.versioning import record_json
from hub.errors import CircuitOpen, CredentialsRefused, HubError, SyncBusy, TransientError
from hub.store.base import OutboxMessage
from schemas.procedure import Procedure

log = structlog.get_logger(__name__)

Publish = Callable[[list[OutboxMessage]], Awaitable[int]]


class CatalogueSource(Protocol):
    async def list_procedures(self) -> Listing: ...

    async def fields(self) -> list[ListEntry]: ...

    async def agencies(self) -> list[ListEntry]: ...

    async def fetch(self, code: str) -> Procedure | Refused: ...


class ProcedureStore(Protocol):
    async def claim_stale_run(self, owner: str, stale_after_s: float) -> SyncRun | None: ...

    async def begin_run(
        self, kind: str, requested: list[str], trigger: str, owner: str
    ) -> SyncRun: ...

    async def heartbeat(self, run_id: int, owner: str) -> None: ...

    async def add_items(self, run_id: int, codes: list[str]) -> None: ...

    async def pending_items(self, run_id: int) -> list[str]: ...

    async def item_counts(self, run_id: int) -> dict[str, int]: ...

    async def mark_item(self, run_id: int, code: str, state: ItemState, outcome: str) -> None: ...

    async def finish_run(
        self, run_id: int, state: RunState, detail: str | None, counts: dict[str, int]
    ) -> None: ...

    async def apply(
        self,
        run_id: int | None,
        code: str,
        decide: Callable[[Current | None], Transition | None],
    ) -> tuple[Transition | None, list[OutboxMessage]]: ...

    async def apply_many(
        self,
        run_id: int | None,
        decisions: list[tuple[str, Callable[[Current | None], Transition | None]]],
    ) -> list[tuple[Transition | None, list[OutboxMessage]]]: ...

    async def lock_missing(self, run_id: int) -> tuple[list[Transition], list[OutboxMessage]]: ...

    async def active_count(self) -> int: ...

    async def missing_count(self, run_id: int) -> int: ...

    async def quarantine(
        self,
        run_id: int | None,
        code: str,
        reason: str,
        field: str | None,
        excerpt: str | None,
        reason_code: str | None = None,
    ) -> None: ...

    async def save_list(self, kind: str, entries: list[ListEntry]) -> None: ...

    async def last_full_run(self) -> SyncRun | None: ...


# Fetched records waiting for the applier, per reader: what a crash reads again, at most. One
# per reader made the concurrency-bound bench slower than before (a commit per two or three
# records); four keeps the readers going (decision 0077).
APPLY_QUEUE_PER_READER = 4
APPLY_BATCH = 64  # records applied in one commit, at most


@dataclass
class Progress:
    """Where a run stands; passed to the progress callback after every procedure."""

    run_id: int
    total: int
    done: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


OnProgress = Callable[[Progress], None]


@dataclass
class _Pipe:
    """One run's readers and applier: what was fetched, whether to stop and why."""

    run_id: int
    fetched: asyncio.Queue[tuple[str, Procedure] | None]
    progress: Progress
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    reason: list[str] = field(default_factory=list)
    publishing: set[asyncio.Task[None]] = field(default_factory=set)


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class CatalogueSync:
    def __init__(
        self,
        source: CatalogueSource,
        store: ProcedureStore,
        publish: Publish,
        config: CatalogueConfig,
        owner: str | None = None,
    ) -> None:
        self.source = source
        self.store = store
        self.publish = publish
        self.config = config
        self.owner = owner or owner_name()
        self._running = asyncio.Lock()

    @property
    def busy(self) -> bool:
        return self._running.locked()

    async def run(
        self,
        codes: list[str] | None = None,
        trigger: str = "cli",
        on_progress: OnProgress | None = None,
    ) -> list[SyncRun]:
        """Finish an abandoned run if there is one, then the run asked for.

        A full sync asked for while an abandoned full run exists is that run, resumed.
        Waits while this process runs another; raises `SyncBusy` when another live process
        is syncing.
        """
        async with self._running:  # one run at a time in this process: wait for the other
            finished: list[SyncRun] = []
            stale = await self.store.claim_stale_run(self.owner, self.config.stale_after_s)
            if stale is not None:
                log.info("catalogue_sync_resuming", run_id=stale.id, state=stale.state)
                finished.append(await self._drive(stale, on_progress))
                if codes is None and stale.kind == "full":
                    return finished
            kind = "codes" if codes else "full"
            run = await self.store.begin_run(kind, codes or [], trigger, self.owner)
            finished.append(await self._drive(run, on_progress))
            return finished

    async def _drive(self, run: SyncRun, on_progress: OnProgress | None) -> SyncRun:
        beat = asyncio.create_task(self._beat(run.id), name=f"catalogue-heartbeat-{run.id}")
        try:
            return await self._steps(run, on_progress)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _steps(self, run: SyncRun, on_progress: OnProgress | None) -> SyncRun:
        log.info("catalogue_sync_started", run_id=run.id, kind=run.kind, resumed=run.resumed)
        if run.state is RunState.listing:
            try:
                await self._list(run)
            except HubError as exc:
                log.error("catalogue_list_failed", run_id=run.id, error=str(exc))
                return await self._finish(run, RunState.failed, f"national list: {exc}", {})
        stopped = await self._fetch_pending(run, on_progress)
        extra: dict[str, int] = {}
        detail = stopped
        if run.kind == "full":
            withheld = await self._lock_missing(run, extra)
            detail = "; ".join(d for d in (stopped, withheld) if d) or None
        counts = {**await self.store.item_counts(run.id), **extra}
        state = RunState.partial if detail or counts.get(ItemState.failed, 0) else RunState.done
        return await self._finish(run, state, detail, counts)

    async def _list(self, run: SyncRun) -> None:
        if run.kind == "codes":
            await self.store.add_items(run.id, run.requested)
            return
        listing = await self.source.list_procedures()
        for refused in listing.refused:
            await self._quarantine(run.id, refused)
        for kind, read in (("field", self.source.fields), ("agency", self.source.agencies)):
            try:
                await self.store.save_list(kind, await read())
            except HubError as exc:  # reference lists help, but never stop the sync
                log.warning("catalogue_reference_list_failed", kind=kind, error=str(exc))
        await self.store.add_items(run.id, listing.codes)
        log.info("catalogue_listed", run_id=run.id, procedures=len(listing.codes))

    async def _fetch_pending(self, run: SyncRun, on_progress: OnProgress | None) -> str | None:
        """Read and apply every pending item; returns why it stopped early, if it did.

        `concurrency` readers keep that many portal calls in flight; what they read goes to
        one applier, which applies whatever has arrived in one commit and publishes the
        events without waiting for the broker, so neither the store nor the broker lengthens
        a reader's cycle (decision 0077)."""
        pending = await self.store.pending_items(run.id)
        counts = await self.store.item_counts(run.id)
        progress = Progress(run.id, total=sum(counts.values()))
        progress.done = progress.total - len(pending)
        queue: asyncio.Queue[str] = asyncio.Queue()
        for code in pending:
            queue.put_nowait(code)
        readers = min(self.config.concurrency, max(len(pending), 1))
        pipe = _Pipe(run.id, asyncio.Queue(maxsize=readers * APPLY_QUEUE_PER_READER), progress)
        applier = asyncio.create_task(self._applier(pipe, on_progress), name="catalogue-apply")
        try:
            await asyncio.gather(*(self._reader(queue, pipe, on_progress) for _ in range(readers)))
            await pipe.fetched.put(None)  # the readers are done: the applier ends after the rest
            await applier
        finally:
            if not applier.done():
                applier.cancel()
                await asyncio.gather(applier, return_exceptions=True)
            if pipe.publishing:
                await asyncio.gather(*pipe.publishing, return_exceptions=True)
        return pipe.reason[0] if pipe.reason else None

    async def _reader(
        self, queue: asyncio.Queue[str], pipe: _Pipe, on_progress: OnProgress | None
    ) -> None:
        while not pipe.stop.is_set():
            try:
                code = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                fetched = await self.source.fetch(code)
            except TransientError as exc:
                if isinstance(exc, CircuitOpen | CredentialsRefused):  # the rest would meet it too
                    self._stop(pipe, exc)
                    return
                await self.store.mark_item(pipe.run_id, code, ItemState.failed, "failed")
                log.warning("catalogue_item_failed", run_id=pipe.run_id, code=code, error=str(exc))
                self._advance(pipe.progress, "failed", on_progress)
                continue
            except HubError as exc:  # a refused login, say: every other item would fail too
                self._stop(pipe, exc)
                return
            if isinstance(fetched, Refused):
                await self._quarantine(pipe.run_id, fetched)
                self._advance(pipe.progress, "quarantined", on_progress)
                continue
            await pipe.fetched.put((code, fetched))

    async def _applier(self, pipe: _Pipe, on_progress: OnProgress | None) -> None:
        """Applies what the readers fetched, everything waiting at once in one commit."""
        while True:
            first = await pipe.fetched.get()
            items = [first]
            while not pipe.fetched.empty() and len(items) < APPLY_BATCH:
                items.append(pipe.fetched.get_nowait())
            done = items[-1] is None
            batch = [item for item in items if item is not None]
            if batch and not pipe.stop.is_set():
                try:
                    await self._apply(pipe, batch, on_progress)
                except Exception as exc:  # the store is away (or a bug): the rest stays pending
                    if not isinstance(exc, HubError):
                        log.exception("catalogue_apply_crashed", run_id=pipe.run_id)
                    self._stop(pipe, exc)
            # After a stop, what arrives is dropped (it stays pending) so no reader waits.
            if done:
                return

    async def _apply(
        self, pipe: _Pipe, batch: list[tuple[str, Procedure]], on_progress: OnProgress | None
    ) -> None:
        decisions: list[tuple[str, Callable[[Current | None], Transition | None]]] = [
            (code, partial(on_record, record=record_json(p))) for code, p in batch
        ]
        applied = await self.store.apply_many(pipe.run_id, decisions)
        outbox = [m for _, messages in applied for m in messages]
        if outbox:
            task = asyncio.create_task(self._publish(outbox), name="catalogue-publish")
            pipe.publishing.add(task)
            task.add_done_callback(pipe.publishing.discard)
        for transition, _ in applied:
            if transition is not None:
                # One line per change would be thousands in a first sync: DEBUG; the run's
                # progress and its counts are logged at INFO, the versions are in the store.
                log.debug(
                    "procedure_changed",
                    code=transition.code,
                    change=str(transition.change),
                    version=transition.version,
                    revision=transition.revision,
                    event_id=transition.event_id,
                )
            self._advance(
                pipe.progress, str(transition.change) if transition else "unchanged", on_progress
            )

    async def _publish(self, outbox: list[OutboxMessage]) -> None:
        # Never raises: what fails to publish stays in the outbox for the relay.
        await self.publish(outbox)

    def _stop(self, pipe: _Pipe, exc: Exception) -> None:
        """Stop asking the portal; what is left stays pending and the run ends partial."""
        if not pipe.stop.is_set():
            pipe.stop.set()
            pipe.reason.append(f"stopped early: {exc}")
            log.warning("catalogue_sync_stopped", run_id=pipe.run_id, error=str(exc))

    def _advance(self, progress: Progress, outcome: str, on_progress: OnProgress | None) -> None:
        progress.done += 1
        progress.outcomes[outcome] += 1
        if on_progress is not None:
            on_progress(progress)
        if progress.done % self.config.progress_every == 0 or progress.done == progress.total:
            log.info(
                "catalogue_sync_progress",
                run_id=progress.run_id,
                done=progress.done,
                total=progress.total,
                **dict(progress.outcomes),
            )

    async def _quarantine(self, run_id: int, refused: Refused) -> None:
        await self.store.quarantine(
            run_id,
            refused.code,
            refused.reason,
            refused.field,
            refused.excerpt,
            refused.reason_code,
        )
        log.warning(
            "procedure_quarantined",
            run_id=run_id,
            code=refused.code,
            reason_code=refused.reason_code,
            field=refused.field,
            reason=refused.reason,
        )

    async def _lock_missing(self, run: SyncRun, extra: dict[str, int]) -> str | None:
        missing = await self.store.missing_count(run.id)
        if not missing:
            return None
        active = await self.store.active_count()
        if missing > active * self.config.max_removal_share:
            detail = (
                f"{missing} of {active} active procedures are missing from the national list, "
                f"more than max_removal_share {self.config.max_removal_share}: none locked"
            )
            log.error("catalogue_removals_withheld", run_id=run.id, missing=missing, active=active)
            return detail
        locked, outbox = await self.store.lock_missing(run.id)
        await self.publish(outbox)
        for t in locked:
            log.info("procedure_locked", code=t.code, version=t.version, reason=str(t.change))
        extra["removed"] = len(locked)
        return None

    async def _finish(
        self, run: SyncRun, state: RunState, detail: str | None, counts: dict[str, int]
    ) -> SyncRun:
        await self.store.finish_run(run.id, state, detail, counts)
        log.info(
            "catalogue_sync_finished", run_id=run.id, state=state.value, detail=detail, **counts
        )
        return SyncRun(
            run.id, run.kind, run.requested, run.trigger, state, run.owner, run.started_at,
            detail=detail, counts=counts, resumed=run.resumed,
        )  # fmt: skip

    async def _beat(self, run_id: int) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            try:
                await self.store.heartbeat(run_id, self.owner)
            except HubError as exc:
                log.warning("catalogue_heartbeat_failed", run_id=run_id, error=str(exc))

    async def run_schedule(self) -> None:
        """In the hub: resume an abandoned run, and run a full sync every `interval_s`."""
        check_s = min(self.config.stale_after_s, 60.0)
        while True:
            await self.run_logged(self._scheduled())
            await asyncio.sleep(check_s)

    async def _scheduled(self) -> None:
        if await self._due():
            await self.run(trigger="schedule")
        else:
            await self._resume_abandoned()

    async def run_logged(self, work: Awaitable[Any]) -> None:
        """Await a sync in the background (schedule, API): log its failure, never raise it."""
        try:
            await work
        except SyncBusy as exc:
            log.info("catalogue_sync_skipped", reason=str(exc))
        except HubError as exc:
            log.error("catalogue_sync_error", error=str(exc))
        except Exception:
            # A bug must not end the schedule for good: log it, try again later.
            log.exception("catalogue_sync_crashed")

    async def _due(self) -> bool:
        if self.config.interval_s <= 0:
            return False
        last = await self.store.last_full_run()
        if last is None or last.finished_at is None:
            return last is None
        wait_s = self.config.interval_s
        if last.state is RunState.failed:
            wait_s = min(wait_s, self.config.retry_failed_after_s)
        age = datetime.now(UTC) - datetime.fromisoformat(last.finished_at)
        return age.total_seconds() >= wait_s

    async def _resume_abandoned(self) -> None:
        if self._running.locked():
            return
        async with self._running:
            stale = await self.store.claim_stale_run(self.owner, self.config.stale_after_s)
            if stale is not None:
                log.info("catalogue_sync_resuming", run_id=stale.id, state=stale.state)
                await self._drive(stale, None)
