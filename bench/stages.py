"""Where each millisecond goes: the hub's CPU per event, split by stage, from a sampling profiler.

`StageProfiler` attaches py-spy (`record --pid`, raw collapsed stacks, full file names, no
line numbers, without pausing the hub: `--nonblocking`) to the hub process for one measured
window, and meters the hub's CPU seconds over the same window with psutil. Each sample's
stack is put in one stage by `classify`, and the hub's CPU time is shared out in proportion:
CPU milliseconds per event per stage. py-spy counts only threads that are running, so the
samples of the main thread and of aiosqlite's thread together stand for the CPU the hub used.

Stages, by where the time is spent (the first rule that matches, see `classify`):

* `logging`: structlog and the standard library's logging, wherever they are called from;
* `dashboard bookkeeping`: the consumers' statistics, the dashboard's sampler and board,
  sync-lag figures, Prometheus metrics;
* `store`: SQLite (aiosqlite's thread and the statements), the store's Python side (the fold
  of events into states, the slices of the connectors);
* then, by the innermost frame of the hub's own code: `HTTP parse and validation` (doors,
  the facade's routes, validation, authentication, signatures), `mapping` (wire ⇄ canonical,
  code tables, the canonical models), `publish and confirm` (intake, outbox relay, broker
  publishing), `consume` (the consumer wrapper, acks, lanes), `outbound HTTP` (the
  connectors' clients to DVCQG, the subscribers, the guard around them), `flow logic` (a
  connector's own glue: sinks, the catalogue's sync);
* what runs under no hub frame: `broker I/O` (aiormq and pamqp reading and writing frames,
  confirms and deliveries alike), `HTTP server I/O` (aiohttp's protocol before a handler
  runs) and `HTTP client I/O`, `event loop` (asyncio itself), and `other`.

The flame graph of each window is kept under `var/bench/` as py-spy's collapsed stacks
(`.folded`, which speedscope, flamegraph.pl and inferno read) and as speedscope JSON.
Profiling costs the hub a little (py-spy reads its memory about `RATE_HZ` times a second from
another process, on this 2-core machine), so it runs in its own phase (`stages`), never
during the rounds whose figures are judged against a target. This module must never change
the hub: it only watches it.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped,unused-ignore]

from bench.watch import process

RATE_HZ = 97  # not a divisor of the hub's timers' periods, so no period is always missed
STOP_TIMEOUT_S = 20.0
ATTACH_S = 0.3  # py-spy needs a moment to read the target's interpreter before it samples

STAGES = (
    "HTTP parse and validation",
    "mapping",
    "store",
    "publish and confirm",
    "consume",
    "outbound HTTP",
    "flow logic",
    "dashboard bookkeeping",
    "logging",
    "broker I/O",
    "HTTP server I/O",
    "HTTP client I/O",
    "event loop",
    "other",
)

# (stage, pattern on a frame's file path). First pass: anywhere in the stack (logging is
# called from everywhere, and what it costs is logging's whatever the caller).
_ANYWHERE = (("logging", r"/structlog/|/logging/__init__\.py|/hub/logs\.py"),)
# Second pass: the innermost frame of the hub's own code decides.
_OWN = (
    ("dashboard bookkeeping", r"/hub/watch\.py|/hub/dashboard/|/hub/synclag\.py|/hub/metrics\.py"
     r"|/hub/store/dashboard\.py|/connectors/[^/]+/dashboard\.py"),
    ("store", r"/hub/store/|/hub/dossier_state\.py|/connectors/[^/]+/(store|ledger)\.py"
     r"|/procedures/store\.py"),
    ("mapping", r"/mapping\.py|/catalogue_mapping\.py|/hub/fieldmap\.py|/hub/status_mapping\.py"
     r"|/schemas/|/procedures/(records|versioning|models)\.py|/connectors/[^/]+/models\.py"),
    ("HTTP parse and validation", r"/routes\.py|/hub/api\.py|/hub/validation\.py|/hub/auth\.py"
     r"|/hub/httputil\.py|/hub/slowclients\.py|/hub/ratelimit\.py|/hub/tokens\.py"
     r"|/signing\.py|/connectors/[^/]+/api\.py|/procedures/api\.py|/hub/tls\.py"),
    ("publish and confirm", r"/hub/intake\.py|/hub/broker\.py"),
    ("consume", r"/hub/consumer\.py|/hub/dlq\.py"),
    ("outbound HTTP", r"/client\.py|/hub/resilience\.py|/hub/outage\.py"
     r"|/connectors/[^/]+/soap\.py"),
    ("flow logic", r"/(hub|connectors|schemas)/"),
)  # fmt: skip
# Third pass: libraries under no frame of the hub's own (aiosqlite's thread, the loop's
# callbacks).
_LIBRARIES = (
    ("store", r"/aiosqlite/|/sqlite3/"),
    ("dashboard bookkeeping", r"/prometheus_client/"),
    ("broker I/O", r"/aiormq/|/pamqp/|/aio_pika/"),
    ("HTTP server I/O", r"/aiohttp/web|/aiohttp/http_|/aiohttp/_http|/aiohttp/streams"),
    ("HTTP client I/O", r"/aiohttp/"),
    ("event loop", r"/asyncio/|/selectors\.py|uvloop"),
)


def _compile(rules: tuple[tuple[str, str], ...]) -> list[tuple[str, re.Pattern[str]]]:
    return [(stage, re.compile(pattern)) for stage, pattern in rules]


_PASSES = [_compile(_ANYWHERE), _compile(_OWN), _compile(_LIBRARIES)]
_SITE = re.compile(r"/(site|dist)-packages/")
# Frames under many stacks that are no stage of their own: the process's entry and the HTTP
# middlewares every request passes through.
_ENTRY = re.compile(r"/hub/cli\.py|^(unavailable|middleware|_guard) \(")
_FILE = re.compile(r"\(([^()]*)\)\s*$")


def frame_file(frame: str) -> str:
    """`function (path/to/file.py)` → `path/to/file.py` (py-spy's raw format)."""
    found = _FILE.search(frame)
    return found.group(1) if found else ""


def classify(frames: list[str]) -> str:
    """One sample's stage; `frames` outermost first, as py-spy writes them."""
    files = [frame_file(f) for f in reversed(frames)]
    for stage, pattern in _PASSES[0]:
        if any(pattern.search(f) for f in files):
            return stage
    own = [
        f for f, frame in zip(files, reversed(frames), strict=True)
        if not _SITE.search(f) and not _ENTRY.search(frame)
    ]  # fmt: skip
    for f in own:
        for stage, pattern in _PASSES[1]:
            if pattern.search(f):
                return stage
    for f in files:
        for stage, pattern in _PASSES[2]:
            if pattern.search(f):
                return stage
    return "other"


def parse_folded(text: str) -> Counter[str]:
    """py-spy's raw output (`frame;frame;… count` per line) → samples per stack."""
    stacks: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def by_stage(stacks: Counter[str]) -> Counter[str]:
    out: Counter[str] = Counter()
    for stack, count in stacks.items():
        out[classify(stack.split(";"))] += count
    return out


def hot_functions(stacks: Counter[str], top: int = 12) -> list[tuple[str, int]]:
    """The innermost frames of the hub's own code that most samples stopped in (self time in
    the hub's code, libraries it called included)."""
    found: Counter[str] = Counter()
    for stack, count in stacks.items():
        frames = stack.split(";")
        own = [
            f for f in reversed(frames) if not _SITE.search(frame_file(f)) and not _ENTRY.search(f)
        ]
        mine = next((f for f in own if re.search(r"/(hub|connectors|schemas)/", f)), frames[-1])
        found[_short(mine)] += count
    return found.most_common(top)


def _short(frame: str) -> str:
    path = frame_file(frame)
    name = frame[: -len(path) - 2].strip() if path else frame
    parts = path.split("/")
    for anchor in ("hub", "connectors", "schemas", "site-packages"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + (anchor == "site-packages") :]
            break
    else:
        parts = parts[-2:]
    return f"{name} ({'/'.join(parts)})"


def speedscope(stacks: Counter[str], name: str) -> dict[str, Any]:
    """The collapsed stacks as a speedscope "sampled" profile (one sample per count)."""
    frames: dict[str, int] = {}
    samples: list[list[int]] = []
    weights: list[int] = []
    for stack, count in stacks.items():
        ids = []
        for frame in stack.split(";"):
            ids.append(frames.setdefault(frame, len(frames)))
        samples.append(ids)
        weights.append(count)
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": [{"name": _short(f), "file": frame_file(f)} for f in frames]},
        "profiles": [
            {
                "type": "sampled",
                "name": name,
                "unit": "none",
                "startValue": 0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            }
        ],
        "name": name,
        "exporter": "bench.stages",
    }


