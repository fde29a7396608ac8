"""Watching from outside: when DVCQG (the simulator) received what, and what processes cost.

* `StepClock` replaces the simulator's `step_receipts` counter with one that also notes when
  each step was first counted, so step latency is measured where the step lands, to the
  microsecond, without polling;
* `Delivery.wait` polls the simulator until it holds every dossier's newest status and every
  step of a workload, failing fast if the hub dies or delivery stalls;
* `RssSampler` samples the hub process's resident memory once a second; `CpuMeter` tells the
  CPU seconds the hub, the bench and the broker used over a phase.

This module must never change what the simulator answers: it only observes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

# No stubs ship for psutil; with them installed the ignore is harmless.
import psutil  # type: ignore[import-untyped,unused-ignore]

from bench.workload import StepKey, Workload
from sims.national_portal.simulator import DvcqgSimulator
from tests.support import HubProcess

POLL_S = 0.01
SWEEP_EVERY_S = 1.0
MB = 1024 * 1024
STUCK_NAMED = 5  # dossiers a stall names


class DeliveryStalled(RuntimeError):
    """The simulator stopped receiving what the hub accepted."""


class StepClock(Counter[StepKey]):
    """A Counter that remembers when (perf_counter) each key was first counted."""

    def __init__(self) -> None:
        self.first_seen: dict[StepKey, float] = {}
        super().__init__()

    def __setitem__(self, key: StepKey, value: int) -> None:
        if key not in self.first_seen:
            self.first_seen[key] = time.perf_counter()
        super().__setitem__(key, value)


def install_clock(sim: DvcqgSimulator) -> StepClock:
    clock = StepClock()
    clock.update(sim.step_receipts)
    sim.step_receipts = clock
    return clock


@dataclass
class _Pending:
    statuses: dict[str, str]
    steps: int

    def sweep(self, sim: DvcqgSimulator) -> None:
        held = sim.dossiers
        done = [
            c for c, s in self.statuses.items() if str(held.get(c, {}).get("TrangThaiHoSo")) == s
        ]
        for code in done:
            del self.statuses[code]

    def describe(self, sim: DvcqgSimulator) -> str:
        """What is missing, naming the first few dossiers with what DVCQG holds for each
        (the statuses it received, in order), so that a stall can be traced in the hub's store."""
        stuck = [
            f"{code} expected {want}, DVCQG received {sim.dossier_history.get(code, [])}"
            for code, want in list(self.statuses.items())[:STUCK_NAMED]
        ]
        return (
            f"{len(self.statuses)} dossiers not at their newest status, "
            f"{self.steps - len(sim.step_receipts)} steps missing"
            + (f" ({'; '.join(stuck)})" if stuck else "")
        )


class Delivery:
    """Made before a workload is sent; `wait` returns once the simulator holds all of it.

    Steps the simulator held before (a warm-up's) are counted in the baseline, so they are
    not mistaken for this workload's.
    """

    def __init__(self, sim: DvcqgSimulator, workload: Workload) -> None:
        self.sim = sim
        self.expected_steps = workload.step_keys()
        target = len(sim.step_receipts) + len(self.expected_steps)
        self.pending = _Pending(workload.final_status(), target)

    async def wait(self, hub: HubProcess, stall_s: float = 60.0) -> float:
        """perf_counter time at which the simulator held the whole workload's final state."""
        sim, pending = self.sim, self.pending
        progress, moved_at, swept_at = -1, time.perf_counter(), 0.0
        while True:
            now = time.perf_counter()
            received = len(sim.step_receipts)
            if received >= pending.steps or now - swept_at > SWEEP_EVERY_S:
                pending.sweep(sim)
                swept_at = now
                if received >= pending.steps and not pending.statuses:
                    break
            if received + len(sim.dossiers) != progress:
                progress, moved_at = received + len(sim.dossiers), now
            elif now - moved_at > stall_s:
                raise DeliveryStalled(f"no delivery for {stall_s:.0f}s: {pending.describe(sim)}")
            hub.check_alive()
            await asyncio.sleep(POLL_S)
        missing = self.expected_steps - set(sim.step_receipts)
        if missing:
            raise DeliveryStalled(f"{len(missing)} expected steps never arrived, others did")
        return now


# -- processes ----------------------------------------------------------------------------------


def process(pid: int | None = None) -> psutil.Process:
    """A process by id (this one by default), for `CpuMeter` and `RssSampler`."""
    return psutil.Process(pid)


