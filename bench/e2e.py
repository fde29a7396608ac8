"""The hub end to end: a `hub run` process between a one-stop load generator and DVCQG.

Each phase starts its own hub (own queue prefix, own SQLite store) and its own DVCQG simulator
in this process, warms the hub up with a few dossiers, then measures:

* `measure_throughput`: events offered by several callers as fast as the facade answers;
  events per second from the first send until the simulator holds every dossier's newest
  status and every step;
* `measure_latency`: an open loop at a fixed rate; per step, the time from the moment the
  load generator sent it to the moment the simulator first counted it;
* `measure_soak`: a long stream while the hub's RSS is sampled every second.

Beside each figure it records where the CPU went (hub, bench, RabbitMQ) and what reached DVCQG
(calls and records pushed), so a bottleneck can be told from the numbers. This module must
never change the hub's code or its production defaults beyond what `bench.hubproc` sets.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import psutil  # type: ignore[import-untyped,unused-ignore]

from bench.hubproc import (
    PORTAL_PASSWORD,
    PORTAL_USER,
    SOURCE_PASSWORD,
    SOURCE_USER,
    UNIT,
    bench_hub,
)
from bench.load import FacadeClient, Progress, drive_closed, drive_open, interleave
from bench.stages import StageProfiler, Window, window_of
from bench.watch import (
    CpuMeter,
    Delivery,
    RssSample,
    RssSampler,
    StepClock,
    cpu_meter,
    install_clock,
    process,
)
from bench.workload import Workload, build
from sims.national_portal.simulator import DvcqgSimulator
from tests.support import HubProcess

WARM_UP_EVENTS = 400
SOAK_WARM_UP_SHARE = 0.1  # RSS "at start" is taken once this share of events was accepted
HTTP_CONNECTIONS = 256


@dataclass(frozen=True)
class E2eOptions:
    broker_url: str
    workdir: Path
    run_id: str
    callers: int = 4
    window: int = 50
    hub_overrides: dict[str, Any] = field(default_factory=dict)
    # Set by the `stages` phase: the measured windows are profiled (`bench.stages`).
    profiler: StageProfiler | None = None
    # Set by the `scale` phase: the PostgreSQL server the hubs' store is on, whose CPU (its
    # process tree's) a payments round reports beside the hubs', the broker's and the bench's.
    store_server: psutil.Process | None = None

    @property
    def profiled(self) -> Window:
        return window_of(self.profiler)


@dataclass
class Phase:
    """One hub and one simulator, alive for one measurement."""

    options: E2eOptions
    prefix: str
    sim: DvcqgSimulator
    hub: HubProcess
    http: aiohttp.ClientSession
    clock: StepClock

    def client(self) -> FacadeClient:
        credentials = (SOURCE_USER, SOURCE_PASSWORD)
        return FacadeClient(self.http, self.hub.facade_url, credentials, UNIT, Progress())

    def cpu_meter(self) -> CpuMeter:
        return cpu_meter(hub=[process(self.hub.pid)], bench=[process()])

    def portal_calls(self) -> dict[str, int]:
        return {
            "DongBoHoSoMC": self.sim.calls["DongBoHoSoMC"],
            "CapNhatTienDoHoSoMC": self.sim.calls["CapNhatTienDoHoSoMC"],
            "dossier_pushes": sum(self.sim.dossier_pushes.values()),
        }

    async def work_queue_depth(self) -> int | None:
        """Messages waiting in the hub's DVCQG work queue now (None if it cannot be read)."""
        name = f"{self.prefix}.national_portal.work"
        try:
            connection = await aio_pika.connect(self.options.broker_url)
            async with connection:
                channel = await connection.channel()
                queue = await channel.declare_queue(name, passive=True)
                count = queue.declaration_result.message_count
                return int(count) if count is not None else None
        except aio_pika.exceptions.AMQPException:
            return None

    async def warm_up(self, tag: int) -> None:
        work = build(WARM_UP_EVENTS, seed=90 + tag, madonvi=UNIT, tag=90 + tag)
        delivery = Delivery(self.sim, work)
        await self.run_closed(self.client(), work)
        await delivery.wait(self.hub)

    async def run_closed(self, client: FacadeClient, work: Workload) -> None:
        opts = self.options
        await drive_closed(client, work.scripts, callers=opts.callers, window=opts.window)


@asynccontextmanager
async def hub_phase(options: E2eOptions, name: str) -> AsyncIterator[Phase]:
    prefix = f"{options.run_id}-{name}"
    connector = aiohttp.TCPConnector(limit=HTTP_CONNECTIONS)
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim,
        bench_hub(
            options.workdir / name, options.broker_url, prefix, sim.url, options.hub_overrides
        ) as hub,
        aiohttp.ClientSession(connector=connector) as http,
    ):
        yield Phase(options, prefix, sim, hub, http, install_clock(sim))


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


# -- throughput ---------------------------------------------------------------------------------


