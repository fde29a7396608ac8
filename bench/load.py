"""The load generator: a one-stop adapter posting to the hub's DVCQG facade, fast or on a clock.

`FacadeClient` logs in and pushes `DongBoHoSoMC` / `CapNhatTienDoHoSoMC` batches, logging in
again on HTTP 401 and repeating a call answered "try later" (HTTP 5xx or `99`), as an adapter
does. Two drivers use it:

* `drive_closed`: several callers, each owning a share of the dossiers, send as fast as the hub
  answers, in rounds over a window of dossiers (one record and one step per dossier per round,
  so batches hold up to `window` items and each dossier's events stay in order);
* `drive_open`: an open loop that starts one dossier's record-then-step call pair on a fixed
  schedule, never waiting for earlier replies, and notes when each step was sent.

Anything but "00" for every item is a failure of the run: the bench never sends invalid data.
This module must never read the hub's or the simulator's internals.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.workload import Record, Script, StepKey
from sims.national_portal.simulator import step_key

RECORDS, STEPS = "DongBoHoSoMC", "CapNhatTienDoHoSoMC"
MAX_ATTEMPTS = 30
REQUEST_TIMEOUT_S = 60.0


class LoadError(RuntimeError):
    """The hub refused what the bench sent, or never accepted it."""


@dataclass
class Progress:
    """Events the hub acknowledged so far, and when."""

    acked: int = 0
    calls: int = 0
    retries: int = 0
    first_sent: float = 0.0
    last_acked: float = 0.0

    def sent(self) -> None:
        if not self.first_sent:
            self.first_sent = time.perf_counter()

    def ack(self, events: int) -> None:
        self.acked += events
        self.last_acked = time.perf_counter()


class FacadeClient:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        credentials: tuple[str, str],
        madonvi: str,
        progress: Progress,
    ) -> None:
        self.http = http
        self.url = url
        self.username, self.password = credentials
        self.madonvi = madonvi
        self.progress = progress
        self.session: str | None = None
        self._login_lock = asyncio.Lock()

    async def login(self, stale: str | None = None) -> str:
        async with self._login_lock:
            if self.session is None or self.session == stale:
                status, reply = await self._post(
                    {"username": self.username, "password": self.password}
                )
                token = reply.get("session")
                if status != 200 or not isinstance(token, str):
                    raise LoadError(f"facade login refused: HTTP {status} {reply}")
                self.session = token
            return self.session

    async def push(self, service: str, items: list[Record], updating: bool | None = None) -> None:
        """One call; returns once the hub answered "00" for every item."""
        body: dict[str, Any] = {"service": service, "madonvi": self.madonvi, "data": items}
        if updating is not None:
            body["isUpdating"] = "True" if updating else "False"
        self.progress.sent()
        for attempt in range(MAX_ATTEMPTS):
            session = self.session or await self.login()
            status, reply = await self._post({**body, "session": session})
            self.progress.calls += 1
            if status == 401:
                await self.login(stale=session)
            elif status >= 500 or reply.get("error_code") == "99":
                await asyncio.sleep(min(0.05 * 2**attempt, 2.0))
            else:
                self._check(service, status, reply, len(items))
                self.progress.ack(len(items))
                return
            self.progress.retries += 1
        raise LoadError(f"{service}: no success after {MAX_ATTEMPTS} attempts")

    def _check(self, service: str, status: int, reply: dict[str, Any], n: int) -> None:
        results = reply.get("result")
        ok = status == 200 and reply.get("error_code") == "00"
        if ok and isinstance(results, list) and len(results) == n:
            return
        raise LoadError(f"{service} refused: HTTP {status} {json.dumps(reply)[:600]}")

    async def _post(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        data = json.dumps(payload, ensure_ascii=False).encode()
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        try:
            async with self.http.post(
                self.url, data=data, headers=headers, timeout=timeout
            ) as response:
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return 599, {"error_code": "99", "message": repr(exc)}
        try:
            reply = json.loads(text)
        except ValueError:
            reply = None
        return status, reply if isinstance(reply, dict) else {"error_code": "", "raw": text[:200]}


# -- closed loop --------------------------------------------------------------------------------


@dataclass
class _Cursor:
    script: Script
    next: int = 0


@dataclass
class _Round:
    new: list[Record] = field(default_factory=list)
    updates: list[Record] = field(default_factory=list)
    steps: list[Record] = field(default_factory=list)


def _take_round(active: list[_Cursor]) -> _Round:
    batch = _Round()
    for cursor in active:
        record, step = cursor.script.pairs[cursor.next]
        (batch.updates if cursor.next else batch.new).append(record)
        batch.steps.append(step)
        cursor.next += 1
    return batch


def _refill(active: list[_Cursor], backlog: Iterator[Script], window: int) -> list[_Cursor]:
    kept = [c for c in active if c.next < len(c.script.pairs)]
    while len(kept) < window:
        script = next(backlog, None)
        if script is None:
            break
        if script.pairs:
            kept.append(_Cursor(script))
    return kept


async def _caller(client: FacadeClient, scripts: list[Script], window: int) -> None:
    backlog = iter(scripts)
    active = _refill([], backlog, window)
    while active:
        batch = _take_round(active)
        if batch.new:
            await client.push(RECORDS, batch.new, updating=False)
        if batch.updates:
            await client.push(RECORDS, batch.updates, updating=True)
        await client.push(STEPS, batch.steps)
        active = _refill(active, backlog, window)


async def drive_closed(
    client: FacadeClient, scripts: list[Script], *, callers: int, window: int
) -> None:
    """Send every script as fast as the hub answers; dossiers are split among `callers`."""
    await client.login()
    shares = [scripts[i::callers] for i in range(callers)]
    async with asyncio.TaskGroup() as group:
        for share in shares:
            group.create_task(_caller(client, share, window))


# -- open loop ----------------------------------------------------------------------------------


@dataclass
class OpenLoopReport:
    sent_at: dict[StepKey, float] = field(default_factory=dict)
    pairs: int = 0
    max_slip_s: float = 0.0  # how late the bench itself started a call pair, at worst
    seconds: float = 0.0  # the sending schedule, first call to last started
    answered_s: float = 0.0  # first call started to last call answered


def interleave(scripts: list[Script], window: int) -> list[tuple[Record, Record, bool]]:
    """(record, step, is_new) in the order an adapter would send them: one round per window."""
    out: list[tuple[Record, Record, bool]] = []
    for start in range(0, len(scripts), window):
        group = scripts[start : start + window]
        for k in range(max((len(s.pairs) for s in group), default=0)):
            out.extend((*s.pairs[k], k == 0) for s in group if k < len(s.pairs))
    return out


async def _pair(
    client: FacadeClient, record: Record, step: Record, new: bool, report: OpenLoopReport
) -> None:
    await client.push(RECORDS, [record], updating=not new)
    report.sent_at[step_key(step)] = time.perf_counter()
    await client.push(STEPS, [step])


async def drive_open(
    client: FacadeClient,
    pairs: list[tuple[Record, Record, bool]],
    pairs_per_s: float,
    report: OpenLoopReport | None = None,
) -> OpenLoopReport:
    """Start pair i at `start + i / pairs_per_s`, whatever became of the earlier ones.

    Pass `report` to read it while the loop runs (which steps were sent so far)."""
    await client.login()
    report = OpenLoopReport() if report is None else report
    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for i, (record, step, new) in enumerate(pairs):
            due = start + i / pairs_per_s
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            report.max_slip_s = max(report.max_slip_s, -delay)
            group.create_task(_pair(client, record, step, new, report))
            report.pairs += 1
        report.seconds = time.perf_counter() - start
    report.answered_s = time.perf_counter() - start
    return report
