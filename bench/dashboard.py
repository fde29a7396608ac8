"""Phase `dashboard`: the operators' dashboard on a province-sized store, and what it costs the
hub's message processing.

The store is generated once (`bench.dashboard_store`: 1,000,000 dossiers and 10,000,000 history
rows by default, cached under `var/bench/dashboard-store/`) and copied for the phase, since the
hub writes into it. Three measurements, each beside a baseline taken in the same run:

* **pages**: a `hub run` process on the copy, with an operator configured under
  `dashboard.users` and `dashboard.overview_cache_s: 0` (every request computes what it shows;
  with the default cache one request every 2 s pays this), and `dead_letters` messages parked
  in the DVCQG connector's parking queue. The bench logs in (`POST /api/v1/admin/session`) and
  GETs every page and the matching admin API route, one request at a time, `warm_up` times
  untimed then `repeats` times timed: p50 / p95 / max per route against the 300 ms target. The
  baseline is the same routes on an EMPTY store holding only the dossiers the pages open (the
  same rows, copied), with the same parked messages. The bench hub has only the DVCQG
  connector on, so the payments, ministries and axis pages say their flow is off; their reads
  are timed in the next item;
* **store queries**: the store calls the pages are made of (`hub.store.dashboard` and the flow
  pages' reads), timed in the bench process on a read-only connection with the hub stopped,
  on both stores, with the SQL each one ran and SQLite's query plan for it;
* **processing**: a hub with production defaults on the copy; dossier events pushed through the
  DVCQG facade as fast as it answers until the DVCQG simulator confirmed them all (as in the
  `throughput` phase), in rounds that alternate between no dashboard traffic (A) and
  `operators` simulated operators (each logged in, polling `/api/v1/admin/overview` every
  `poll_s` and opening a dossier page every `dossier_s`): B opens typical dossiers (about ten
  history rows), C only the long histories (100 to 2,000 rows, a stress case). Rounds run
  A B C A B C … (`cycles` times): events/s of each condition and its ratio to A, the target
  (0.95) being B's.

Benchmarks report figures; nothing here fails because a target is missed. This module must
never write outside `var/bench/` and never leave a process it started running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aio_pika
import aiohttp

from bench.dashboard_store import StoreSpec, ensure_store
from bench.e2e import HTTP_CONNECTIONS, E2eOptions, Phase
from bench.hubproc import PORTAL_PASSWORD, PORTAL_USER, UNIT, bench_hub
from bench.watch import Delivery, install_clock, process
from bench.workload import build
from hub.auth import hash_password
from hub.config import deep_merge
from hub.dashboard.board import SYNC_DESTINATION
from hub.store.sqlite import SqliteStore
from sims.national_portal.simulator import DvcqgSimulator

TARGET_MS = 300.0
RATIO_TARGET = 0.95
OPERATOR, OPERATOR_PASSWORD = "bench.operator", "bench-operator-password"
COOKIE = "hub_session"
API = "/api/v1/admin"
CONNECTOR = "national_portal"
SYSTEM = "business_registration"
SLOW_QUERY_MS = 5.0  # store calls at least this slow get their query plans in the report
PROFILE_REPEATS = 5
ROUND_TAG = 60  # workload tags of the processing rounds: 60, 61, … (0–99, unique per round)
MAX_CYCLES = (99 - ROUND_TAG + 1) // 3
SETTLE_S = 2.0  # pause between processing rounds


@dataclass(frozen=True)
class DashboardSizes:
    dossiers: int = 1_000_000
    events: int = 10_000_000
    repeats: int = 30
    warm_up: int = 3
    round_events: int = 20_000
    cycles: int = 3
    operators: int = 5
    poll_s: float = 2.0
    dossier_s: float = 5.0
    dead_letters: int = 1_000
    max_age_h: float = 12.0

    @classmethod
    def quick(cls) -> DashboardSizes:
        return cls(
            dossiers=50_000,
            events=500_000,
            repeats=10,
            warm_up=2,
            round_events=4_000,
            dead_letters=200,
        )

    def store_spec(self) -> StoreSpec:
        base = StoreSpec.quick() if self.dossiers <= StoreSpec.quick().dossiers else StoreSpec()
        return StoreSpec(**{**asdict(base), "dossiers": self.dossiers, "events": self.events})


def _say(text: str) -> None:
    print(f"[bench]   dashboard: {text}", flush=True)


# -- figures ------------------------------------------------------------------------------------


def _rank(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def summary_ms(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "max_ms": None, "mean_ms": None}
    return {
        "n": len(values),
        "p50_ms": round(_rank(values, 0.5), 1),
        "p95_ms": round(_rank(values, 0.95), 1),
        "max_ms": round(max(values), 1),
        "mean_ms": round(statistics.fmean(values), 1),
    }


# -- the routes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    kind: str  # page | api


def dossiers_opened(samples: dict[str, Any]) -> dict[str, str]:
    """The dossiers whose pages are timed, by name: a typical one, and one long history of
    each size the store holds (`dossier_<rows>`)."""
    rows = samples.get("history_rows", {})
    opened = {"dossier_typical": samples["typical_codes"][0]}
    for code in samples["heavy_codes"]:
        opened.setdefault(f"dossier_{rows.get(code, 'long')}", code)
    return opened


def routes(samples: dict[str, Any]) -> list[Route]:
    """Every page and admin API route, with the codes and prefixes of the generated store."""
    prefixes = samples["prefixes"]
    day_q, unit_q = quote(prefixes["unit_day"]["q"]), quote(prefixes["unit"]["q"])
    pages = [
        ("overview", "/dashboard/", "/api/v1/admin/overview"),
        ("connector", f"/dashboard/connectors/{CONNECTOR}", f"{API}/connectors/{CONNECTOR}"),
        ("search_unit_day", f"/dashboard/dossiers?q={day_q}", f"/api/v1/admin/dossiers?q={day_q}"),
        ("search_unit", f"/dashboard/dossiers?q={unit_q}", f"/api/v1/admin/dossiers?q={unit_q}"),
        *((name, f"/dashboard/dossiers/{code}", f"{API}/dossiers/{code}")
          for name, code in dossiers_opened(samples).items()),
        ("dead_letters", "/dashboard/dead-letters", "/api/v1/admin/dead-letters"),
        ("procedures", "/dashboard/procedures", "/api/v1/admin/procedures"),
        ("payments", "/dashboard/payments", "/api/v1/admin/payments"),
        ("ministries", "/dashboard/ministries", "/api/v1/admin/ministries"),
        ("vdxp", "/dashboard/vdxp", "/api/v1/admin/vdxp"),
        ("audit", "/dashboard/audit", "/api/v1/admin/audit"),
    ]  # fmt: skip
    out = []
    for name, page, api in pages:
        out += [Route(name, page, "page"), Route(name, api, "api")]
    return out


# -- the hub ------------------------------------------------------------------------------------


class DashboardUnavailable(RuntimeError):
    """The hub under test serves no dashboard (or refused the bench's operator)."""


def hub_overrides(store_path: Path, overview_cache_s: float | None) -> dict[str, Any]:
    dashboard: dict[str, Any] = {
        "enabled": True,
        "users": {
            OPERATOR: {"password_hash": hash_password(OPERATOR_PASSWORD), "role": "operator"}
        },
    }
    if overview_cache_s is not None:
        dashboard["overview_cache_s"] = overview_cache_s
    return {
        "store": {"path": str(store_path)},
        "dashboard": dashboard,
        # On demand only: the simulator serves no catalogue, and a sync would run meanwhile.
        "connectors": {CONNECTOR: {"catalogue": {"interval_s": 0}}},
    }


@asynccontextmanager
async def served(
    options: E2eOptions, name: str, store_path: Path, overview_cache_s: float | None
) -> AsyncIterator[Phase]:
    """A DVCQG simulator and a hub on `store_path`, as an `e2e.Phase`."""
    prefix = f"{options.run_id}-{name}"
    overrides = deep_merge(hub_overrides(store_path, overview_cache_s), options.hub_overrides)
    connector = aiohttp.TCPConnector(limit=HTTP_CONNECTIONS)
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim,
        bench_hub(options.workdir / name, options.broker_url, prefix, sim.url, overrides) as hub,
        aiohttp.ClientSession(connector=connector) as http,
    ):
        yield Phase(options, prefix, sim, hub, http, install_clock(sim))


