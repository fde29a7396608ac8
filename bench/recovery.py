"""The recovery phase: DVCQG down for a while under steady traffic, then back.

For each outage length (`--recovery-outages-s`: 60 s and 10 minutes by default, 10 s and 30 s
with `--quick`) a fresh hub and DVCQG simulator (`bench.e2e.hub_phase`: own queue prefix, own
store) are warmed up, then an open loop offers `OFFERED_RATE` events/s to the facade
(record-then-step pairs, as in the latency phase) and keeps offering them to the end: `LEAD_S`
with DVCQG up, the outage (the simulator answers HTTP 503 to everything), and the catch-up
after it is switched back. Traffic is never stopped at recovery: a one-stop system does not
wait for DVCQG.

From the switch back (T), measured:

* recovery time: from T until DVCQG holds the newest state, as of T, of every dossier sent
  before T: every step the load generator had sent, and for every dossier the status of its
  newest record sent before T or of a later one (polled every `POLL_S`);
* the ideal: backlog ÷ (capacity − offered rate), where backlog is the connector's `waiting`
  from `/readyz?counts=1` read at T (work and retry queues plus what the consumer holds; here
  one message per event, each facade call carrying one item), and capacity is
  `rate_limit_per_s × batch_size` events/s of the hub's configuration. Traffic goes on during
  the catch-up, so only what the hub can deliver beyond the offered rate drains the backlog.
  Target: recovery ≤ 1.2 × ideal + 5 s;
* probe latency: from T to the first DVCQG call after it (every call from T on is answered),
  i.e. the probe that reopens the gate; the drain is the rest;
* during the outage, `/readyz?counts=1` every second: the peak backlog (`waiting`); the hub's
  own outage record (probes, most messages held), read from its `connector_recovered` log line;
* at the end: messages parked (`parked`, must be 0), the hub's peak RSS from the start of
  the traffic on (the kernel's high-water mark, `VmHWM`, brought down to the resident set
  once the load generator has logged in: a log-in's argon2 check takes 64 MiB for its
  fifty-odd milliseconds whatever the traffic; the peak before, log-ins and warm-up
  included, is reported beside it), what DVCQG was asked during the catch-up (calls per service,
  records and steps per call, calls in each second after T) and the CPU each process used from
  the probe on, so a slow drain can be told rate-limit bound from CPU bound.

The catch-up is bounded (`Plan.limit_s`); past it the outage is reported incomplete. This module
must never change the hub's code or its defaults beyond what `bench.hubproc` sets, must stop
everything it started whatever happens, and writes only the hub's scratch folder under
`var/bench/`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.e2e import E2eOptions, Phase, hub_phase
from bench.hubproc import UNIT
from bench.load import OpenLoopReport, drive_open, interleave
from bench.vdxp import Memory
from bench.watch import CpuMeter
from bench.workload import Script, StepKey, build
from connectors.national_portal.config import NationalPortalConfig
from hub.config import BrokerConfig
from sims.national_portal.simulator import DvcqgSimulator, step_key

CONNECTOR = "national_portal"
OFFERED_RATE = 200.0  # events/s, through the outage and the catch-up
LEAD_S = 5.0  # traffic before DVCQG goes down
POLL_S = 0.1  # completeness is checked this often
SAMPLE_S = 1.0  # /readyz?counts=1 this often
READYZ_TIMEOUT_S = 5.0
TARGET_FACTOR = 1.2
TARGET_SLACK_S = 5.0
LIMIT_MIN_S = 60.0  # the catch-up may take at least this long before it counts as incomplete
LIMIT_FACTOR = 6.0  # ...or this many times the ideal estimated beforehand, plus half the above
SPARE_TRAFFIC_S = 15.0  # pairs built beyond the bound, so traffic never runs out first
FIRST_TAG = 4  # workload tags 4, 5, ... (e2e uses 1-3; warm-ups 90 + tag)

FORMULA = "ideal = backlog / (rate_limit_per_s * batch_size - offered events/s)"


class RecoveryFailed(RuntimeError):
    """The run could not go on: traffic stopped, the hub died, or the settings cannot drain."""


def delivery_settings(tree: dict[str, Any]) -> dict[str, Any]:
    """What decides the catch-up, as the hub reads its configuration `tree` (its DVCQG
    connector's section and its broker's, each with the defaults of what `tree` leaves out)."""
    portal = NationalPortalConfig.model_validate(
        tree.get("connectors", {}).get("national_portal", {})
    )
    broker = BrokerConfig.model_validate(tree.get("broker", {}))
    return {
        "rate_limit_per_s": portal.rate_limit_per_s,
        "batch_size": portal.batch_size,
        "capacity_events_per_s": portal.rate_limit_per_s * portal.batch_size,
        "concurrency": portal.concurrency,
        "linger_ms": portal.linger_ms,
        "failure_threshold": portal.breaker.failure_threshold,
        "first_probe_s": portal.breaker.first_probe_s,
        "max_probe_interval_s": portal.breaker.recovery_s,
        "retry_attempts": portal.retry.attempts,
        "hold_max_s": broker.hold_max_s,
    }


def ideal_s(backlog: int, capacity: float, rate: float) -> float:
    """Seconds to drain `backlog` events at `capacity` events/s while `rate` keep coming."""
    if capacity <= rate:
        raise RecoveryFailed(f"capacity {capacity:.0f} events/s <= offered {rate:.0f}: no drain")
    return backlog / (capacity - rate)


@dataclass(frozen=True)
class Plan:
    outage_s: float
    capacity: float  # events/s the hub's settings allow
    rate: float = OFFERED_RATE
    lead_s: float = LEAD_S

    @property
    def limit_s(self) -> float:
        estimate = ideal_s(round(self.rate * self.outage_s), self.capacity, self.rate)
        return max(LIMIT_MIN_S, LIMIT_FACTOR * estimate + LIMIT_MIN_S / 2)

    @property
    def events(self) -> int:
        seconds = self.lead_s + self.outage_s + self.limit_s + SPARE_TRAFFIC_S
        return round(self.rate * seconds)


# -- watching -----------------------------------------------------------------------------------


class CallClock(Counter[str]):
    """The simulator's call counter, noting when (perf_counter) each call was counted."""

    def __init__(self) -> None:
        self.times: list[tuple[float, str]] = []
        super().__init__()

    def __setitem__(self, key: str, value: int) -> None:
        self.times.append((time.perf_counter(), key))
        super().__setitem__(key, value)

    def between(self, start: float, end: float) -> Counter[str]:
        return Counter(service for at, service in self.times if start <= at < end)