async def measure_throughput(options: E2eOptions, events: int) -> dict[str, Any]:
    work = build(events, seed=11, madonvi=UNIT, tag=1)
    async with hub_phase(options, "tput") as phase:
        await phase.warm_up(1)
        client, cpu, calls_before = phase.client(), phase.cpu_meter(), phase.portal_calls()
        delivery = Delivery(phase.sim, work)
        cpu.start()
        async with options.profiled("dossier_events", phase.hub.pid, work.events):
            await phase.run_closed(client, work)
            backlog = await phase.work_queue_depth()
            done_at = await delivery.wait(phase.hub)
        cpu_share = cpu.stop()
        calls = _delta(phase.portal_calls(), calls_before)
    progress = client.progress
    seconds = done_at - progress.first_sent
    accept_s = progress.last_acked - progress.first_sent
    return {
        "events": work.events,
        "dossiers": len(work.scripts),
        "callers": options.callers,
        "batch_items": options.window,
        "seconds": round(seconds, 2),
        "events_per_s": round(work.events / seconds, 1),
        "accepted_events_per_s": round(work.events / accept_s, 1),
        "facade_calls": progress.calls,
        "facade_retries": progress.retries,
        "work_queue_backlog_when_all_accepted": backlog,
        "dvcqg": calls,
        "cpu_cores_used": cpu_share,
        "hub_exit_code": phase.hub.exit_code,
    }


# -- latency ------------------------------------------------------------------------------------


def _percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


def latency_summary(latencies_s: list[float]) -> dict[str, float]:
    values = sorted(v * 1000 for v in latencies_s)
    return {
        "p50_ms": round(_percentile(values, 0.50), 1),
        "p90_ms": round(_percentile(values, 0.90), 1),
        "p99_ms": round(_percentile(values, 0.99), 1),
        "max_ms": round(values[-1], 1) if values else float("nan"),
        "mean_ms": round(statistics.fmean(values), 1) if values else float("nan"),
    }


async def measure_latency(options: E2eOptions, seconds: float, rate: float) -> dict[str, Any]:
    """Open loop, one record or one step per call (as an adapter sends them one by one): the
    step latency at `rate`, and the rate the calls were answered at (the hub's capacity for
    one-item calls, when it is below the offered rate). Profiled in the stages phase as the
    flow `dossier_events_one_item`."""
    work = build(round(seconds * rate), seed=12, madonvi=UNIT, tag=2)
    pairs = interleave(work.scripts, options.window)
    async with hub_phase(options, "lat") as phase:
        await phase.warm_up(2)
        client, cpu = phase.client(), phase.cpu_meter()
        delivery = Delivery(phase.sim, work)
        cpu.start()
        async with options.profiled("dossier_events_one_item", phase.hub.pid, work.events):
            report = await drive_open(client, pairs, rate / 2)
            await delivery.wait(phase.hub)
        cpu_share = cpu.stop()
        first_seen = phase.clock.first_seen
        latencies = [first_seen[key] - sent for key, sent in report.sent_at.items()]
    return {
        "offered_events_per_s": rate,
        "achieved_events_per_s": round(2 * report.pairs / report.seconds, 1),
        "answered_events_per_s": round(2 * report.pairs / report.answered_s, 1),
        "seconds": round(report.seconds, 1),
        "steps_measured": len(latencies),
        "max_send_slip_ms": round(report.max_slip_s * 1000, 1),
        **latency_summary(latencies),
        "cpu_cores_used": cpu_share,
        "hub_exit_code": phase.hub.exit_code,
    }


# -- soak ---------------------------------------------------------------------------------------


def _slope_mb_per_10k(samples: list[RssSample]) -> float | None:
    if len(samples) < 3 or samples[-1].events == samples[0].events:
        return None
    xs = [float(s.events) for s in samples]
    ys = [s.rss_mb for s in samples]
    return round(statistics.linear_regression(xs, ys).slope * 10_000, 2)


def rss_summary(samples: list[RssSample], events: int, sending_until: float) -> dict[str, Any]:
    warm = [s for s in samples if s.events >= events * SOAK_WARM_UP_SHARE]
    second_half = [s for s in samples if s.events >= events / 2 and s.at <= sending_until]
    start = warm[0] if warm else samples[0]
    return {
        "rss_start_mb": round(start.rss_mb, 1),
        "rss_peak_mb": round(max(s.rss_mb for s in samples), 1),
        "rss_end_mb": round(samples[-1].rss_mb, 1),
        "slope_mb_per_10k_events": _slope_mb_per_10k(second_half),
        "samples": len(samples),
    }


async def measure_soak(options: E2eOptions, events: int) -> dict[str, Any]:
    work = build(events, seed=13, madonvi=UNIT, tag=3)
    async with hub_phase(options, "soak") as phase:
        await phase.warm_up(3)
        client, cpu = phase.client(), phase.cpu_meter()
        sampler = RssSampler(process(phase.hub.pid), lambda: client.progress.acked)
        delivery = Delivery(phase.sim, work)
        sampler.start()
        cpu.start()
        try:
            await phase.run_closed(client, work)
            done_at = await delivery.wait(phase.hub)
            sampler.sample()
        finally:
            await sampler.stop()
        cpu_share = cpu.stop()
    progress = client.progress
    seconds = done_at - progress.first_sent
    return {
        "events": work.events,
        "dossiers": len(work.scripts),
        "seconds": round(seconds, 1),
        "events_per_s": round(work.events / seconds, 1),
        **rss_summary(sampler.samples, work.events, progress.last_acked),
        "rss_series": [
            [round(s.at - progress.first_sent, 1), round(s.rss_mb, 1), s.events]
            for s in sampler.samples
        ],
        "cpu_cores_used": cpu_share,
        "hub_exit_code": phase.hub.exit_code,
    }


def now_stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