@dataclass
class Operator:
    """A logged-in dashboard session: the cookie is sent by hand (the hub's is `Secure`, which
    a cookie jar would keep from plain http://127.0.0.1)."""

    http: aiohttp.ClientSession
    base_url: str
    token: str
    csrf: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={self.token}"}

    async def get(self, path: str) -> tuple[int, int, float]:
        """(status, body bytes, milliseconds until the whole body was read)."""
        started = time.perf_counter()
        async with self.http.get(
            self.base_url + path, headers=self.headers, allow_redirects=False
        ) as response:
            body = await response.read()
        return response.status, len(body), (time.perf_counter() - started) * 1000


async def log_in(base_url: str) -> Operator:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    try:
        async with http.post(
            base_url + "/api/v1/admin/session",
            json={"username": OPERATOR, "password": OPERATOR_PASSWORD},
        ) as response:
            text = await response.text()
            cookie = response.cookies.get(COOKIE)
        if response.status != 200 or cookie is None:
            raise DashboardUnavailable(f"log-in refused: HTTP {response.status} {text[:300]}")
        return Operator(http, base_url, cookie.value, str(json.loads(text).get("csrf_token")))
    except BaseException:
        await http.close()
        raise


async def park_messages(phase: Phase, count: int) -> None:
    """`count` dossier messages in the DVCQG connector's parking queue, as the consumer parks
    them (a refusal code, a reason, five attempts)."""
    if count <= 0:
        return
    queue = f"{phase.prefix}.{CONNECTOR}.parking"
    connection = await aio_pika.connect(phase.options.broker_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        now = time.time()
        for i in range(count):
            code = f"{UNIT}-251120-{i + 1:06d}"
            headers: dict[str, Any] = {
                "x-hub-attempt": 5,
                "x-hub-reason": f"DVCQG refused {code}: error_code 07 (NgayHenTra không hợp lệ)",
                "x-hub-error-code": "07",
                "x-hub-connector": CONNECTOR,
                "x-hub-parked-at": datetime.fromtimestamp(now - i * 60, UTC).isoformat(),
                "x-hub-queued-at": now - i * 60 - 300,
            }
            body = json.dumps({"dossier_code": code, "version": 3}).encode()
            message = aio_pika.Message(
                body,
                message_id=f"bench-parked-{i:06d}",
                content_type="application/json",
                headers=headers,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await channel.default_exchange.publish(message, routing_key=queue)


# -- (a) pages ----------------------------------------------------------------------------------


async def time_routes(
    op: Operator, all_routes: list[Route], warm_up: int, repeats: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for route in all_routes:
        for _ in range(warm_up):
            await op.get(route.path)
        times, statuses, size = [], Counter[int](), 0
        for _ in range(repeats):
            status, size, ms = await op.get(route.path)
            statuses[status] += 1
            times.append(ms)
        key = f"{route.kind}:{route.name}"
        out[key] = {
            "path": route.path,
            **summary_ms(times),
            "statuses": {str(k): v for k, v in statuses.items()},
            "bytes": size,
        }
    return out


async def measure_pages(
    options: E2eOptions, name: str, store_path: Path, samples: dict[str, Any], sizes: DashboardSizes
) -> dict[str, Any]:
    async with served(options, name, store_path, overview_cache_s=0) as phase:
        await park_messages(phase, sizes.dead_letters)
        op = await log_in(phase.hub.base_url)
        try:
            hub = process(phase.hub.pid)
            rss_before = hub.memory_info().rss / 2**20
            started = time.perf_counter()
            timed = await time_routes(op, routes(samples), sizes.warm_up, sizes.repeats)
            seconds = time.perf_counter() - started
            rss_after = hub.memory_info().rss / 2**20
        finally:
            await op.http.close()
    return {
        "routes": timed,
        "seconds": round(seconds, 1),
        "hub_rss_mb": {"before": round(rss_before, 1), "after": round(rss_after, 1)},
        "hub_exit_code": phase.hub.exit_code,
    }


def compare_routes(big: dict[str, Any], empty: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, figures in big["routes"].items():
        base = empty["routes"].get(key, {})
        p50, p95, base_p50 = figures.get("p50_ms"), figures.get("p95_ms"), base.get("p50_ms")
        rows.append(
            {
                "route": key,
                "path": figures["path"],
                "big": figures,
                "empty": base,
                "ratio_p50": round(p50 / base_p50, 2) if p50 and base_p50 else None,
                "within_target": None if p95 is None else p95 < TARGET_MS,
                "ok_statuses": set(figures["statuses"]) <= {"200"},
            }
        )
    return rows


# -- (a') store queries -------------------------------------------------------------------------

Call = Callable[[SqliteStore], Awaitable[Any]]


def store_calls(samples: dict[str, Any]) -> list[tuple[str, Call]]:
    day = time.time() - 86_400
    today = datetime.now(UTC).date().isoformat()
    calls: list[tuple[str, Call]] = [
        ("dashboard.completeness", lambda r: r.dashboard.completeness(SYNC_DESTINATION)),
        (
            "dashboard.lag_histogram(24 h)",
            lambda r: r.dashboard.lag_histogram(SYNC_DESTINATION, day),
        ),
        ("dashboard.lag_minutes(24 h)", lambda r: r.dashboard.lag_minutes(SYNC_DESTINATION, day)),
        ("dashboard.samples(24 h)", lambda r: r.dashboard.samples(CONNECTOR, day)),
        ("dashboard.last_successes", lambda r: r.dashboard.last_successes()),
        ("audit_entries(50)", lambda r: r.audit_entries(50)),
        *((f"dossier({name})", _dossier(code)) for name, code in dossiers_opened(samples).items()),
        ("procedures.runs(20)", lambda r: r.slices["procedures"].runs(20)),
        ("procedures.active_count", lambda r: r.slices["procedures"].active_count()),
        ("procedures.quarantined(50)", lambda r: r.slices["procedures"].quarantined(50)),
        ("payments.report(today)", lambda r: r.slices["payments"].report(today)),
        ("payments.callbacks(50)", lambda r: r.slices["payments"].callbacks(None, 50)),
        ("ministries.handoffs(20)", lambda r: r.slices["ministries"].handoffs(SYSTEM, 20)),
        ("ministries.quarantined(50)", lambda r: r.slices["ministries"].quarantined(None, 50)),
        ("vdxp.documents(50)", lambda r: r.slices["vdxp"].documents(None, None, 50)),
        ("vdxp.intake_log(50)", lambda r: r.slices["vdxp"].intake_log(None, 50)),
    ]  # fmt: skip
    for name, prefix in samples["prefixes"].items():
        q = prefix["q"]
        calls.append((f"dashboard.search_dossiers({name})", _search(q)))
    return calls


def _dossier(code: str) -> Call:
    return lambda r: r.dossier(code)


def _search(prefix: str) -> Call:
    return lambda r: r.dashboard.search_dossiers(prefix, 50)


class _Tracer:
    """The SQL statements a connection runs while `statements` is a list."""

    def __init__(self) -> None:
        self.statements: list[str] | None = None

    def __call__(self, sql: str) -> None:
        if self.statements is not None:
            self.statements.append(sql)


async def profile_store(path: Path, samples: dict[str, Any]) -> dict[str, Any]:
    """Each store call: median ms over a few runs after one untimed run, and its SQL."""
    out: dict[str, Any] = {}
    tracer = _Tracer()
    async with SqliteStore.open_reader(path) as reader:
        await reader._db.set_trace_callback(tracer)
        for name, call in store_calls(samples):
            statements: list[str] = []
            tracer.statements = statements
            try:
                await call(reader)
            except Exception as exc:  # a call the store no longer has: say so, go on
                out[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                continue
            finally:
                tracer.statements = None
            times = []
            for _ in range(PROFILE_REPEATS):
                started = time.perf_counter()
                await call(reader)
                times.append((time.perf_counter() - started) * 1000)
            out[name] = {
                "median_ms": round(statistics.median(times), 2),
                "max_ms": round(max(times), 2),
                "sql": statements,
            }
    return out


def query_plans(path: Path, statements: list[str]) -> list[dict[str, Any]]:
    """SQLite's plan for each statement (run with the values it was traced with)."""
    out = []
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    db = sqlite3.connect(uri, uri=True)
    try:
        for sql in statements:
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            try:
                plan = [str(row[3]) for row in db.execute("EXPLAIN QUERY PLAN " + sql)]
            except sqlite3.Error as exc:
                plan = [f"(no plan: {exc})"]
            out.append({"sql": sql, "plan": plan})
    finally:
        db.close()
    return out


def compare_profiles(
    big_path: Path, big: dict[str, Any], empty: dict[str, Any]
) -> list[dict[str, Any]]:
    rows = []
    for name, figures in big.items():
        base = empty.get(name, {})
        row: dict[str, Any] = {
            "call": name,
            "big": figures,
            "empty_median_ms": base.get("median_ms"),
        }
        median = figures.get("median_ms")
        if median is not None and median >= SLOW_QUERY_MS:
            row["plans"] = query_plans(big_path, figures.get("sql", []))
        rows.append(row)
    return rows


# -- (b) processing -----------------------------------------------------------------------------


@dataclass
class OperatorLoad:
    """Operators polling the overview and opening dossier pages until stopped."""

    ops: list[Operator]
    codes: list[str]
    poll_s: float
    dossier_s: float
    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {"overview": [], "dossier": []}
    )
    statuses: Counter[str] = field(default_factory=Counter)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._stop.clear()
        for i, op in enumerate(self.ops):
            self._tasks.append(asyncio.create_task(self._run(op, i), name=f"operator-{i}"))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _run(self, op: Operator, index: int) -> None:
        # Spread the operators over the interval, as people who opened the page at random.
        offset = index / max(1, len(self.ops))
        next_poll = time.perf_counter() + offset * self.poll_s
        next_page = time.perf_counter() + offset * self.dossier_s
        n = index
        while not self._stop.is_set():
            wait = min(next_poll, next_page) - time.perf_counter()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), wait)
                continue
            if time.perf_counter() >= next_poll:
                next_poll += self.poll_s
                await self._get(op, "/api/v1/admin/overview", "overview")
            if time.perf_counter() >= next_page:
                next_page += self.dossier_s
                n += 1
                await self._get(
                    op, f"/dashboard/dossiers/{self.codes[n % len(self.codes)]}", "dossier"
                )

    async def _get(self, op: Operator, path: str, kind: str) -> None:
        try:
            status, _, ms = await op.get(path)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.statuses[f"{kind}:{type(exc).__name__}"] += 1
            return
        self.statuses[f"{kind}:{status}"] += 1
        self.latencies[kind].append(ms)


async def _round(phase: Phase, events: int, tag: int) -> dict[str, Any]:
    work = build(events, seed=200 + tag, madonvi=UNIT, tag=tag)
    client, cpu = phase.client(), phase.cpu_meter()
    delivery = Delivery(phase.sim, work)
    cpu.start()
    await phase.run_closed(client, work)
    done_at = await delivery.wait(phase.hub)
    cpu_share = cpu.stop()
    seconds = done_at - client.progress.first_sent
    return {
        "events": work.events,
        "seconds": round(seconds, 2),
        "events_per_s": round(work.events / seconds, 1),
        "facade_retries": client.progress.retries,
        "cpu_cores_used": cpu_share,
    }


@dataclass(frozen=True)
class Condition:
    key: str
    label: str
    codes: list[str]  # the dossier pages its operators open (none: no operators)


def conditions(samples: dict[str, Any], operators: int) -> list[Condition]:
    return [
        Condition("A", "no dashboard traffic", []),
        Condition("B", f"{operators} operators, typical dossiers", samples["typical_codes"]),
        Condition(
            "C",
            f"{operators} operators, long histories (100-2000 rows) only",
            samples["heavy_codes"],
        ),
    ]


async def measure_processing(
    options: E2eOptions, store_path: Path, samples: dict[str, Any], sizes: DashboardSizes
) -> dict[str, Any]:
    if not 1 <= sizes.cycles <= MAX_CYCLES:
        raise ValueError(f"cycles must be 1..{MAX_CYCLES} (workload tags), got {sizes.cycles}")
    plan = conditions(samples, sizes.operators)
    order = [c for _ in range(sizes.cycles) for c in plan]
    rounds: list[dict[str, Any]] = []
    loads: dict[str, OperatorLoad] = {}
    async with served(options, "processing", store_path, overview_cache_s=None) as phase:
        await phase.warm_up(ROUND_TAG % 10)
        ops = [await log_in(phase.hub.base_url) for _ in range(sizes.operators)]
        loads = {
            c.key: OperatorLoad(ops, c.codes, sizes.poll_s, sizes.dossier_s)
            for c in plan
            if c.codes
        }
        try:
            for i, condition in enumerate(order):
                _say(
                    f"processing round {i + 1}/{len(order)}: {condition.key} ({condition.label}) …"
                )
                load = loads.get(condition.key)
                if load is not None:
                    load.start()
                try:
                    figures = await _round(phase, sizes.round_events, ROUND_TAG + i)
                finally:
                    if load is not None:
                        await load.stop()
                rounds.append({"condition": condition.key, **figures})
                _say(f"  {figures['events_per_s']:,.0f} events/s")
                await asyncio.sleep(SETTLE_S)
        finally:
            for op in ops:
                await op.http.close()
    quiet = [r["events_per_s"] for r in rounds if r["condition"] == "A"]
    quiet_mean = statistics.fmean(quiet)
    out: dict[str, Any] = {}
    for c in plan:
        rates = [r["events_per_s"] for r in rounds if r["condition"] == c.key]
        mean = statistics.fmean(rates)
        summary: dict[str, Any] = {"label": c.label, "events_per_s": round(mean, 1)}
        load = loads.get(c.key)
        if load is not None:
            summary.update(
                ratio_to_a=round(mean / quiet_mean, 3),
                cycle_ratios=[round(x / a, 3) for a, x in zip(quiet, rates, strict=True)],
                overview=summary_ms(load.latencies["overview"]),
                dossier_page=summary_ms(load.latencies["dossier"]),
                statuses=dict(load.statuses),
            )
        out[c.key] = summary
    return {
        "order": "".join(r["condition"] for r in rounds),
        "operators": sizes.operators,
        "poll_s": sizes.poll_s,
        "dossier_s": sizes.dossier_s,
        "rounds": rounds,
        "conditions": out,
        "ratio": out["B"]["ratio_to_a"],
        "target": RATIO_TARGET,
        "hub_exit_code": phase.hub.exit_code,
    }


# -- stores -------------------------------------------------------------------------------------


def _copy(source: Path, target: Path) -> float:
    _remove_store(target)
    started = time.perf_counter()
    shutil.copyfile(source, target)
    return time.perf_counter() - started


def _remove_store(path: Path) -> None:
    for each in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
        each.unlink(missing_ok=True)


async def empty_store(path: Path, big: Path, codes: list[str]) -> None:
    """A store with the hub's schema and nothing but the named dossiers (their rows copied
    from `big`), so the dossier pages show the same thing on both stores."""
    _remove_store(path)
    async with SqliteStore.open(path):
        pass
    await asyncio.to_thread(_copy_dossiers, path, big, codes)


def _copy_dossiers(path: Path, big: Path, codes: list[str]) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("ATTACH DATABASE ? AS big", (f"file:{quote(str(big.resolve()))}?mode=ro",))
        marks = ",".join("?" * len(codes))
        db.execute("BEGIN")
        for table, column in (
            ("dossiers", "code"),
            ("dossier_events", "dossier_code"),
            ("deliveries", "dossier_code"),
            ("payments", "dossier_code"),
        ):
            db.execute(
                f"INSERT INTO main.{table} SELECT * FROM big.{table} "  # noqa: S608
                f"WHERE {column} IN ({marks})",
                codes,
            )
        db.execute("COMMIT")
        db.execute("DETACH DATABASE big")
    finally:
        db.close()


# -- the phase ----------------------------------------------------------------------------------


async def measure_dashboard(options: E2eOptions, sizes: DashboardSizes) -> dict[str, Any]:
    store = await ensure_store(sizes.store_spec(), max_age_h=sizes.max_age_h)
    samples = store.samples
    workdir = options.workdir / "dashboard"
    workdir.mkdir(parents=True, exist_ok=True)
    big, empty = workdir / "big.db", workdir / "empty.db"
    page_codes = list(dossiers_opened(samples).values())
    result: dict[str, Any] = {"store": store.summary(), "sizes": asdict(sizes)}
    try:
        _say("baseline: an empty store with only the dossiers the pages open …")
        await empty_store(empty, store.path, page_codes)
        _say(f"copying the generated store ({store.size_bytes / 1e9:.1f} GB) …")
        result["store_copy_s"] = round(await asyncio.to_thread(_copy, store.path, big), 1)
        _say(f"  copied in {result['store_copy_s']} s; store calls, empty and generated …")
        profile_empty = await profile_store(empty, samples)
        profile_big = await profile_store(big, samples)
        result["store_calls"] = compare_profiles(big, profile_big, profile_empty)
        _say("pages on the empty store …")
        pages_empty = await measure_pages(options, "pages-empty", empty, samples, sizes)
        _say("pages on the generated store …")
        pages_big = await measure_pages(options, "pages-big", big, samples, sizes)
        result["pages"] = {
            "target_ms": TARGET_MS,
            "repeats": sizes.repeats,
            "overview_cache_s": 0,
            "dead_letters_parked": sizes.dead_letters,
            "empty": {k: v for k, v in pages_empty.items() if k != "routes"},
            "big": {k: v for k, v in pages_big.items() if k != "routes"},
            "rows": compare_routes(pages_big, pages_empty),
        }
        _say("processing with and without operators …")
        result["processing"] = await measure_processing(options, big, samples, sizes)
    finally:
        _remove_store(big)
    print()
    print(report(result))
    return result


# -- the report ---------------------------------------------------------------------------------


def _ms(value: Any) -> str:
    return "n/a" if not isinstance(value, int | float) else f"{value:,.1f}"


def _scans(step: str) -> bool:
    """A plan step that reads a whole table or sorts: worth showing."""
    return (step.startswith("SCAN") and "INDEX" not in step) or "TEMP B-TREE" in step


def report(result: dict[str, Any]) -> str:
    lines = []
    store = result.get("store", {})
    counts = store.get("counts", {})
    made = (
        f"reused ({store.get('age_h')} h old)"
        if store.get("reused")
        else f"generated in {store.get('seconds')} s {store.get('phases_s')}"
    )
    lines.append(
        f"dashboard store: {counts.get('dossiers', 0):,} dossiers, "
        f"{counts.get('dossier_events', 0):,} history rows, {store.get('size_gb')} GB, {made}; "
        f"copied for the phase in {result.get('store_copy_s')} s"
    )
    pages = result.get("pages")
    if pages:
        lines.append(
            f"pages (one request at a time, {pages['repeats']} timed each, overview cache off; "
            f"target p95 < {TARGET_MS:.0f} ms):"
        )
        lines.append(
            f"  {'route':<26} {'p50':>8} {'p95':>8} {'max':>8}   {'empty p50':>9} "
            f"{'ratio':>6} {'KB':>7}  status"
        )
        for row in pages["rows"]:
            big, empty = row["big"], row["empty"]
            verdict = (
                "" if row["within_target"] is None else ("ok" if row["within_target"] else "MISS")
            )
            statuses = ",".join(f"{k}x{v}" for k, v in big["statuses"].items())
            lines.append(
                f"  {row['route']:<26} {_ms(big['p50_ms']):>8} {_ms(big['p95_ms']):>8} "
                f"{_ms(big['max_ms']):>8}   {_ms(empty.get('p50_ms')):>9} "
                f"{_ms(row['ratio_p50']):>6} {big['bytes'] / 1024:>7,.0f}  {statuses} {verdict}"
            )
    calls = result.get("store_calls")
    if calls:
        lines.append("store calls (median ms, hub stopped): generated / empty")
        for row in calls:
            big = row["big"]
            lines.append(
                f"  {row['call']:<40} {_ms(big.get('median_ms')):>9} / "
                f"{_ms(row['empty_median_ms'])}" + (f"  {big['error']}" if "error" in big else "")
            )
            for plan in row.get("plans", []):
                if any(_scans(step) for step in plan["plan"]):
                    lines.append(f"      {plan['sql'][:160]}")
                    lines.extend(f"        {step}" for step in plan["plan"])
    proc = result.get("processing")
    if proc:
        rates = " ".join(f"{r['condition']} {r['events_per_s']:,.0f}" for r in proc["rounds"])
        lines.append(
            f"processing (events/s, {proc['operators']} operators polling the overview every "
            f"{proc['poll_s']} s and opening a dossier page every {proc['dossier_s']} s): {rates}"
        )
        for key, c in proc["conditions"].items():
            line = f"  {key} {c['label']}: {c['events_per_s']:,.0f} events/s"
            if "ratio_to_a" in c:
                verdict = "ok" if c["ratio_to_a"] >= RATIO_TARGET else "MISS"
                target = f"; target >= {RATIO_TARGET}: {verdict}" if key == "B" else ""
                line += (
                    f", {key} / A {c['ratio_to_a']:.3f} (per cycle {c['cycle_ratios']}{target}); "
                    "overview p50/p95 "
                    f"{_ms(c['overview']['p50_ms'])} / {_ms(c['overview']['p95_ms'])} ms, "
                    f"dossier page p50/p95 {_ms(c['dossier_page']['p50_ms'])} / "
                    f"{_ms(c['dossier_page']['p95_ms'])} ms, {c['statuses']}"
                )
            lines.append(line)
    return "\n".join(lines)