def install_call_clock(sim: DvcqgSimulator) -> CallClock:
    clock = CallClock()
    clock.update(sim.calls)
    clock.times.clear()
    sim.calls = clock
    return clock


@dataclass(frozen=True)
class Sample:
    at: float  # perf_counter
    state: str | None = None
    waiting: int | None = None
    parked: int | None = None
    probes: int | None = None
    held_max: int | None = None


async def read_counts(http: aiohttp.ClientSession, base_url: str) -> Sample:
    """The connector's state and counts from `/readyz?counts=1` (all None if it cannot)."""
    timeout = aiohttp.ClientTimeout(total=READYZ_TIMEOUT_S)
    try:
        async with http.get(
            f"{base_url}/readyz", params={"counts": "1"}, timeout=timeout
        ) as response:
            body = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return Sample(time.perf_counter())
    portal = body.get("connectors", {}).get(CONNECTOR, {}) if isinstance(body, dict) else {}
    outage = portal.get("outage") or {}
    return Sample(
        time.perf_counter(),
        portal.get("state"),
        portal.get("waiting"),
        portal.get("parked"),
        outage.get("probes"),
        outage.get("held_max"),
    )


async def sample_counts(phase: Phase, into: list[Sample]) -> None:
    """Every `SAMPLE_S` until cancelled."""
    while True:
        started = time.perf_counter()
        into.append(await read_counts(phase.http, phase.hub.base_url))
        await asyncio.sleep(max(0.0, SAMPLE_S - (time.perf_counter() - started)))