# -- the profiler -------------------------------------------------------------------------------


def py_spy() -> str | None:
    """py-spy next to this Python (the venv's), or on the PATH."""
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


@dataclass
class StageProfiler:
    """Profiles labelled windows of hub processes into `folder`; `results` by label."""

    folder: Path
    rate_hz: int = RATE_HZ
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    @asynccontextmanager
    async def window(self, label: str, pid: int, events: int) -> AsyncIterator[None]:
        """Profile hub `pid` while the body runs; `events` handled by the hub meanwhile."""
        self.folder.mkdir(parents=True, exist_ok=True)
        folded = self.folder / f"profile-{label}.folded"
        folded.unlink(missing_ok=True)
        hub = process(pid)
        spy = await self._start(pid, folded)
        await asyncio.sleep(ATTACH_S)
        before, wall0 = _cpu(hub), time.perf_counter()
        try:
            yield
        finally:
            after = _cpu(hub)
            wall_s = time.perf_counter() - wall0
            error = await self._stop(spy)
            cpu = Cpu(after.main_s - before.main_s, after.total_s - before.total_s)
            self.results[label] = self._result(label, folded, events, cpu, wall_s, error)

    async def _start(self, pid: int, folded: Path) -> asyncio.subprocess.Process | str:
        exe = py_spy()
        if exe is None:
            return "py-spy is not installed (pip install py-spy)"
        log = (self.folder / "py-spy.log").open("ab")
        with log:
            return await asyncio.create_subprocess_exec(
                exe, "record", "--pid", str(pid), "--format", "raw", "--full-filenames",
                "--nolineno", "--nonblocking", "--rate", str(self.rate_hz), "--output",
                str(folded), stdout=log, stderr=log,
            )  # fmt: skip

    async def _stop(self, spy: asyncio.subprocess.Process | str) -> str | None:
        if isinstance(spy, str):
            return spy
        if spy.returncode is None:
            spy.send_signal(signal.SIGINT)
        try:
            code = await asyncio.wait_for(spy.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            spy.kill()
            await spy.wait()
            return "py-spy did not stop in time"
        return None if code in (0, -signal.SIGINT) else f"py-spy exited with {code}"

    def _result(
        self, label: str, folded: Path, events: int, cpu: Cpu, wall_s: float, error: str | None
    ) -> dict[str, Any]:
        cpu_s = cpu.total_s
        out: dict[str, Any] = {
            "events": events,
            "hub_cpu_s": round(cpu_s, 3),
            "hub_cpu_other_threads_s": round(cpu.total_s - cpu.main_s, 3),
            "wall_s": round(wall_s, 3),
            "hub_cores_used": round(cpu_s / wall_s, 2) if wall_s > 0 else None,
            "hub_cpu_ms_per_event": round(cpu_s * 1000 / events, 3) if events else None,
        }
        text = folded.read_text(encoding="utf-8") if folded.exists() else ""
        stacks = parse_folded(text)
        samples = sum(stacks.values())
        if not samples:
            out["error"] = error or "py-spy took no sample (see var/bench/py-spy.log)"
            return out
        ms = shared_out(stacks, cpu)
        scale = 1000 / events if events else 0.0
        out["samples"] = samples
        out["stages"] = {
            s: {"share": round(ms[s] / cpu_s, 4) if cpu_s else 0.0,
                "cpu_ms_per_event": round(ms[s] * scale, 4)}
            for s in STAGES if ms.get(s)
        }  # fmt: skip
        out["hot_functions"] = [
            {"frame": f, "share": round(n / samples, 4)} for f, n in hot_functions(stacks)
        ]
        scope = folded.with_suffix(".speedscope.json")
        scope.write_text(json.dumps(speedscope(stacks, label)), encoding="utf-8")
        out["flame_graph"] = {"folded": str(folded), "speedscope": str(scope)}
        return out


@dataclass(frozen=True)
class Cpu:
    """CPU seconds of the hub's main thread (the event loop) and of all its threads."""

    main_s: float
    total_s: float


def _cpu(hub: psutil.Process) -> Cpu:
    main, total = 0.0, 0.0
    for thread in hub.threads():
        used = thread.user_time + thread.system_time
        total += used
        if thread.id == hub.pid:
            main = used
    return Cpu(main, total)


# A main-thread sample stopped in the selector's wait: py-spy may take a thread in epoll_wait
# for busy; it uses no CPU worth sharing out.
_IDLE = re.compile(r"^(EpollSelector|PollSelector|SelectSelector)\.select ")
_THREAD = re.compile(r"(^|;)Thread\._bootstrap |_connection_worker_thread \(")


def shared_out(stacks: Counter[str], cpu: Cpu) -> dict[str, float]:
    """CPU seconds per stage: the main thread's CPU (psutil, exact) shared out by the main
    thread's samples, the other threads' (aiosqlite's) by theirs. So a thread waiting in a
    system call that py-spy took for busy (an fsync, say) inflates no stage beyond what
    that thread really used. Samples stopped in the selector's wait count for nothing."""
    main: Counter[str] = Counter()
    other: Counter[str] = Counter()
    for stack, count in stacks.items():
        frames = stack.split(";")
        if _IDLE.search(frames[-1]):
            continue  # waiting in epoll: what the loop costs is in its other samples
        side = other if _THREAD.search(stack) else main
        side[classify(frames)] += count
    out: dict[str, float] = {}
    for side, seconds in ((main, cpu.main_s), (other, cpu.total_s - cpu.main_s)):
        total = sum(side.values())
        for stage, count in side.items():
            out[stage] = out.get(stage, 0.0) + seconds * count / total
    return out


Window = Callable[[str, int, int], AbstractAsyncContextManager[None]]


def window_of(profiler: StageProfiler | None) -> Window:
    """The profiler's `window`, or one that does nothing when no profile is wanted."""
    if profiler is None:
        return lambda label, pid, events: nullcontext()
    return profiler.window


# -- the disk -----------------------------------------------------------------------------------


def fsync_cost(folder: Path, rounds: int = 200) -> dict[str, Any]:
    """What a durable commit costs on this machine's disk, in the bench's folder: a bare
    fsync of 4 KB, and one-row SQLite commits in WAL mode with `synchronous` FULL (the hub's
    default: a reply after commit survives a power cut) and NORMAL (for comparison only).
    Wall milliseconds, p50 and p99: mostly waiting for the disk, not CPU."""
    import os
    import sqlite3

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    probe = folder / "fsync-probe.bin"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        took = []
        for _ in range(rounds):
            os.write(fd, b"x" * 4096)
            started = time.perf_counter()
            os.fsync(fd)
            took.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)
    out["fsync_4kb"] = _p50_p99(took)
    for mode in ("FULL", "NORMAL"):
        path = folder / "fsync-probe.db"
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={mode}")
            db.execute("CREATE TABLE IF NOT EXISTS t (a INTEGER, b TEXT)")
            took = []
            for i in range(rounds):
                started = time.perf_counter()
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT INTO t VALUES (?, ?)", (i, "x" * 300))
                db.execute("COMMIT")
                took.append(time.perf_counter() - started)
        finally:
            db.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        out[f"sqlite_commit_{mode.lower()}"] = _p50_p99(took)
    return out


def _p50_p99(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)

    def pick(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 3)

    return {"p50_ms": pick(0.5), "p99_ms": pick(0.99)}
