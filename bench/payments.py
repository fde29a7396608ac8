"""Payment callbacks end to end: signed callback → `hub run` → SQLite → RabbitMQ → one-stop.

One hub (own store, own queue prefix) runs with `connectors.payment_platform` enabled (status
checks and the daily reconciliation off, `require_known_dossier` on, as in production) and one
subscriber, `one_stop`, receiving `procedure.#` and `payment.#` at a `WebhookReceiver` in this
process. A DVCQG simulator and a payment platform simulator run in this process too; the
platform simulator only signs (its `callback_body`), the bench posts. Then, not timed:

* N dossiers are seeded through `POST /api/v1/dossier-events` (500 per call) and the bench waits
  until DVCQG holds all of them, so the portal connector is idle when the timing starts;
* every callback body is built, signed and serialised before the clock starts, so the client's
  own signing and JSON encoding are not measured; a short warm-up round is posted and delivered.

Timed (each variant):

* `unique`: N callbacks, one paid transaction per dossier, posted by a fixed number of
  concurrent callers (closed loop). Callbacks per second run from the first send to the last
  `00` reply; the `00` reply is the hub's durable acceptance (it is sent after the SQLite
  commit). Latency is per request, send to reply. The drain is the time from the first send
  until the receiver holds all N `payment.paid` events;
* `duplicates`: N new transactions on the same dossiers plus a share of them posted again
  later (a platform retrying); every reply must be `00` and the receiver must end with exactly
  one event per transaction.

Any reply but `00` is counted and makes the phase fail, as does a missing or extra event. Beside
the figures: the hub's RSS (sampled every 0.25 s), CPU used by the hub, the bench and RabbitMQ,
and the raw relay ceiling measured in the same run (handed in by `bench.__main__`), with the
ratio callbacks/s ÷ relay msg/s. This module must never change the hub's code or its production
defaults beyond what `bench.hubproc` and `hub_overrides` below set.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import secrets
import statistics
import time
from collections import Counter
from contextlib import AsyncExitStack, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped,unused-ignore]

from bench.e2e import E2eOptions
from bench.hubproc import PORTAL_PASSWORD, PORTAL_USER, UNIT, bench_hub
from bench.stages import Window
from bench.watch import (
    CpuClock,
    MachineMeter,
    RssSample,
    RssSampler,
    cpu_meter,
    process,
    tree_cpu_seconds,
)
from hub.auth import sha256_hex
from hub.config import deep_merge
from sims.national_portal.simulator import DvcqgSimulator
from sims.payment_platform.simulator import VN_TZ, PaymentPlatformSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.support import HubProcess

PARTNER = "000.00.00.H41"
SECRET = "bench-partner-secret"  # noqa: S105 - a throwaway key of a loopback benchmark
FEE = 150_000
SUBSCRIBER = "one_stop"
# As in `bench.catalogue`: high enough that the subscriber's own rate limit (production default
# 200/s, 4 in flight) is not what the drain figure measures; shown in the output.
SUBSCRIBER_CONCURRENCY = 8
SUBSCRIBER_RATE_PER_S = 1000.0
SEED_SOURCE = "bench_payments"
SEED_PATH = "/api/v1/dossier-events"
SEED_BATCH = 500  # the hub's validation.max_items_per_batch default
SEED_DAY = "250101"
WARM_UP = 200
PAID = "payment.paid"
JSON_HEADERS = {"Content-Type": "application/json"}
REQUEST_TIMEOUT_S = 60.0
POLL_S = 0.01
RSS_EVERY_S = 0.25
SETTLE_S = 1.0  # after a drain: time for a stray extra event to reach the receiver
STALL_S = 60.0
SUFFIX = {"warm_up": "-00", "unique": "-01", "duplicates": "-02"}


class PaymentBenchFailed(RuntimeError):
    """The hub refused the seeding, answered a callback with anything but `00`, or events were
    missing, extra or stopped arriving."""


_FIRST = itertools.count(1, 1_000_000)


def dossier_codes(count: int) -> list[str]:
    """`count` dossier codes no earlier round of this process used: on a PostgreSQL store
    (`--hub-set store.url=…`) every round of a run shares one database, and a dossier seeded
    twice, or a reference paid twice, would make the second round measure duplicates."""
    first = next(_FIRST)
    return [f"{UNIT}-{SEED_DAY}-{n:08d}" for n in range(first, first + count)]


def hub_overrides(
    platform_url: str, receiver_url: str, receiver_token: str, seed_token: str
) -> dict[str, Any]:
    return {
        "sources": {
            SEED_SOURCE: {
                "api_token_sha256": sha256_hex(seed_token),
                "permissions": ["events.write"],
                "units": [UNIT],
            }
        },
        "subscribers": {
            SUBSCRIBER: {
                "url": receiver_url,
                "token": receiver_token,
                "events": ["procedure.#", "payment.#"],
                "concurrency": SUBSCRIBER_CONCURRENCY,
                "rate_limit_per_s": SUBSCRIBER_RATE_PER_S,
            }
        },
        "connectors": {
            "payment_platform": {
                "enabled": True,
                "partner_code": PARTNER,
                "secret_key": SECRET,
                "base_url": platform_url,
                "require_known_dossier": True,
                # Off: the bench measures what the hub takes from one address.
                "callback_limits": {"per_address_per_s": 0},
                "status_check": {"enabled": False},
                "reconciliation": {"enabled": False},
            }
        },
    }


# -- figures ------------------------------------------------------------------------------------


def _percentile(sorted_values: list[float], share: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


def latency_ms(latencies_s: list[float]) -> dict[str, float | None]:
    values = sorted(v * 1000 for v in latencies_s)
    if not values:
        return {k: None for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")}
    return {
        "p50_ms": round(_percentile(values, 0.50), 1),
        "p95_ms": round(_percentile(values, 0.95), 1),
        "p99_ms": round(_percentile(values, 0.99), 1),
        "max_ms": round(values[-1], 1),
        "mean_ms": round(statistics.fmean(values), 1),
    }


def _peak(samples: list[RssSample], since: float, until: float) -> float | None:
    inside = [s.rss_mb for s in samples if since <= s.at <= until]
    return round(max(inside), 1) if inside else None


# -- the load -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    """One callback ready to send: its serialised body and the transaction it reports."""

    body: bytes
    transaction_id: str
    repeat: bool = False


@dataclass
class Posted:
    """What the hub answered to a list of posts, and when."""

    started: float = 0.0
    finished: float = 0.0
    latencies: list[float] = field(default_factory=list)
    repeat_latencies: list[float] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)
    refusals: list[str] = field(default_factory=list)
    answered_00: set[str] = field(default_factory=set)  # transactions with a `00` reply

    @property
    def not_ok(self) -> int:
        return sum(n for code, n in self.codes.items() if code != "00")


def build_posts(platform: PaymentPlatformSimulator, codes: list[str], suffix: str) -> list[Post]:
    """One signed `00` callback per dossier, reference `<code><suffix>`, serialised."""
    at = datetime.now(VN_TZ) - timedelta(minutes=1)
    posts = []
    for code in codes:
        tx = platform.new_transaction(f"{code}{suffix}", FEE, at=at)
        body = json.dumps(platform.callback_body(tx), ensure_ascii=False).encode()
        posts.append(Post(body, tx.transaction_id))
    return posts


def with_repeats(posts: list[Post], share: float, concurrency: int, seed: int = 7) -> list[Post]:
    """`posts` with `share` of them sent again, each repeat well after its original (more than
    `concurrency` posts later, so the original was most likely answered already)."""
    rng = random.Random(seed)
    count = round(len(posts) * share)
    keyed: list[tuple[float, Post]] = [(float(i), p) for i, p in enumerate(posts)]
    gap_min = 2 * concurrency
    gap_max = max(gap_min + 1, len(posts) // 4)
    for i in rng.sample(range(len(posts)), count):
        original = posts[i]
        repeat = Post(original.body, original.transaction_id, repeat=True)
        keyed.append((i + rng.randint(gap_min, gap_max) + 0.5, repeat))
    keyed.sort(key=lambda pair: pair[0])
    return [p for _, p in keyed]


def _code_of(raw: bytes, status: int) -> tuple[str, str]:
    try:
        reply = json.loads(raw)
    except ValueError:
        reply = None
    if status != 200 or not isinstance(reply, dict):
        return f"http-{status}", raw[:200].decode("utf-8", "replace")
    return str(reply.get("MaLoi")), str(reply.get("MoTaLoi"))


async def post_all(
    http: aiohttp.ClientSession, urls: list[str], posts: list[Post], concurrency: int
) -> Posted:
    """Every post, `concurrency` in flight (closed loop), each reply's code and latency; the
    posts shared out over `urls` in turn (several replicas' doors, as a balancer would)."""
    result = Posted()
    todo = enumerate(posts)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)

    async def caller() -> None:
        for index, post in todo:
            url = urls[index % len(urls)]
            sent = time.perf_counter()
            try:
                async with http.post(
                    url, data=post.body, headers=JSON_HEADERS, timeout=timeout
                ) as response:
                    code, message = _code_of(await response.read(), response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                code, message = "transport", repr(exc)
            took = time.perf_counter() - sent
            (result.repeat_latencies if post.repeat else result.latencies).append(took)
            result.codes[code] += 1
            if code == "00":
                result.answered_00.add(post.transaction_id)
            elif len(result.refusals) < 5:
                result.refusals.append(f"{code}: {message}"[:300])

    result.started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    result.finished = time.perf_counter()
    return result


# -- what reached the one-stop --------------------------------------------------------------------


class PaidTally:
    """`payment.paid` events the receiver holds, per transaction, counted incrementally."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        self.by_transaction: Counter[str] = Counter()
        self.event_ids: dict[str, str] = {}
        self._seen = 0

    def update(self) -> None:
        events = self.receiver.events
        for event in events[self._seen :]:
            if event.get("type") == PAID:
                self.by_transaction[str(event["payment"]["transaction_id"])] += 1
                self.event_ids[str(event["event_id"])] = str(event["payment"]["transaction_id"])
        self._seen = len(events)

    def total(self) -> int:
        """Distinct `payment.paid` events held (for the RSS samples)."""
        return sum(self.by_transaction.values())

    def held(self, wanted: set[str]) -> int:
        self.update()
        return sum(1 for tx in wanted if self.by_transaction[tx])

    def check_exactly_once(self, wanted: set[str]) -> dict[str, int]:
        """Events per transaction of `wanted`: missing, extra (two event ids for one
        transaction) and redelivered (one event id the receiver was sent more than once)."""
        self.update()
        receipts = self.receiver.receipts
        return {
            "distinct_events": sum(self.by_transaction[tx] for tx in wanted),
            "missing": sum(1 for tx in wanted if not self.by_transaction[tx]),
            "extra": sum(max(self.by_transaction[tx] - 1, 0) for tx in wanted),
            "redelivered": sum(
                receipts[eid] - 1
                for eid, tx in self.event_ids.items()
                if tx in wanted and receipts[eid] > 1
            ),
        }


async def wait_held(tally: PaidTally, wanted: set[str], hubs: list[HubProcess]) -> float:
    """perf_counter time at which the receiver held an event for every transaction of `wanted`
    (which the caller may shrink meanwhile, in place)."""
    last, moved_at = -1, time.perf_counter()
    while True:
        now = time.perf_counter()
        held = tally.held(wanted)
        if held >= len(wanted):
            return now
        if held != last:
            last, moved_at = held, now
        elif now - moved_at > STALL_S:
            raise PaymentBenchFailed(f"no event for {STALL_S:.0f}s: {held} of {len(wanted)}")
        for hub in hubs:
            hub.check_alive()
        await asyncio.sleep(POLL_S)


# -- seeding --------------------------------------------------------------------------------------


def _seed_event(code: str, occurred: str) -> dict[str, Any]:
    return {
        "event_id": f"seed-{code}",
        "dossier_code": code,
        "kind": "record",
        "status": "payment_requested",
        "occurred_at": occurred,
        "record": {
            "procedure_name": "Cấp giấy phép xây dựng",
            "fees": [{"name": "Lệ phí", "amount_vnd": FEE}],
        },
    }


async def seed(
    http: aiohttp.ClientSession, hub: HubProcess, token: str, sim: DvcqgSimulator, codes: list[str]
) -> dict[str, float]:
    """Tell the hub about every dossier, then wait until DVCQG holds them all."""
    occurred = (datetime.now(VN_TZ) - timedelta(days=1)).isoformat()
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    for start in range(0, len(codes), SEED_BATCH):
        events = [_seed_event(c, occurred) for c in codes[start : start + SEED_BATCH]]
        async with http.post(
            hub.base_url + SEED_PATH, json={"events": events}, headers=headers
        ) as response:
            reply = await response.json() if response.status == 200 else await response.text()
        if not isinstance(reply, dict) or reply.get("accepted") != len(events):
            raise PaymentBenchFailed(f"seeding refused: HTTP {response.status}: {str(reply)[:500]}")
    accepted = time.perf_counter()
    wanted = set(codes)
    last, moved_at = -1, time.perf_counter()
    while (held := len(wanted & sim.dossiers.keys())) < len(wanted):
        now = time.perf_counter()
        if held != last:
            last, moved_at = held, now
        elif now - moved_at > STALL_S:
            raise PaymentBenchFailed(f"DVCQG stopped receiving seeded dossiers: {held}")
        hub.check_alive()
        await asyncio.sleep(0.05)
    return {
        "accepted_s": round(accepted - started, 2),
        "at_dvcqg_s": round(time.perf_counter() - started, 2),
    }


# -- one variant ----------------------------------------------------------------------------------


@dataclass
class Rig:
    hubs: list[HubProcess]  # the replicas; the first was started first and is seeded through
    http: aiohttp.ClientSession
    receiver: WebhookReceiver
    tally: PaidTally
    sampler: RssSampler
    concurrency: int
    window: Window
    store_server: psutil.Process | None = None

    @property
    def callback_urls(self) -> list[str]:
        return [
            hub.base_url
            + str(
                hub.settings["connectors"]["payment_platform"].get(
                    "callback_path", "/payment-platform/callback"
                )
            )
            for hub in self.hubs
        ]

    async def run(self, posts: list[Post], label: str = "") -> dict[str, Any]:
        """Post everything, wait for the drain, check exactly-once; the variant's figures.
        With a `label`, the round is profiled (`bench.stages`) under it."""
        everything = {p.transaction_id for p in posts}
        wanted = set(everything)  # shrunk to what was answered `00` once all replies are in
        before = len(self.sampler.samples)
        cpu = cpu_meter(hub=[process(h.pid) for h in self.hubs], bench=[process()])
        root = self.store_server
        store_server = CpuClock({"postgresql": lambda: tree_cpu_seconds(root)} if root else {})
        machine = MachineMeter()
        drained = asyncio.create_task(wait_held(self.tally, wanted, self.hubs))
        cpu.start()
        machine.start()
        store_server.start()
        metered_from = time.perf_counter()
        profiled = self.window(label, self.hubs[0].pid, len(posts)) if label else nullcontext()
        try:
            async with profiled:
                posted = await post_all(self.http, self.callback_urls, posts, self.concurrency)
                wanted &= posted.answered_00  # a refused callback has no event to wait for
                held_when_replied = self.tally.held(wanted)
                drained_at = await drained
        finally:
            if not drained.done():
                drained.cancel()
                await asyncio.gather(drained, return_exceptions=True)
        server_s, server_cpu = store_server.stop()
        cpu_share = {
            **cpu.stop(),
            **{name: round(used / max(server_s, 1e-9), 2) for name, used in server_cpu.items()},
        }
        busy = machine.stop()
        metered_s = time.perf_counter() - metered_from
        await asyncio.sleep(SETTLE_S)
        once = self.tally.check_exactly_once(everything)
        samples = self.sampler.samples[before:]
        seconds = posted.finished - posted.started
        figures: dict[str, Any] = {
            "callbacks_posted": len(posts),
            "transactions": len(everything),
            "repeats_posted": sum(p.repeat for p in posts),
            "concurrency": self.concurrency,
            "seconds": round(seconds, 3),
            "callbacks_per_s": round(len(posts) / seconds, 1),
            "transactions_per_s": round(len(everything) / seconds, 1),
            **latency_ms(posted.latencies),
            "replies": dict(posted.codes),
            "not_00": posted.not_ok,
            "refusal_samples": posted.refusals,
            "events_held_when_all_replied": held_when_replied,
            "drain_s": round(drained_at - posted.started, 2),
            "drain_after_last_reply_s": round(drained_at - posted.finished, 2),
            "events": once,
            "rss_peak_mb": _peak(samples, posted.started, time.perf_counter()),
            "cpu_cores_used": cpu_share,
            # Every process's CPU per callback, and how busy the whole machine was: when it is
            # near 1, no part of the hub can go faster without another part going slower.
            "cpu_ms_per_callback": {
                name: round(cores * metered_s * 1000 / len(posts), 3)
                for name, cores in cpu_share.items()
            },
            "machine": busy,
        }
        if posted.repeat_latencies:
            figures["repeat_latency"] = latency_ms(posted.repeat_latencies)
        return figures


def _problems(name: str, figures: dict[str, Any]) -> list[str]:
    out = []
    if figures["not_00"]:
        out.append(f"{name}: {figures['not_00']} replies not 00 ({figures['refusal_samples']})")
    events = figures["events"]
    if events["missing"] or events["extra"]:
        out.append(f"{name}: events {events}")
    return out


# -- the phase ------------------------------------------------------------------------------------


async def measure_payments(
    options: E2eOptions,
    callbacks: int,
    concurrency: int,
    repeat_share: float,
    baseline: dict[str, Any] | None,
    replicas: int = 1,
) -> dict[str, Any]:
    """Seed, warm up, then the `unique` variant and (with `repeat_share` > 0) `duplicates`.
    With `replicas` > 1 (a PostgreSQL store in `options.hub_overrides`), that many `hub run`
    processes share the store and the queues (`broker.single_active_consumer`, as in
    production), and the callbacks are shared out over their doors in turn; the RSS figures
    are the first replica's, the CPU figure all of theirs."""
    codes = dossier_codes(callbacks)
    seed_token, receiver_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    prefix = f"{options.run_id}-pay"
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim,
        WebhookReceiver(token=receiver_token) as receiver,
        PaymentPlatformSimulator(partner_code=PARTNER, secret=SECRET) as platform,
    ):
        overrides = deep_merge(
            hub_overrides(platform.base_url, receiver.url, receiver_token, seed_token),
            options.hub_overrides,
        )
        connector = aiohttp.TCPConnector(limit=max(concurrency, 8))
        async with AsyncExitStack() as stack:
            hubs = [
                await stack.enter_async_context(
                    bench_hub(workdir, options.broker_url, prefix, sim.url, tree)
                )
                for workdir, tree in _replicas(options.workdir / "payments", overrides, replicas)
            ]
            hub = hubs[0]
            http = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
            tally = PaidTally(receiver)
            sampler = RssSampler(process(hub.pid), tally.total, RSS_EVERY_S)
            after_start = sampler.sample()
            seeding = await seed(http, hub, seed_token, sim, codes)
            warm = build_posts(platform, codes[: min(WARM_UP, callbacks)], SUFFIX["warm_up"])
            unique = build_posts(platform, codes, SUFFIX["unique"])
            repeated: list[Post] = []
            if repeat_share > 0:
                fresh = build_posts(platform, codes, SUFFIX["duplicates"])
                repeated = with_repeats(fresh, repeat_share, concurrency)
            rig = Rig(
                hubs, http, receiver, tally, sampler, concurrency, options.profiled,
                options.store_server,
            )  # fmt: skip
            idle = sampler.sample()
            sampler.start()
            try:
                warm_up = await rig.run(warm)
                if warm_up["not_00"]:
                    raise PaymentBenchFailed("; ".join(_problems("warm-up", warm_up)))
                variants = {"unique": await rig.run(unique, "payment_callbacks")}
                if repeated:
                    variants["duplicates"] = await rig.run(repeated)
                end = sampler.sample()
            finally:
                await sampler.stop()
            samples = sampler.samples
    problems = [p for name, v in variants.items() for p in _problems(name, v)]
    if problems:
        raise PaymentBenchFailed("; ".join(problems))
    main = variants["unique"]
    ceiling = baseline.get("messages_per_s") if baseline else None
    ratio = (
        round(main["callbacks_per_s"] / ceiling, 3)
        if isinstance(ceiling, int | float) and ceiling
        else None
    )
    return {
        "callbacks": callbacks,
        "concurrency": concurrency,
        "replicas": replicas,
        "repeat_share": repeat_share,
        "require_known_dossier": hub.settings["connectors"]["payment_platform"][
            "require_known_dossier"
        ],
        "subscriber_config": {
            "concurrency": SUBSCRIBER_CONCURRENCY,
            "rate_limit_per_s": SUBSCRIBER_RATE_PER_S,
        },
        "seeding": seeding,
        "variants": variants,
        "relay_baseline": baseline,
        "ratio_to_relay": ratio,
        "rss": {
            "after_start_mb": round(after_start.rss_mb, 1),
            "idle_mb": round(idle.rss_mb, 1),
            "peak_mb": round(max(s.rss_mb for s in samples), 1),
            "end_mb": round(end.rss_mb, 1),
        },
        "cpu_cores_used": main["cpu_cores_used"],
        "hub_exit_code": hub.exit_code,
    }


def _replicas(
    workdir: Path, overrides: dict[str, Any], count: int
) -> list[tuple[Path, dict[str, Any]]]:
    """Each replica's folder and settings: one hub as before, or `count` named replicas with
    one active consumer per queue."""
    if count == 1:
        return [(workdir, overrides)]
    return [
        (
            workdir / f"r{i + 1}",
            deep_merge(
                {"instance": f"bench-pay-r{i + 1}", "broker": {"single_active_consumer": True}},
                overrides,
            ),
        )
        for i in range(count)
    ]