class Backlog:
    """What DVCQG must hold once everything sent before the switch back is delivered."""

    def __init__(
        self, sent: Iterable[StepKey], where: dict[StepKey, tuple[Script, int]], sim: DvcqgSimulator
    ) -> None:
        self.steps = list(sent)  # in the order they were sent, which is about delivery order
        self._next = 0
        newest: dict[str, tuple[Script, int]] = {}
        for key in self.steps:
            script, k = where[key]
            if k >= newest.get(script.code, (script, -1))[1]:
                newest[script.code] = (script, k)
        # Statuses may repeat (2, 4, 6, 4, ...): the steps tell which record was reached.
        self.statuses = {
            code: {str(record["TrangThaiHoSo"]) for record, _ in script.pairs[k:]}
            for code, (script, k) in newest.items()
        }
        self.steps_missing_at_start = sum(1 for key in self.steps if key not in sim.step_receipts)

    def delivered(self, sim: DvcqgSimulator) -> bool:
        received = sim.step_receipts
        while self._next < len(self.steps) and self.steps[self._next] in received:
            self._next += 1
        if self._next < len(self.steps):
            return False
        held = sim.dossiers
        self.statuses = {
            code: wanted
            for code, wanted in self.statuses.items()
            if str(held.get(code, {}).get("TrangThaiHoSo")) not in wanted
        }
        return not self.statuses

    def last_landed(self, first_seen: dict[StepKey, float]) -> float | None:
        return max((first_seen[k] for k in self.steps if k in first_seen), default=None)


def outage_log(path: Path) -> dict[str, Any]:
    """The connector's outages as the hub logged them (WARNING lines of its JSON log)."""
    downs, parked, recovered = 0, 0, None
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("connector") != CONNECTOR:
            continue
        name = event.get("event")
        if name == "connector_down":
            downs += 1
        elif name == "message_parked":
            parked += 1
        elif name == "connector_recovered":
            recovered = {k: event.get(k) for k in ("down_s", "probes", "held_max", "cause")}
    return {"outages": downs, "parked_logged": parked, "last_recovered": recovered}


# -- one outage ---------------------------------------------------------------------------------


def _check(phase: Phase, traffic: asyncio.Task[OpenLoopReport], *, may_end: bool) -> None:
    phase.hub.check_alive()
    if traffic.done():
        traffic.result()  # raises what stopped it
        if not may_end:
            raise RecoveryFailed("the offered traffic ran out before the catch-up began")


async def _hold(seconds: float, phase: Phase, traffic: asyncio.Task[OpenLoopReport]) -> None:
    deadline = time.perf_counter() + seconds
    while (left := deadline - time.perf_counter()) > 0:
        _check(phase, traffic, may_end=False)
        await asyncio.sleep(min(left, 0.5))


class DrainMeter:
    """CPU per process from the first DVCQG call after T (the probe) on: the drain itself."""

    def __init__(self, phase: Phase, calls: CallClock, calls_at_back: int) -> None:
        self.phase, self.calls, self.calls_at_back = phase, calls, calls_at_back
        self.meter: CpuMeter | None = None

    def watch(self) -> None:
        if self.meter is None and len(self.calls.times) > self.calls_at_back:
            self.meter = self.phase.cpu_meter()
            self.meter.start()

    def stop(self) -> dict[str, float]:
        return self.meter.stop() if self.meter is not None else {}


async def _until_delivered(
    run: Run, backlog: Backlog, cpu: DrainMeter, deadline: float
) -> float | None:
    """perf_counter time at which DVCQG held the backlog; None if `deadline` came first."""
    while True:
        now = time.perf_counter()
        if backlog.delivered(run.phase.sim):
            return now
        if now >= deadline:
            return None
        cpu.watch()
        _check(run.phase, run.traffic, may_end=True)
        await asyncio.sleep(POLL_S)


