"""Sectoral ministry connectors: SOAP hand-offs per second, and the latency a result push adds.

One hub (own store, own queue prefix) runs with two ministry systems and one subscriber,
`one_stop`, receiving `ministry.#` at a `WebhookReceiver` in this process (production defaults
otherwise), beside the DVCQG simulator, as in the other phases:

* `business_registration` (SOAP) hands dossiers of its procedure off to a
  `BusinessRegistrationSimulator` in this process, with `concurrency` and `rate_limit_per_s`
  set high enough not to be the limit; it is not polled and the simulator queues no results,
  so `NopHoSo` is the only SOAP traffic;
* `civil_status` (REST) takes results pushed to `POST /api/v1/ministries/civil_status/results`
  with a bearer token; it hands nothing off.

Timed, in this order:

1. `soap.raw`, the ceiling: N `NopHoSo` calls made directly by a zeep `AsyncClient`
   (`AsyncTransport`, same WSDL, WS-Security and request fields as the hub's) at the same
   concurrency against the same simulator, after a warm-up round. The client runs in a child
   process (`python -m bench.ministries`, its spec on stdin) before the hub starts: in the
   hub case the SOAP client is a process of its own too, and the simulator has this process;
2. `soap.hub`: N dossiers of the procedure posted to `POST /api/v1/dossier-events` (500 per
   call), from the first post until the simulator has accepted all N hand-offs (polled every
   10 ms), after a warm-up round through the hub;
3. `push`: one result per request, in the civil-status simulator's own shape, for dossiers the
   hub knows (seeded first, and held by DVCQG before timing so the portal connector is idle),
   one request in flight: from the POST to the moment the receiver stored the
   `ministry.result` event (noted where it lands, to the microsecond); then the same events
   posted by this process straight to the receiver, timed the same way. The added latency is
   hub minus raw per percentile.

Beside the figures: CPU used by the hub, the bench, the raw client and RabbitMQ, the hub's RSS
(sampled every 0.25 s), and what the simulators saw (requests, repeats, peak in flight). This
module must never change the hub's code or its production defaults beyond what
`bench.hubproc` and `hub_overrides` below set.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench.e2e import E2eOptions
from bench.hubproc import PORTAL_PASSWORD, PORTAL_USER, UNIT, bench_hub, child_process
from bench.payments import latency_ms
from bench.watch import RssSampler, cpu_meter, process
from connectors.ministry.config import MinistryConfig
from hub.auth import sha256_hex
from hub.config import deep_merge
from hub.subscribers import SubscriberConfig
from sims.ministry import examples
from sims.ministry.rest_simulator import CivilStatusSimulator
from sims.ministry.soap_simulator import DKKD_WSDL, VN_TZ, BusinessRegistrationSimulator
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.support import HubProcess

SOAP_SYSTEM, REST_SYSTEM = "business_registration", "civil_status"
WSSE_USER, WSSE_PASSWORD = "bench-hub", "bench-wsse-password"
RATE_LIMIT_PER_S = 10_000.0  # far above what the loopback simulator can answer
SUBSCRIBER = "one_stop"
RESULT_EVENT = "ministry.result"
SEED_SOURCE = "bench_ministries"
SEED_PATH = "/api/v1/dossier-events"
PUSH_PATH = f"/api/v1/ministries/{REST_SYSTEM}/results"
SEED_BATCH = 500  # the hub's validation.max_items_per_batch default
DAY = {"raw_warm": "250101", "raw": "250102", "warm": "250103", "hub": "250104", "push": "250105"}
WARM_UP_HANDOFFS = 200
WARM_UP_PUSHES = 20
JSON_HEADERS = {"Content-Type": "application/json"}
POLL_S = 0.01
RSS_EVERY_S = 0.25
STALL_S = 60.0
CHILD_START = "timing"  # the line the raw client prints when its timed round begins


class MinistryBenchFailed(RuntimeError):
    """The hub refused a post, a hand-off or a result went missing, or delivery stalled."""


def dossier_codes(day: str, count: int) -> list[str]:
    return [f"{UNIT}-{day}-{n:06d}" for n in range(1, count + 1)]


def hub_overrides(
    soap_url: str,
    civil_url: str,
    receiver_url: str,
    tokens: dict[str, str],
    concurrency: int,
) -> dict[str, Any]:
    return {
        "sources": {
            SEED_SOURCE: {
                "api_token_sha256": sha256_hex(tokens["seed"]),
                "permissions": ["events.write"],
                "units": [UNIT],
            }
        },
        "subscribers": {
            SUBSCRIBER: {"url": receiver_url, "token": tokens["receiver"], "events": ["ministry.#"]}
        },
        "ministries": {
            SOAP_SYSTEM: examples.business_registration(
                soap_url,
                WSSE_USER,
                WSSE_PASSWORD,
                poll_interval_s=None,
                concurrency=concurrency,
                rate_limit_per_s=RATE_LIMIT_PER_S,
            ),
            # Results only: the bench pushes them itself, nothing is handed off.
            REST_SYSTEM: examples.civil_status(
                civil_url,
                None,
                procedures=[],
                # Nothing is handed to it, so the dossiers it may report on are named.
                result_procedures=[examples.CIVIL_PROCEDURE],
                submit=None,
                push={
                    "token_sha256": sha256_hex(tokens["push"]),
                    # Off: the bench measures what the hub takes from one address.
                    "limits": {"per_address_per_s": 0, "per_source_per_s": 0},
                },
            ),
        },
    }


def _ratio(a: Any, b: Any) -> float | None:
    ok = isinstance(a, int | float) and isinstance(b, int | float) and b
    return round(a / b, 3) if ok else None


def _delta(hub: dict[str, Any], raw: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        h, r = hub.get(key), raw.get(key)
        out[key] = round(h - r, 1) if isinstance(h, float) and isinstance(r, float) else None
    return out


async def _wait_until(held: Callable[[], int], target: int, hub: HubProcess, what: str) -> float:
    """perf_counter time at which `held()` reached `target`; fails if it stops moving."""
    last, moved_at = -1, time.perf_counter()
    while True:
        now = time.perf_counter()
        count = held()
        if count >= target:
            return now
        if count != last:
            last, moved_at = count, now
        elif now - moved_at > STALL_S:
            raise MinistryBenchFailed(f"{what}: no progress for {STALL_S:.0f}s at {count}/{target}")
        hub.check_alive()
        await asyncio.sleep(POLL_S)


# -- 1. the raw SOAP ceiling (a child process) ----------------------------------------------------


def soap_request(code: str, received_at: datetime) -> dict[str, Any]:
    """`NopHoSo` as the hub's mapping builds it from a seeded dossier (`_dossier_event`)."""
    return {
        "MaHoSo": code,
        "MaTTHC": examples.BUSINESS_PROCEDURE,
        "TenDoanhNghiep": "Công ty TNHH Ánh Dương",
        "NguoiNop": "Nguyễn Văn An",
        "SoGiayTo": "001099012345",
        "NgayTiepNhan": received_at,
    }