def broker_processes() -> list[psutil.Process]:
    """The RabbitMQ VM (beam.smp) started under this process, if any."""
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    return [p for p in children if _name(p).startswith("beam")]


def _name(process: psutil.Process) -> str:
    try:
        return str(process.name())
    except psutil.Error:
        return ""


def _cpu_seconds(processes: Iterable[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


@dataclass
class CpuMeter:
    """CPU seconds per named group of processes between `start()` and `stop()`."""

    groups: dict[str, list[psutil.Process]]
    _begin: dict[str, float] = field(default_factory=dict)
    _wall: float = 0.0

    def start(self) -> None:
        self._begin = {name: _cpu_seconds(ps) for name, ps in self.groups.items()}
        self._wall = time.perf_counter()

    def stop(self) -> dict[str, float]:
        """Share of one core each group used (1.0 = one core busy all the time)."""
        wall = max(time.perf_counter() - self._wall, 1e-9)
        return {
            name: round((_cpu_seconds(ps) - self._begin.get(name, 0.0)) / wall, 2)
            for name, ps in self.groups.items()
        }


@dataclass
class MachineMeter:
    """How busy the whole machine was between `start()` and `stop()`: every process's, this
    run's or not, as a share of all its cores (idle and I/O wait count as not busy)."""

    _begin: Any = None

    def start(self) -> None:
        self._begin = psutil.cpu_times()

    def stop(self) -> dict[str, Any]:
        end = psutil.cpu_times()
        spent = {name: getattr(end, name) - getattr(self._begin, name) for name in end._fields}
        total = sum(spent.values()) or 1e-9
        waiting = spent.get("idle", 0.0) + spent.get("iowait", 0.0)
        return {"cores": psutil.cpu_count(), "busy_share": round(1 - waiting / total, 3)}


def cpu_meter(**groups: list[psutil.Process]) -> CpuMeter:
    """A meter over the given groups plus the local RabbitMQ node, if this run started one."""
    broker = broker_processes()
    return CpuMeter({**groups, **({"rabbitmq": broker} if broker else {})})


@dataclass(frozen=True)
class RssSample:
    at: float
    rss_mb: float
    events: int


class RssSampler:
    """Samples a process's RSS every `interval_s`, with an event count beside each sample."""

    def __init__(
        self, process: psutil.Process, events: Callable[[], int], interval_s: float = 1.0
    ) -> None:
        self.process = process
        self.events = events
        self.interval_s = interval_s
        self.samples: list[RssSample] = []
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> RssSample:
        point = RssSample(time.perf_counter(), self.process.memory_info().rss / MB, self.events())
        self.samples.append(point)
        return point

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rss-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


# -- CPU seconds of process trees ---------------------------------------------------------------


def tree_cpu_seconds(root: psutil.Process) -> float:
    """CPU seconds used so far by `root` and every process it started, the ended ones too.

    A server that forks a process per connection or job (PostgreSQL's postmaster) waits for
    each child it started, so an ended child's time is in the root's `children_*` times and a
    live one's in its own: the sum is right however many came and went between two readings.
    """
    try:
        times = root.cpu_times()
        children = root.children(recursive=True)
    except psutil.Error:
        return 0.0
    own = times.user + times.system + times.children_user + times.children_system
    return own + _cpu_seconds(children)


@dataclass
class CpuClock:
    """CPU seconds per named part between `start()` and `stop()`; each part is a function
    returning the CPU seconds it has used so far (`tree_cpu_seconds`, a sum over processes)."""

    parts: dict[str, Callable[[], float]]
    _begin: dict[str, float] = field(default_factory=dict)
    _wall: float = 0.0

    def start(self) -> None:
        self._begin = {name: read() for name, read in self.parts.items()}
        self._wall = time.perf_counter()

    def stop(self) -> tuple[float, dict[str, float]]:
        """Wall seconds since `start()`, and the CPU seconds each part used in them."""
        wall = time.perf_counter() - self._wall
        return wall, {name: read() - self._begin[name] for name, read in self.parts.items()}


def processes_cpu(processes: list[psutil.Process]) -> Callable[[], float]:
    """For `CpuClock`: the CPU seconds of these processes (their own, not their children's)."""
    return lambda: _cpu_seconds(processes)


def listening_process(port: int) -> psutil.Process | None:
    """The local process listening on TCP `port` (a broker this run did not start), if any."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return psutil.Process(conn.pid) if conn.pid else None
    return None