def _pushed(sim: DvcqgSimulator) -> tuple[int, int]:
    """Records and steps DVCQG accepted so far, repeats included."""
    return sum(sim.dossier_pushes.values()), sum(sim.step_receipts.values())


@dataclass
class Timeline:
    down_at: float = 0.0
    back_at: float = 0.0
    done_at: float | None = None
    watched_until: float = 0.0  # the catch-up's end, or where the bound cut it off
    calls_at_back: int = 0
    pushed_at_back: tuple[int, int] = (0, 0)
    pushed_at_done: tuple[int, int] = (0, 0)
    backlog: int | None = None
    steps_missing: int = 0
    last_landed: float | None = None
    sent_at_back: int = 0  # events offered so far
    sent_at_end: int = 0
    waiting_at_end: int | None = None
    cpu_catch_up: dict[str, float] = field(default_factory=dict)


@dataclass
class Run:
    """One outage's moving parts, alive inside `hub_phase`."""

    phase: Phase
    plan: Plan
    calls: CallClock
    report: OpenLoopReport
    traffic: asyncio.Task[OpenLoopReport]
    where: dict[StepKey, tuple[Script, int]]


async def _outage(run: Run) -> Timeline:
    """DVCQG down for the outage, back, and the catch-up watched to its end."""
    phase, plan, traffic = run.phase, run.plan, run.traffic
    sim, line = phase.sim, Timeline()
    await _hold(plan.lead_s, phase, traffic)
    line.down_at, sim.faults.mode = time.perf_counter(), "http_503"
    await _hold(plan.outage_s, phase, traffic)
    line.backlog = (await read_counts(phase.http, phase.hub.base_url)).waiting
    line.back_at, sim.faults.mode = time.perf_counter(), "ok"
    line.calls_at_back, line.pushed_at_back = len(run.calls.times), _pushed(sim)
    line.sent_at_back = 2 * run.report.pairs
    cpu = DrainMeter(phase, run.calls, line.calls_at_back)
    backlog = Backlog(run.report.sent_at, run.where, sim)
    line.steps_missing = backlog.steps_missing_at_start
    line.done_at = await _until_delivered(run, backlog, cpu, line.back_at + plan.limit_s)
    line.watched_until, line.pushed_at_done = time.perf_counter(), _pushed(sim)
    line.sent_at_end, line.cpu_catch_up = 2 * run.report.pairs, cpu.stop()
    line.waiting_at_end = (await read_counts(phase.http, phase.hub.base_url)).waiting
    line.last_landed = backlog.last_landed(phase.clock.first_seen)
    return line


def _since(at: float | None, origin: float) -> float | None:
    return None if at is None else round(at - origin, 2)


def _ratio(a: float | None, b: float | None, digits: int = 1) -> float | None:
    return None if a is None or not b else round(a / b, digits)


def _catch_up(line: Timeline, calls: CallClock) -> dict[str, Any]:
    """From T to the end of the catch-up; rates over the drain (from the probe on)."""
    end = line.done_at if line.done_at is not None else line.watched_until
    made = calls.between(line.back_at, end)
    count = sum(made.values())
    first = _first_call_after_back(line, calls)
    drain_s = end - first if first is not None else None
    records = line.pushed_at_done[0] - line.pushed_at_back[0]
    steps = line.pushed_at_done[1] - line.pushed_at_back[1]
    # Messages taken off the connector's queues: the backlog, plus what came in meanwhile,
    # less what was still waiting (messages whose dossier was already sent settle without a call).
    settled = None
    if line.backlog is not None and line.waiting_at_end is not None:
        settled = line.backlog + line.sent_at_end - line.sent_at_back - line.waiting_at_end
    seconds = [at - line.back_at for at, _ in calls.times[line.calls_at_back :] if at < end]
    per_second = Counter(int(t) for t in seconds)
    return {
        "dvcqg_calls": dict(made),
        "dvcqg_calls_per_second_after_switch": [
            per_second[i] for i in range(int(end - line.back_at) + 1)
        ],
        "calls_per_s_after_probe": _ratio(count, drain_s),
        "records_pushed": records,
        "steps_pushed": steps,
        "records_per_call": _ratio(records, made["DongBoHoSoMC"]),
        "steps_per_call": _ratio(steps, made["CapNhatTienDoHoSoMC"]),
        "events_offered_meanwhile": line.sent_at_end - line.sent_at_back,
        "waiting_at_end": line.waiting_at_end,
        "messages_settled": settled,
        "messages_settled_per_s_after_probe": _ratio(settled, drain_s),
        "messages_per_call": _ratio(settled, count),
        "cpu_cores_used": line.cpu_catch_up,
    }