async def _soap_round(service: Any, codes: list[str], concurrency: int) -> Counter[str]:
    """Every `NopHoSo`, `concurrency` in flight (closed loop); the replies' MaLoi counted."""
    todo = iter(codes)
    at = datetime.now(VN_TZ).replace(microsecond=0) - timedelta(hours=1)
    codes_seen: Counter[str] = Counter()

    async def caller() -> None:
        for code in todo:
            try:
                reply = await service.NopHoSo(**soap_request(code, at))
                codes_seen[str(reply.MaLoi)] += 1
            except Exception as exc:  # counted, not raised: the figure says how many failed
                codes_seen[type(exc).__name__] += 1

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return codes_seen


async def _soap_child(spec: dict[str, Any]) -> dict[str, Any]:
    import zeep  # only the child needs zeep
    from zeep.transports import AsyncTransport
    from zeep.wsse.username import UsernameToken

    settings = zeep.Settings(
        strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    transport = AsyncTransport()  # type: ignore[no-untyped-call]
    wsse = UsernameToken(spec["username"], spec["password"])  # type: ignore[no-untyped-call]
    client = zeep.AsyncClient(  # type: ignore[no-untyped-call]
        spec["wsdl"], wsse=wsse, transport=transport, settings=settings
    )
    bound = client.bind()
    # AsyncClient.create_service would give a synchronous proxy: build the async kind.
    service = type(bound)(client, bound._binding, address=spec["address"])
    concurrency = int(spec["concurrency"])
    try:
        await _soap_round(service, spec["warm_up"], concurrency)
        print(CHILD_START, flush=True)
        cpu_before, started = time.process_time(), time.perf_counter()
        replies = await _soap_round(service, spec["codes"], concurrency)
        seconds = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_before
    finally:
        await transport.aclose()  # type: ignore[no-untyped-call]
    return {"seconds": seconds, "replies": dict(replies), "client_cpu_s": cpu_s}


async def soap_ceiling(
    sim: BusinessRegistrationSimulator, count: int, concurrency: int, log_path: Path
) -> dict[str, Any]:
    """The raw ceiling: `count` NopHoSo calls by a zeep AsyncClient in a child process."""
    codes = dossier_codes(DAY["raw"], count)
    spec = {
        "wsdl": str(DKKD_WSDL),
        "address": sim.url,
        "username": WSSE_USER,
        "password": WSSE_PASSWORD,
        "concurrency": concurrency,
        "warm_up": dossier_codes(DAY["raw_warm"], min(WARM_UP_HANDOFFS, count)),
        "codes": codes,
    }
    async with child_process("bench.ministries", spec, log_path) as (out, child):
        result, cpu_share, peak = await _follow_child(out, child.pid, sim)
    if child.returncode != 0 or result is None:
        raise MinistryBenchFailed(
            f"the raw SOAP client exited with {child.returncode}: {_tail(log_path)}"
        )
    if result["replies"] != {"00": count}:
        raise MinistryBenchFailed(f"raw NopHoSo replies were not all 00: {result['replies']}")
    accepted = sum(1 for c in codes if c in sim.accepted)
    seconds = float(result["seconds"])
    return {
        "calls": count,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "calls_per_s": round(count / seconds, 1),
        "replies": result["replies"],
        "accepted_by_simulator": accepted,
        "simulator_peak_in_flight": peak,
        "cpu_cores_used": {
            **cpu_share,
            "client": round(float(result["client_cpu_s"]) / seconds, 2),
        },
    }


def _tail(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


async def _follow_child(
    stdout: asyncio.StreamReader, pid: int, sim: BusinessRegistrationSimulator
) -> tuple[dict[str, Any] | None, dict[str, float], int]:
    """The child's result, CPU of this process and RabbitMQ over its timed round, and the
    simulator's peak in flight during it."""
    cpu = cpu_meter(bench=[process()])
    result: dict[str, Any] | None = None
    peak = 0
    cpu_share: dict[str, float] = {}
    while line := await stdout.readline():
        text = line.decode().strip()
        if text == CHILD_START:
            sim.peak_in_flight = sim.in_flight
            cpu.start()
        elif text.startswith("{"):
            cpu_share, peak = cpu.stop(), sim.peak_in_flight
            result = json.loads(text)
    return result, cpu_share, peak


# -- 2. SOAP round trips through the hub ----------------------------------------------------------


def _dossier_event(code: str, procedure: str, at: datetime) -> dict[str, Any]:
    return {
        "event_id": f"bench-{code}",
        "dossier_code": code,
        "kind": "record",
        "status": "accepted",
        "occurred_at": at.isoformat(),
        "record": {
            "procedure_code": procedure,
            "procedure_name": "Đăng ký",
            "owner_name": "Nguyễn Văn An",
            "applicant_id": "001099012345",
            "summary": "Công ty TNHH Ánh Dương",
            "received_at": at.isoformat(),
        },
    }


@dataclass
class Rig:
    hub: HubProcess
    http: aiohttp.ClientSession
    seed_token: str

    async def post_dossiers(self, codes: list[str], procedure: str) -> None:
        """Tell the hub about every dossier (500 per call); fail unless all are accepted."""
        at = datetime.now(VN_TZ).replace(microsecond=0) - timedelta(hours=1)
        headers = {"Authorization": f"Bearer {self.seed_token}"}
        for start in range(0, len(codes), SEED_BATCH):
            events = [_dossier_event(c, procedure, at) for c in codes[start : start + SEED_BATCH]]
            async with self.http.post(
                self.hub.base_url + SEED_PATH, json={"events": events}, headers=headers
            ) as response:
                reply = await response.json() if response.status == 200 else await response.text()
            if not isinstance(reply, dict) or reply.get("accepted") != len(events):
                raise MinistryBenchFailed(
                    f"dossiers refused: HTTP {response.status}: {str(reply)[:500]}"
                )


async def hand_offs(
    rig: Rig, sim: BusinessRegistrationSimulator, codes: list[str], sampler: RssSampler
) -> dict[str, Any]:
    """Post `codes` to the hub; figures until the simulator has accepted every one."""
    before_accepted, before_calls = len(sim.accepted), sim.requests["NopHoSo"]
    sim.peak_in_flight = sim.in_flight
    cpu = cpu_meter(hub=[process(rig.hub.pid)], bench=[process()])
    first_sample = len(sampler.samples)
    cpu.start()
    started = time.perf_counter()
    await rig.post_dossiers(codes, examples.BUSINESS_PROCEDURE)
    posted = time.perf_counter()
    done = await _wait_until(
        lambda: len(sim.accepted) - before_accepted, len(codes), rig.hub, "SOAP hand-offs"
    )
    cpu_share = cpu.stop()
    missing = [c for c in codes if c not in sim.accepted]
    if missing:
        raise MinistryBenchFailed(f"{len(missing)} dossiers never handed off, e.g. {missing[0]}")
    seconds = done - started
    calls = sim.requests["NopHoSo"] - before_calls
    rss = [s.rss_mb for s in sampler.samples[first_sample:]]
    return {
        "dossiers": len(codes),
        "seconds": round(seconds, 3),
        "round_trips_per_s": round(len(codes) / seconds, 1),
        "posted_s": round(posted - started, 3),
        "nophoso_calls": calls,
        "calls_beyond_one_per_dossier": calls - len(codes),
        "simulator_peak_in_flight": sim.peak_in_flight,
        "cpu_cores_used": cpu_share,
        "rss_peak_mb": round(max(rss), 1) if rss else None,
    }


# -- 3. the latency a result push adds ------------------------------------------------------------


class ArrivalClock(Counter[str]):
    """The receiver's `receipts`, noting when (perf_counter) each event id was first stored."""

    def __init__(self) -> None:
        self.first_seen: dict[str, float] = {}
        super().__init__()

    def __setitem__(self, key: str, value: int) -> None:
        if key not in self.first_seen:
            self.first_seen[key] = time.perf_counter()
        super().__setitem__(key, value)


def install_clock(receiver: WebhookReceiver) -> ArrivalClock:
    clock = ArrivalClock()
    clock.update(receiver.receipts)
    receiver.receipts = clock
    return clock


@dataclass
class Pusher:
    rig: Rig
    receiver: WebhookReceiver
    clock: ArrivalClock
    push_token: str
    receiver_token: str

    async def _next_result(self, index: int) -> dict[str, Any]:
        """The `index`-th `ministry.result` event the receiver holds, once it holds it."""
        if not await self.receiver.wait_for(index + 1, STALL_S, type=RESULT_EVENT):
            raise MinistryBenchFailed(f"result event {index + 1} never reached the receiver")
        return self.receiver.by_type(RESULT_EVENT)[index]

    async def through_hub(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Each item pushed alone, one request in flight; per item, POST → event stored and
        POST → reply. The events as delivered, for the raw round."""
        url = self.rig.hub.base_url + PUSH_PATH
        headers = {**JSON_HEADERS, "Authorization": f"Bearer {self.push_token}"}
        bodies = [json.dumps({"ketQua": [item]}, ensure_ascii=False).encode() for item in items]
        held = len(self.receiver.by_type(RESULT_EVENT))
        to_event, to_reply, events = [], [], []
        for index, (item, body) in enumerate(zip(items, bodies, strict=True)):
            sent = time.perf_counter()
            async with self.rig.http.post(url, data=body, headers=headers) as response:
                reply = await response.json() if response.status == 200 else await response.text()
            to_reply.append(time.perf_counter() - sent)
            if not isinstance(reply, dict) or reply.get("accepted") != 1:
                raise MinistryBenchFailed(f"push refused: HTTP {response.status}: {reply!s:.500}")
            event = await self._next_result(held + index)
            if event["result"]["result_id"] != item["id"]:
                raise MinistryBenchFailed(f"expected result {item['id']}, got {event['event_id']}")
            to_event.append(self.clock.first_seen[event["event_id"]] - sent)
            events.append(event)
        return {"to_event": to_event, "to_reply": to_reply, "events": events}

    async def direct(self, events: list[dict[str, Any]]) -> list[float]:
        """The same events posted straight to the receiver (new event ids), timed alike."""
        copies = [{**e, "event_id": f"{e['event_id']}:raw"} for e in events]
        prepared = [
            (
                c["event_id"],
                json.dumps(c, ensure_ascii=False).encode(),
                {
                    **JSON_HEADERS,
                    "Authorization": f"Bearer {self.receiver_token}",
                    "X-Hub-Event-Id": c["event_id"],
                    "X-Hub-Event-Type": RESULT_EVENT,
                },
            )
            for c in copies
        ]
        latencies = []
        for event_id, body, headers in prepared:
            sent = time.perf_counter()
            async with self.rig.http.post(self.receiver.url, data=body, headers=headers) as r:
                status = r.status
                await r.read()
            if status != 200 or event_id not in self.clock.first_seen:
                raise MinistryBenchFailed(f"the receiver refused {event_id}: HTTP {status}")
            latencies.append(self.clock.first_seen[event_id] - sent)
        return latencies


async def push_latency(
    pusher: Pusher, civil: CivilStatusSimulator, codes: list[str], hub: HubProcess
) -> dict[str, Any]:
    """Warm up, then one push per dossier through the hub, then the same events direct."""
    # The simulator never received these dossiers (the one-stop gave them to the hub only):
    # its `inject_unknown_result` queues one result in its own wire shape, which we push.
    items = [civil.inject_unknown_result(code, "DA_DANG_KY") for code in codes]
    warm, timed = items[:WARM_UP_PUSHES], items[WARM_UP_PUSHES:]
    warmed = await pusher.through_hub(warm)
    await pusher.direct(warmed["events"])
    cpu = cpu_meter(hub=[process(hub.pid)], bench=[process()])
    cpu.start()
    started = time.perf_counter()
    through = await pusher.through_hub(timed)
    hub_s = time.perf_counter() - started
    hub_cpu = cpu.stop()
    raw = await pusher.direct(through["events"])
    hub_lat, raw_lat = latency_ms(through["to_event"]), latency_ms(raw)
    return {
        "pushes": len(timed),
        "in_flight": 1,
        "hub_to_event": hub_lat,
        "hub_reply": latency_ms(through["to_reply"]),
        "raw_to_event": raw_lat,
        "added_ms": _delta(hub_lat, raw_lat),
        "hub_seconds": round(hub_s, 2),
        "cpu_cores_used": hub_cpu,
    }


# -- the phase ------------------------------------------------------------------------------------


def _settings(hub: HubProcess) -> dict[str, Any]:
    """What the ministry system and the subscriber ran with, defaults resolved."""
    ministry = MinistryConfig.model_validate(hub.settings["ministries"][SOAP_SYSTEM])
    subscriber = SubscriberConfig.model_validate(hub.settings["subscribers"][SUBSCRIBER])
    keys = ("concurrency", "rate_limit_per_s", "batch_size", "linger_ms")
    return {
        SOAP_SYSTEM: {k: getattr(ministry, k) for k in (*keys, "timeout_s")},
        "subscriber": {k: getattr(subscriber, k) for k in keys},
    }


@dataclass
class Sims:
    """The systems around the hub, all in this process."""

    portal: DvcqgSimulator
    receiver: WebhookReceiver
    soap: BusinessRegistrationSimulator
    civil: CivilStatusSimulator


async def _push_round(
    rig: Rig, sims: Sims, tokens: dict[str, str], pushes: int, earlier: list[str]
) -> dict[str, Any]:
    """Seed the dossiers results are pushed for, wait until DVCQG holds them and the `earlier`
    ones (so the portal connector is idle), then time the pushes."""
    codes = dossier_codes(DAY["push"], pushes + WARM_UP_PUSHES)
    await rig.post_dossiers(codes, examples.CIVIL_PROCEDURE)
    wanted = set(codes) | set(earlier)
    await _wait_until(
        lambda: len(wanted & sims.portal.dossiers.keys()), len(wanted), rig.hub, "DVCQG"
    )
    clock = install_clock(sims.receiver)
    pusher = Pusher(rig, sims.receiver, clock, tokens["push"], tokens["receiver"])
    return await push_latency(pusher, sims.civil, codes, rig.hub)


async def _hub_rounds(
    rig: Rig, sims: Sims, tokens: dict[str, str], dossiers: int, pushes: int
) -> dict[str, Any]:
    """SOAP hand-offs through the hub (after a warm-up round), then the pushes; hub RSS."""
    sampler = RssSampler(process(rig.hub.pid), lambda: len(sims.soap.accepted), RSS_EVERY_S)
    after_start = sampler.sample()
    sampler.start()
    try:
        print("[bench]   ministries: SOAP hand-offs through the hub …", flush=True)
        warm = dossier_codes(DAY["warm"], min(WARM_UP_HANDOFFS, dossiers))
        await hand_offs(rig, sims.soap, warm, sampler)
        timed = dossier_codes(DAY["hub"], dossiers)
        soap = await hand_offs(rig, sims.soap, timed, sampler)
        print("[bench]   ministries: result pushes …", flush=True)
        push = await _push_round(rig, sims, tokens, pushes, timed)
        end = sampler.sample()
    finally:
        await sampler.stop()
    rss = {
        "after_start_mb": round(after_start.rss_mb, 1),
        "peak_mb": round(max(s.rss_mb for s in sampler.samples), 1),
        "end_mb": round(end.rss_mb, 1),
    }
    return {"soap": soap, "push": push, "rss": rss}


async def measure_ministries(
    options: E2eOptions, dossiers: int, pushes: int, concurrency: int
) -> dict[str, Any]:
    """The raw SOAP ceiling, SOAP hand-offs through the hub, then the result-push latency."""
    tokens = {k: secrets.token_urlsafe(24) for k in ("seed", "receiver", "push")}
    workdir = options.workdir / "ministries"
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal,
        WebhookReceiver(token=tokens["receiver"]) as receiver,
        BusinessRegistrationSimulator(
            username=WSSE_USER, password=WSSE_PASSWORD, results_per_dossier=0
        ) as soap_sim,
        CivilStatusSimulator(auth="bearer", results_per_dossier=0) as civil,
    ):
        sims = Sims(portal, receiver, soap_sim, civil)
        print("[bench]   ministries: raw SOAP ceiling …", flush=True)
        raw = await soap_ceiling(soap_sim, dossiers, concurrency, workdir / "raw-soap.log")
        overrides = deep_merge(
            hub_overrides(soap_sim.url, civil.base_url, receiver.url, tokens, concurrency),
            options.hub_overrides,
        )
        prefix = f"{options.run_id}-min"
        hub = bench_hub(workdir, options.broker_url, prefix, portal.url, overrides)
        async with hub, aiohttp.ClientSession() as http:
            rounds = await _hub_rounds(
                Rig(hub, http, tokens["seed"]), sims, tokens, dossiers, pushes
            )
            settings = _settings(hub)
    soap = rounds["soap"]
    return {
        "dossiers": dossiers,
        "concurrency": concurrency,
        "settings": settings,
        "soap": {
            "hub": soap,
            "raw": raw,
            "ratio_hub_to_raw": _ratio(soap["round_trips_per_s"], raw["calls_per_s"]),
        },
        "push": rounds["push"],
        "duplicate_receipts": sum(n - 1 for n in receiver.receipts.values() if n > 1),
        "rss": rounds["rss"],
        "cpu_cores_used": soap["cpu_cores_used"],
        "hub_exit_code": hub.exit_code,
    }


# -- the raw client's process ---------------------------------------------------------------------


def _child_main() -> int:
    """`python -m bench.ministries` with a JSON spec on stdin: the raw SOAP client."""
    spec = json.loads(sys.stdin.read())
    result = asyncio.run(_soap_child(spec))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
