"""`python -m bench` (`make bench`): one benchmark run, figures printed and saved.

Starts ONE private RabbitMQ node under `var/bench/rabbitmq` for the whole run (unless
`--broker-url` names a broker), measures the raw relay ceiling, then the hub end to end
(throughput, latency at a fixed offered load, memory over a long stream) and the national
catalogue sync (`bench.catalogue`: wall time against the ideal its rate limit and concurrency
allow, RSS, delivery to a subscriber, a no-change re-sync) and the payment platform's signed
callbacks (`bench.payments`: callbacks/s durably accepted, reply latency, drain to the one-stop,
RSS, beside the relay ceiling of the same run) and the ministry connectors (`bench.ministries`:
SOAP hand-offs/s through the hub beside a raw zeep client, and the latency a pushed result
adds on its way to the one-stop beside a direct post), prints a table with each target
beside its figure and writes everything to `var/bench/results.json`. The `dashboard` phase
(`bench.dashboard`: page times on a generated store of 1M dossiers and 10M history rows, and
message processing with and without operators watching) runs only when named in `--phases`:
its store takes several minutes to generate the first time and about 25 GB (twice that while
the phase runs on a copy). The `recovery` phase (`bench.recovery`: DVCQG down for 60 s and for
10 minutes under a steady 200 events/s, then back; the time until DVCQG holds everything sent
against the ideal drain time, the peak backlog, RSS, probes, and nothing parked) takes over
12 minutes; `--recovery-outages-s` chooses other outage lengths.
The `scale` phase (`bench.scale`: one hub on SQLite and 1, 2, 3 replicas on a private
PostgreSQL beside the relay ceiling, CPU ms per event of the hubs, the broker and PostgreSQL,
payments and 50 KB axis documents on PostgreSQL, the failover pauses of a replica kill and of
a broker-node kill on a three-node cluster of its own, and the projection to 8 and 32 cores)
needs the bench's own RabbitMQ node for its replica kill.
The `stages` phase runs the dossier flow (in batches, and one item per call in an open loop
as in the latency phase), the payment and the catalogue flows once more, smaller, with py-spy
on the hub (`bench.stages`): CPU milliseconds per event by stage, and flame graphs under
`var/bench/`.
`--quick` shrinks every size for a smoke run of a few minutes (`make bench-quick`).

The run ends with every judged figure against its target (`report.targets_table`, issue 17's
targets, each a ratio against a baseline of the same run or a bound), and for a miss the stage
that holds the flow. Exit status: 0 when every phase ran and every target was met; 1 when a
phase failed (an error, a refused reply, an event missing or twice); 2 when a target was
missed. With `--quick` a missed target is reported only (small sizes judge nothing).

Whatever happens (a failed phase, Ctrl-C, SIGTERM) every process it started is stopped before
it returns. This module must never write outside `var/bench/` (or the folder `--var` names).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import (
    catalogue,
    dashboard,
    e2e,
    hubproc,
    ministries,
    payments,
    recovery,
    relay,
    report,
    scale,
    stages,
    vdxp,
    watch,
)
from hub.config import deep_merge
from sims.rabbitmq_node import RabbitNode

VAR = Path("var/bench")
RESULTS = VAR / "results.json"
DEFAULTS: dict[str, Any] = {
    "relay_messages": 20_000,
    "throughput_events": 20_000,
    "latency_seconds": 60.0,
    "latency_rate": report.LATENCY_RATE_TARGET,
    "soak_events": 1_000_000,
    "catalogue_procedures": 5_000,
    "payment_callbacks": 5_000,
    "ministry_dossiers": 2_000,
    "ministry_pushes": 1_000,
    "recovery_outages_s": (60.0, 600.0),
    "stage_events": 10_000,
    "stage_one_item_s": 10.0,
    "stage_callbacks": 2_000,
    "stage_procedures": 1_000,
    "scale_events": 10_000,
    "scale_warm_up_events": 400,
    "scale_callbacks": 3_000,
    "scale_axis_documents": 600,
    "scale_stream_s": 10.0,
    "dashboard_dossiers": dashboard.DashboardSizes().dossiers,
    "dashboard_events": dashboard.DashboardSizes().events,
    "dashboard_repeats": dashboard.DashboardSizes().repeats,
    "dashboard_warm_up": dashboard.DashboardSizes().warm_up,
    "dashboard_round_events": dashboard.DashboardSizes().round_events,
    "dashboard_dead_letters": dashboard.DashboardSizes().dead_letters,
}
QUICK: dict[str, Any] = {
    "relay_messages": 5_000,
    "throughput_events": 4_000,
    "latency_seconds": 10.0,
    "latency_rate": report.LATENCY_RATE_TARGET,
    "soak_events": 15_000,
    "catalogue_procedures": 1_000,
    "payment_callbacks": 1_000,
    "ministry_dossiers": 500,
    "ministry_pushes": 200,
    "recovery_outages_s": (10.0, 30.0),
    "stage_events": 2_000,
    "stage_one_item_s": 4.0,
    "stage_callbacks": 400,
    "stage_procedures": 300,
    "scale_events": 1_000,
    "scale_warm_up_events": 100,
    "scale_callbacks": 300,
    "scale_axis_documents": 60,
    "scale_stream_s": 2.0,
    "dashboard_dossiers": dashboard.DashboardSizes.quick().dossiers,
    "dashboard_events": dashboard.DashboardSizes.quick().events,
    "dashboard_repeats": dashboard.DashboardSizes.quick().repeats,
    "dashboard_warm_up": dashboard.DashboardSizes.quick().warm_up,
    "dashboard_round_events": dashboard.DashboardSizes.quick().round_events,
    "dashboard_dead_letters": dashboard.DashboardSizes.quick().dead_letters,
}
PHASES = (
    "relay",
    "throughput",
    "latency",
    "soak",
    "catalogue",
    "payments",
    "ministries",
    "vdxp",
    "recovery",
    "scale",
    "stages",
    "dashboard",
)
DEFAULT_PHASES = tuple(p for p in PHASES if p != "dashboard")  # dashboard: when named
# The smoke run's phases (`make bench-quick`, the slow test): the axis and the outage recovery
# take minutes whatever their sizes, and the replicas' phase starts a PostgreSQL and a broker
# cluster of its own (its own slow test runs it); name them to run them.
QUICK_PHASES = tuple(p for p in DEFAULT_PHASES if p not in ("vdxp", "recovery", "scale"))
NOTE = (
    "Every figure is judged as a ratio against a baseline measured in the same run (the raw "
    "relay ceiling, a bare client) or as a bound; absolute rates move with whatever else the "
    "machine runs (load average at the start is in results.json)."
)


@dataclass(frozen=True)
class Sizes:
    relay_messages: int
    throughput_events: int
    latency_seconds: float
    latency_rate: float
    soak_events: int
    catalogue_procedures: int
    payment_callbacks: int
    payment_concurrency: int
    payment_repeats: float
    ministry_dossiers: int
    ministry_pushes: int
    ministry_concurrency: int
    recovery_outages_s: tuple[float, ...]
    stage_events: int
    stage_one_item_s: float
    stage_callbacks: int
    stage_procedures: int
    scale_events: int
    scale_warm_up_events: int
    scale_callbacks: int
    scale_axis_documents: int
    scale_stream_s: float
    callers: int
    window: int
    dashboard_dossiers: int
    dashboard_events: int
    dashboard_repeats: int
    dashboard_warm_up: int
    dashboard_round_events: int
    dashboard_dead_letters: int
    dashboard_cycles: int
    dashboard_operators: int
    dashboard_poll_s: float
    dashboard_dossier_s: float
    dashboard_store_max_age_h: float

    def scale(self) -> scale.ScaleSizes:
        return scale.ScaleSizes(
            relay_messages=self.relay_messages,
            events=self.scale_events,
            warm_up_events=self.scale_warm_up_events,
            callbacks=self.scale_callbacks,
            payment_concurrency=self.payment_concurrency,
            axis_documents=self.scale_axis_documents,
            stream_s=self.scale_stream_s,
        )

    def dashboard(self) -> dashboard.DashboardSizes:
        return dashboard.DashboardSizes(
            dossiers=self.dashboard_dossiers,
            events=self.dashboard_events,
            repeats=self.dashboard_repeats,
            warm_up=self.dashboard_warm_up,
            round_events=self.dashboard_round_events,
            cycles=self.dashboard_cycles,
            operators=self.dashboard_operators,
            poll_s=self.dashboard_poll_s,
            dossier_s=self.dashboard_dossier_s,
            dead_letters=self.dashboard_dead_letters,
            max_age_h=self.dashboard_store_max_age_h,
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a ~1 minute smoke run")
    parser.add_argument("--broker-url", help="use this RabbitMQ instead of starting a node")
    parser.add_argument("--relay-messages", type=int, help="messages relayed (default 20000)")
    parser.add_argument("--throughput-events", type=int, help="events (default 20000)")
    parser.add_argument("--latency-seconds", type=float, help="open-loop duration (default 60)")
    parser.add_argument("--latency-rate", type=float, help="offered events/s (default 500)")
    parser.add_argument("--soak-events", type=int, help="events of the RSS run (default 1000000)")
    parser.add_argument(
        "--catalogue-procedures", type=int, help="procedures of the catalogue sync (default 5000)"
    )
    parser.add_argument(
        "--payment-callbacks", type=int, help="callbacks per payments variant (default 5000)"
    )
    parser.add_argument(
        "--payment-concurrency", type=int, default=32, help="payment callbacks in flight"
    )
    parser.add_argument(
        "--payment-repeats",
        type=float,
        default=0.1,
        help="share of payment callbacks posted again in the duplicates variant (0: skip it)",
    )
    parser.add_argument(
        "--ministry-dossiers", type=int, help="SOAP hand-offs, hub and raw (default 2000)"
    )
    parser.add_argument(
        "--ministry-pushes", type=int, help="ministry results pushed one at a time (default 1000)"
    )
    parser.add_argument(
        "--ministry-concurrency",
        type=int,
        default=16,
        help="SOAP hand-offs in flight (the hub's ministry concurrency and the raw client's)",
    )
    parser.add_argument(
        "--recovery-outages-s",
        type=_seconds_list,
        help="DVCQG outage lengths of the recovery phase, comma-separated (default 60,600)",
    )
    group = parser.add_argument_group("scale phase")
    group.add_argument(
        "--scale-events",
        type=int,
        help="dossier events per store and replica count (default 10000)",
    )
    group.add_argument(
        "--scale-callbacks", type=int, help="payment callbacks on PostgreSQL (default 3000)"
    )
    group.add_argument(
        "--scale-axis-documents",
        type=int,
        help="50 KB axis documents per round on PostgreSQL (default 600)",
    )
    _dashboard_arguments(parser)
    parser.add_argument("--callers", type=int, default=4, help="concurrent facade callers")
    parser.add_argument("--batch", type=int, default=50, help="items per facade call (max)")
    parser.add_argument(
        "--phases",
        help=f"comma-separated subset of {PHASES} (default: all but dashboard; with --quick: "
        f"{','.join(QUICK_PHASES)})",
    )
    parser.add_argument(
        "--hub-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override the hub's configuration, e.g. "
        "connectors.national_portal.rate_limit_per_s=500 (repeatable)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write JSON")
    parser.add_argument(
        "--var",
        type=Path,
        default=VAR,
        help="the bench's own folder: hubs' stores, flame graphs, the broker node (var/bench)",
    )
    return parser.parse_args(argv)


def _seconds_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds like 60,600, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive seconds like 60,600, got {text!r}")
    return values


def _dashboard_arguments(parser: argparse.ArgumentParser) -> None:
    full = dashboard.DashboardSizes()
    group = parser.add_argument_group("dashboard phase")
    group.add_argument(
        "--dashboard-dossiers", type=int, help=f"dossiers of the generated store ({full.dossiers})"
    )
    group.add_argument(
        "--dashboard-events", type=int, help=f"history rows of the generated store ({full.events})"
    )
    group.add_argument(
        "--dashboard-repeats", type=int, help=f"timed requests per route ({full.repeats})"
    )
    group.add_argument(
        "--dashboard-round-events",
        type=int,
        help=f"events per processing round ({full.round_events})",
    )
    group.add_argument(
        "--dashboard-dead-letters",
        type=int,
        help=f"messages parked for the dead-letter page ({full.dead_letters})",
    )
    group.add_argument(
        "--dashboard-cycles",
        type=int,
        default=full.cycles,
        help="processing rounds A B C (no operators, typical pages, long histories) this often",
    )
    group.add_argument(
        "--dashboard-operators", type=int, default=full.operators, help="simulated operators"
    )
    group.add_argument(
        "--dashboard-poll-s",
        type=float,
        default=full.poll_s,
        help="each operator polls /api/v1/admin/overview this often",
    )
    group.add_argument(
        "--dashboard-dossier-s",
        type=float,
        default=full.dossier_s,
        help="each operator opens a dossier page this often",
    )
    group.add_argument(
        "--dashboard-store-max-age-h",
        type=float,
        default=full.max_age_h,
        help="reuse a generated store younger than this (its recent rows age)",
    )


def sizes_from(args: argparse.Namespace) -> Sizes:
    base = QUICK if args.quick else DEFAULTS

    def pick(name: str) -> Any:
        value = getattr(args, name)
        return base[name] if value is None else value

    return Sizes(
        relay_messages=int(pick("relay_messages")),
        throughput_events=int(pick("throughput_events")),
        latency_seconds=float(pick("latency_seconds")),
        latency_rate=float(pick("latency_rate")),
        soak_events=int(pick("soak_events")),
        catalogue_procedures=int(pick("catalogue_procedures")),
        payment_callbacks=int(pick("payment_callbacks")),
        payment_concurrency=args.payment_concurrency,
        payment_repeats=args.payment_repeats,
        ministry_dossiers=int(pick("ministry_dossiers")),
        ministry_pushes=int(pick("ministry_pushes")),
        ministry_concurrency=args.ministry_concurrency,
        recovery_outages_s=tuple(pick("recovery_outages_s")),
        stage_events=int(base["stage_events"]),
        stage_one_item_s=float(base["stage_one_item_s"]),
        stage_callbacks=int(base["stage_callbacks"]),
        stage_procedures=int(base["stage_procedures"]),
        scale_events=int(pick("scale_events")),
        scale_warm_up_events=int(base["scale_warm_up_events"]),
        scale_callbacks=int(pick("scale_callbacks")),
        scale_axis_documents=int(pick("scale_axis_documents")),
        scale_stream_s=float(base["scale_stream_s"]),
        callers=args.callers,
        window=args.batch,
        dashboard_dossiers=int(pick("dashboard_dossiers")),
        dashboard_events=int(pick("dashboard_events")),
        dashboard_repeats=int(pick("dashboard_repeats")),
        dashboard_warm_up=int(base["dashboard_warm_up"]),
        dashboard_round_events=int(pick("dashboard_round_events")),
        dashboard_dead_letters=int(pick("dashboard_dead_letters")),
        dashboard_cycles=args.dashboard_cycles,
        dashboard_operators=args.dashboard_operators,
        dashboard_poll_s=args.dashboard_poll_s,
        dashboard_dossier_s=args.dashboard_dossier_s,
        dashboard_store_max_age_h=args.dashboard_store_max_age_h,
    )


def phases_from(args: argparse.Namespace) -> list[str]:
    named = args.phases or ",".join(QUICK_PHASES if args.quick else DEFAULT_PHASES)
    wanted = [p.strip() for p in named.split(",") if p.strip()]
    unknown = set(wanted) - set(PHASES)
    if unknown:
        raise SystemExit(f"unknown phase(s) {sorted(unknown)}; choose from {PHASES}")
    return [p for p in PHASES if p in wanted]


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _jobs(
    sizes: Sizes, options: e2e.E2eOptions, node: RabbitNode | None
) -> dict[str, Callable[[], Awaitable[Any]]]:
    return {
        "relay": lambda: _relay(options, sizes.relay_messages),
        "throughput": lambda: _bracketed(
            options,
            sizes.relay_messages,
            lambda: e2e.measure_throughput(options, sizes.throughput_events),
        ),
        "latency": lambda: e2e.measure_latency(options, sizes.latency_seconds, sizes.latency_rate),
        "soak": lambda: e2e.measure_soak(options, sizes.soak_events),
        "catalogue": lambda: catalogue.measure_catalogue(options, sizes.catalogue_procedures),
        "payments": lambda: _payments(options, sizes),
        "ministries": lambda: ministries.measure_ministries(
            options, sizes.ministry_dossiers, sizes.ministry_pushes, sizes.ministry_concurrency
        ),
        "vdxp": lambda: vdxp.measure_vdxp(options),
        "recovery": lambda: recovery.measure_recovery(options, sizes.recovery_outages_s),
        "scale": lambda: scale.measure_scale(options, sizes.scale(), node),
        "stages": lambda: _stages(options, sizes),
        "dashboard": lambda: dashboard.measure_dashboard(options, sizes.dashboard()),
    }


async def _stages(options: e2e.E2eOptions, sizes: Sizes) -> dict[str, Any]:
    """Each flow once more, smaller, with py-spy on the hub (`bench.stages`): CPU ms per
    event by stage. Its own queue prefix and folder, so nothing of the judged phases is
    reused; its rates are not judged (the profiler costs the hub a little)."""
    profiler = stages.StageProfiler(options.workdir.parent)
    opts = dataclasses.replace(
        options, workdir=options.workdir / "stages", run_id=f"{options.run_id}p", profiler=profiler
    )
    print("[bench]   stages: dossier events through the facade …", flush=True)
    tput = await e2e.measure_throughput(opts, sizes.stage_events)
    print("[bench]   stages: dossier events one per call (open loop) …", flush=True)
    one = await e2e.measure_latency(opts, sizes.stage_one_item_s, sizes.latency_rate)
    print("[bench]   stages: payment callbacks …", flush=True)
    pay = await payments.measure_payments(
        opts, sizes.stage_callbacks, sizes.payment_concurrency, 0.0, None
    )
    print("[bench]   stages: catalogue sync (concurrency-bound) …", flush=True)
    cat = await catalogue.measure_catalogue(
        opts, sizes.stage_procedures, only=("concurrency_bound",)
    )
    rates = {
        "dossier_events": tput["events_per_s"],
        "dossier_events_one_item": one.get("answered_events_per_s"),
        "payment_callbacks": pay["variants"]["unique"]["callbacks_per_s"],
        "catalogue_concurrency_bound": cat["settings"]["concurrency_bound"]["full_sync"][
            "procedures_per_s"
        ],
    }
    flows = profiler.results
    for label, rate in rates.items():
        flows.setdefault(label, {})["events_per_s_while_profiled"] = rate
    disk = stages.fsync_cost(options.workdir.parent)
    return {"rate_hz": profiler.rate_hz, "flows": flows, "disk": disk}


async def _relay(options: e2e.E2eOptions, count: int) -> dict[str, Any]:
    meter = watch.cpu_meter(bench=[watch.process()])
    meter.start()
    result = await relay.run_relay(options.broker_url, options.run_id, count)
    return {**result.as_dict(), "cpu_cores_used": meter.stop()}


async def _bracketed(
    options: e2e.E2eOptions, count: int, job: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """The phase between two measurements of the relay ceiling, its baseline their mean: on a
    machine others share, the ceiling of the run's first minute says little about the load
    ten minutes later, and a ratio is only as true as its baseline is near."""
    print("[bench]   relay ceiling before …", flush=True)
    before = await _relay(options, count)
    result = await job()
    print("[bench]   relay ceiling after …", flush=True)
    after = await _relay(options, count)
    mean = round((before["messages_per_s"] + after["messages_per_s"]) / 2, 1)
    result["relay_baseline"] = {
        "messages_per_s": mean,
        "before_msg_per_s": before["messages_per_s"],
        "after_msg_per_s": after["messages_per_s"],
        "source": "mean of the relay measured just before and just after this phase",
    }
    return result


async def _payments(options: e2e.E2eOptions, sizes: Sizes) -> dict[str, Any]:
    """The payments phase between two relay measurements; its ratio against their mean."""

    async def job() -> dict[str, Any]:
        return await payments.measure_payments(
            options,
            sizes.payment_callbacks,
            sizes.payment_concurrency,
            sizes.payment_repeats,
            None,
        )

    result = await _bracketed(options, sizes.relay_messages, job)
    ceiling = result["relay_baseline"]["messages_per_s"]
    rate = result["variants"]["unique"]["callbacks_per_s"]
    result["ratio_to_relay"] = round(rate / ceiling, 3) if ceiling else None
    return result


async def _phase(name: str, job: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    print(f"[bench] {name} …", flush=True)
    started = time.perf_counter()
    try:
        outcome = await job()
    except Exception as exc:  # a failed phase is reported; the others still run
        print(f"[bench] {name} failed: {exc!r}", file=sys.stderr, flush=True)
        return {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    result = dict(outcome)
    result["phase_seconds"] = round(time.perf_counter() - started, 1)
    print(f"[bench] {name} done in {result['phase_seconds']}s", flush=True)
    return result


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for text in args.hub_set:
        try:
            merged = deep_merge(merged, hubproc.parse_override(text))
        except (ValueError, yaml.YAMLError) as exc:
            raise SystemExit(f"--hub-set: {exc}") from None
    return merged


async def run_all(
    broker_url: str,
    sizes: Sizes,
    phases: list[str],
    overrides: dict[str, Any],
    var: Path = VAR,
    node: RabbitNode | None = None,
) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    workdir = var / "run"
    shutil.rmtree(workdir, ignore_errors=True)
    run_id = f"b{secrets.token_hex(3)}"
    options = e2e.E2eOptions(broker_url, workdir, run_id, sizes.callers, sizes.window, overrides)
    results: dict[str, Any] = {
        "started_at": e2e.now_stamp(),
        "machine": machine(),
        "sizes": sizes.__dict__,
        "hub_overrides": overrides,
        "queue_prefix": run_id,
    }
    jobs = _jobs(sizes, options, node)
    started = time.perf_counter()
    for name in phases:
        results[name] = await _phase(name, jobs[name])
    results["ratio_hub_to_relay"] = report.ratio(results)
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    return results


def _details(results: dict[str, Any]) -> str:
    lines = []
    for name in PHASES:
        cpu = results.get(name, {}).get("cpu_cores_used")
        if cpu:
            used = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
            lines.append(f"  {name}: CPU cores used: {used}")
    tput = results.get("throughput", {})
    if "dvcqg" in tput:
        lines.append(
            f"  throughput: calls to DVCQG {tput['dvcqg']}; facade calls "
            f"{tput['facade_calls']}; work-queue backlog when all accepted: "
            f"{tput['work_queue_backlog_when_all_accepted']}"
        )
    lines += report.catalogue_details(results.get("catalogue", {}))
    lines += report.payments_details(results.get("payments", {}))
    lines += report.ministries_details(results.get("ministries", {}))
    lines += report.recovery_details(results.get("recovery", {}))
    lines += report.scale_details(results.get("scale", {}))
    return "\n".join(lines)


def measure(broker_url: str, args: argparse.Namespace, node: RabbitNode | None = None) -> int:
    """The run against `broker_url`; `node` is the bench's own RabbitMQ node, if it started one
    (the scale phase asks it which replica is a queue's active consumer)."""
    sizes, phases, output = sizes_from(args), phases_from(args), args.output
    try:
        results = asyncio.run(
            run_all(broker_url, sizes, phases, overrides_from(args), args.var, node)
        )
    finally:
        # Leaving the loop resets SIGTERM to its default; keep stopping cleanly after it.
        signal.signal(signal.SIGTERM, _interrupt)
    report.write(results, output)
    print()
    print(report.table(results))
    print(_details(results))
    if "stages" in results:
        print()
        print(report.stages_table(results["stages"]))
    print(f"\nresults written to {output} ({results['total_seconds']}s)")
    print(NOTE)
    print()
    print(report.targets_table(results))
    failed = [r for r in (results.get(p, {}) for p in phases) if "error" in r or r.get("failures")]
    missed = report.misses(results)
    if failed:
        return 1
    if missed and not args.quick:
        print(f"\n{len(missed)} target(s) missed: {', '.join(missed)}")
        return 2
    if missed:
        print(f"\n--quick: {len(missed)} target(s) missed, reported only (small sizes)")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    args = parse_args(argv)
    # Refuse bad arguments before starting anything.
    phases_from(args)
    overrides_from(args)
    try:
        if args.broker_url:
            return measure(args.broker_url, args)
        node_dir = args.var / "rabbitmq"
        print(f"[bench] starting a private RabbitMQ node under {node_dir} …", flush=True)
        with RabbitNode(node_dir) as node:
            return measure(node.url, args, node)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\n[bench] interrupted; everything started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