def _first_call_after_back(line: Timeline, calls: CallClock) -> float | None:
    """When DVCQG counted the first call after T: the probe (every call from T is answered)."""
    after = calls.times[line.calls_at_back : line.calls_at_back + 1]
    return after[0][0] if after else None


def _probe_latency(line: Timeline, calls: CallClock) -> float | None:
    return _since(_first_call_after_back(line, calls), line.back_at)


def _figures(
    plan: Plan, settings: dict[str, Any], line: Timeline, calls: CallClock
) -> dict[str, Any]:
    """What the issue asks for, from a finished timeline."""
    backlog = line.backlog
    ideal = None if backlog is None else ideal_s(backlog, plan.capacity, plan.rate)
    recovery = _since(line.done_at, line.back_at)
    target = None if ideal is None else TARGET_FACTOR * ideal + TARGET_SLACK_S
    probe = _probe_latency(line, calls)
    within = None if recovery is None or target is None else recovery <= target
    return {
        "outage_s": plan.outage_s,
        "backlog_messages": backlog,
        "steps_not_at_dvcqg_at_switch_back": line.steps_missing,
        "complete": line.done_at is not None,
        "catch_up_limit_s": round(plan.limit_s, 1),
        "recovery_s": recovery,
        "ideal_s": None if ideal is None else round(ideal, 2),
        "target_s": None if target is None else round(target, 2),
        "ratio_to_ideal": None if recovery is None or not ideal else round(recovery / ideal, 2),
        "within_target": False if line.done_at is None else within,
        "probe_latency_s": probe,
        "drain_after_probe_s": _minus(recovery, probe),
        "last_backlog_step_landed_s": _since(line.last_landed, line.back_at),
        "dvcqg_calls_during_outage": dict(calls.between(line.down_at, line.back_at)),
        "catch_up": _catch_up(line, calls),
        "capacity_events_per_s": settings["capacity_events_per_s"],
    }


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 2)


def _series(samples: list[Sample], origin: float) -> list[list[Any]]:
    return [[round(s.at - origin, 1), s.state, s.waiting, s.parked] for s in samples]


def _mb(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass
class Ending:
    """What is read once the traffic stopped, before the hub is."""

    cpu_cores_used: dict[str, float]
    counts: Sample
    hub_log: dict[str, Any]
    rss_peak_mb: float | None
    rss_end_mb: float | None

    @classmethod
    async def read(cls, phase: Phase, cpu: CpuMeter) -> Ending:
        memory = Memory(phase.hub.pid)
        return cls(
            cpu.stop(),
            await read_counts(phase.http, phase.hub.base_url),
            outage_log(phase.hub.log_path),
            _mb(memory.peak_mb()),
            _mb(memory.rss_mb()),
        )


def _outage_figures(line: Timeline, samples: list[Sample], ending: Ending) -> dict[str, Any]:
    during = [s for s in samples if line.down_at <= s.at <= line.back_at]
    waiting = [s.waiting for s in during if s.waiting is not None]
    if line.backlog is not None:
        waiting.append(line.backlog)
    sampled_probes = [s.probes for s in during if s.probes is not None]
    recovered = ending.hub_log["last_recovered"] or {}
    return {
        "peak_backlog_messages": max(waiting, default=None),
        "probes": recovered.get("probes", max(sampled_probes, default=None)),
        "held_max": recovered.get("held_max"),
        "hub_outage_log": ending.hub_log,
        "parked_at_end": ending.counts.parked,
        "waiting_at_end": ending.counts.waiting,
        "rss_peak_mb": ending.rss_peak_mb,
        "rss_end_mb": ending.rss_end_mb,
        "cpu_cores_used": ending.cpu_cores_used,
        "counts_series": _series(samples, line.down_at),
    }


async def measure_one(options: E2eOptions, outage_s: float, tag: int) -> dict[str, Any]:
    """One outage of `outage_s` seconds on a fresh hub and simulator."""
    plan = Plan(outage_s, delivery_settings(options.hub_overrides)["capacity_events_per_s"])
    work = build(plan.events, seed=20 + tag, madonvi=UNIT, tag=tag)
    pairs = interleave(work.scripts, options.window)
    where = {step_key(step): (s, k) for s in work.scripts for k, (_, step) in enumerate(s.pairs)}
    async with hub_phase(options, f"rec{round(outage_s)}") as phase:
        settings = delivery_settings(phase.hub.settings)  # exactly what the hub was given
        plan = Plan(outage_s, settings["capacity_events_per_s"])
        await phase.warm_up(tag)
        client = phase.client()
        await client.login()
        memory = Memory(phase.hub.pid)
        peak_before = memory.peak_mb()  # the warm-up and the log-ins' argon2 checks
        memory.reset()
        calls, report, samples = install_call_clock(phase.sim), OpenLoopReport(), list[Sample]()
        cpu = phase.cpu_meter()
        cpu.start()
        traffic = asyncio.create_task(drive_open(client, pairs, plan.rate / 2, report))
        sampler = asyncio.create_task(sample_counts(phase, samples))
        try:
            line = await _outage(Run(phase, plan, calls, report, traffic, where))
        finally:
            for task in (traffic, sampler):
                task.cancel()
            await asyncio.gather(traffic, sampler, return_exceptions=True)
        ending = await Ending.read(phase, cpu)
    return {
        **_figures(plan, settings, line, calls),
        **_outage_figures(line, samples, ending),
        "offered_events_per_s": plan.rate,
        "traffic": "kept on through the outage and the catch-up",
        "events_sent": 2 * report.pairs,
        "max_send_slip_ms": round(report.max_slip_s * 1000, 1),
        "rss_peak_before_traffic_mb": _mb(peak_before),
        "settings": settings,
        "hub_exit_code": phase.hub.exit_code,
    }


async def measure_recovery(options: E2eOptions, outages_s: Iterable[float]) -> dict[str, Any]:
    """Each outage in turn; one that fails is reported and the next still runs."""
    outages: dict[str, Any] = {}
    for i, outage_s in enumerate(outages_s):
        print(f"[bench]   recovery: DVCQG down {outage_s:g} s …", flush=True)
        try:
            outages[f"{outage_s:g}"] = await measure_one(options, outage_s, FIRST_TAG + i)
        except Exception as exc:  # reported in the table; the other outages still run
            print(f"[bench]   recovery {outage_s:g} s failed: {exc!r}", flush=True)
            outages[f"{outage_s:g}"] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    return {
        "offered_events_per_s": OFFERED_RATE,
        "lead_s": LEAD_S,
        "traffic": "kept at the offered rate through each outage and its catch-up",
        "formula": FORMULA,
        "target": f"recovery <= {TARGET_FACTOR} * ideal + {TARGET_SLACK_S:g} s",
        "settings": delivery_settings(options.hub_overrides),
        "outages": outages,
        "failures": sum(1 for o in outages.values() if "error" in o),
    }
