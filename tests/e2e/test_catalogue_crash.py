"""The catalogue sync under fire: the hub process is killed with SIGKILL twice in the middle of
a full sync of the national catalogue, restarted each time, and the run is resumed, not
restarted; every procedure is stored once and announced to the subscriber once.

The hub runs as a real `hub run` process with the catalogue sync on its schedule; the DVCQG
simulator (a slow portal, so that a sync lasts several seconds) and the subscriber run in the
test process.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connectors.national_portal.procedures.sync import APPLY_QUEUE_PER_READER
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.e2e.harness import HubApi
from tests.support import PORTAL_PASSWORD, PORTAL_USER, HubProcess, eventually, hub_overrides

pytestmark = pytest.mark.slow

CATALOGUE_SIZE = 1500
LATENCY_S = 0.015  # per DVCQG call: 1,500 procedures at concurrency 4 take several seconds
CONCURRENCY = 4
STALE_AFTER_S = 3.0
KILL_AT = (0.3, 0.65)  # share of the catalogue read (LayThuTuc calls) when each kill lands
SUB_TOKEN = "sub-token"  # the loopback subscriber's throwaway credential


def crash_overrides(
    tmp_path: Path, rabbit_url: str, prefix: str, sim: str, subscriber: str
) -> dict[str, Any]:
    overrides = hub_overrides(
        tmp_path,
        rabbit_url,
        prefix,
        sim,
        catalogue={
            "enabled": True,
            "interval_s": 86400,  # one full sync at start, no second one during the test
            "concurrency": CONCURRENCY,
            "rate_limit_per_s": 1000,
            "heartbeat_s": 0.5,
            "stale_after_s": STALE_AFTER_S,
        },
    )
    overrides["subscribers"] = {
        "one_stop": {
            "url": subscriber,
            "token": SUB_TOKEN,
            "delay_tiers_s": [0.2, 0.4],
            "retry": {"attempts": 2, "initial_backoff_s": 0.05, "max_backoff_s": 0.1},
            "breaker": {"failure_threshold": 50, "recovery_s": 1},
            "rate_limit_per_s": 1000,
            "concurrency": CONCURRENCY,  # lanes: bounds the posts in flight at a kill
            "linger_ms": 10,
        }
    }
    return overrides


async def test_sigkill_mid_sync_resumes_the_same_run_and_announces_each_procedure_once(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, hub_process: HubProcess
) -> None:
    started = time.monotonic()
    async with (
        DvcqgSimulator(
            username=PORTAL_USER, password=PORTAL_PASSWORD, procedures=CATALOGUE_SIZE
        ) as sim,
        WebhookReceiver(token=SUB_TOKEN) as receiver,
        aiohttp.ClientSession() as http,
    ):
        sim.faults.mode = "slow"
        sim.faults.delay_s = LATENCY_S
        codes = set(sim.catalogue.records)
        assert len(codes) == CATALOGUE_SIZE
        hub_process.settings = crash_overrides(
            tmp_path, rabbit_url, broker_prefix, sim.url, receiver.url
        )
        api = HubApi(http, hub_process)

        def fetched() -> int:
            return sim.calls["LayThuTuc"]

        async def read(share: float) -> None:
            await eventually(
                lambda: fetched() >= share * CATALOGUE_SIZE,
                60,
                lambda: f"{share:.0%} of the catalogue read (read {fetched()})\n{api.log_tail()}",
            )

        hub_process.start()  # not waited for: the API calls below wait for it
        run_id: int | None = None
        kills: list[tuple[int, int]] = []  # (procedures read, events received) at each kill
        for share in KILL_AT:
            await read(share)
            runs = await api.runs()
            assert [r["state"] for r in runs] == ["fetching"], runs
            run_id = run_id or runs[0]["id"]
            assert runs[0]["id"] == run_id, f"a new run {runs[0]} instead of resuming {run_id}"
            hub_process.kill()
            kills.append((fetched(), len(receiver.events)))
            assert fetched() < CATALOGUE_SIZE, "the sync ended before the kill: slow DVCQG down"
            hub_process.start()

        try:
            # The restarted hub takes the run over once its dead owner has been silent for
            # stale_after_s, and finishes it.
            runs = await api.wait_run_done(45)
            assert await receiver.wait_for(CATALOGUE_SIZE, 30, type="procedure.created"), (
                f"the subscriber holds {len(receiver.events)} of {CATALOGUE_SIZE} events\n"
                f"{api.log_tail()}"
            )
            # Nothing more is coming: no second announcement of anything.
            assert not await receiver.wait_for(CATALOGUE_SIZE + 1, 1.0)
            procedures = await api.all_procedures()
            # Items are read in code order, so the procedures in flight at each kill (read
            # again after the restart) are near the kill's count in the sorted codes.
            ordered = sorted(codes)
            near_kills = {c for read, _ in kills for c in ordered[max(read - 40, 0) : read + 10]}
            details = {c: await api.get(f"/procedures/{c}") for c in sorted(near_kills)}
        finally:
            exit_code = await hub_process.shut_down()
        assert exit_code == 0, api.log_tail()

    # The same run, resumed twice and finished; no second full run was started.
    assert [(r["id"], r["kind"], r["state"]) for r in runs] == [(run_id, "full", "done")], runs
    assert runs[0]["counts"] == {"created": CATALOGUE_SIZE}, runs[0]
    # The national list was read once (the kills landed after it); each procedure was read
    # about once: only what was read but not yet committed at a kill is read again.
    assert sim.calls["LayDanhSachTTHC"] == 1, sim.calls
    assert fetched() < 1.3 * CATALOGUE_SIZE, f"{fetched()} LayThuTuc calls: the sync restarted"
    # Tighter: at a kill, the calls in flight (`concurrency`), the records waiting for the
    # applier and the batch it was committing (each at most the queue, decision 0077) are
    # read again, plus one retried call for each reader on a loaded machine.
    waiting = CONCURRENCY * APPLY_QUEUE_PER_READER
    per_kill = CONCURRENCY + 2 * waiting + 1 + CONCURRENCY
    assert fetched() <= CATALOGUE_SIZE + per_kill * len(KILL_AT), fetched()

    # Exactly one procedure.created per catalogue code, one event id per code.
    assert {e["type"] for e in receiver.events} == {"procedure.created"}
    assert len(receiver.events) == CATALOGUE_SIZE
    ids_per_code = Counter(e["code"] for e in receiver.events)
    assert set(ids_per_code) == codes
    assert max(ids_per_code.values()) == 1, ids_per_code.most_common(3)
    assert {e["version"] for e in receiver.events} == {1}

    # Raw re-deliveries of the same event id. The hub records a delivery after the subscriber's
    # 2xx, so an event posted just before a kill may be posted again after the restart (the
    # subscriber de-duplicates on X-Hub-Event-Id, as the contract says). Only the posts in
    # flight at a kill can repeat: at most the subscriber's lanes (4) per kill.
    redelivered = sum(receiver.receipts.values()) - len(receiver.receipts)
    assert redelivered <= CONCURRENCY * len(KILL_AT), receiver.duplicates()

    # The store holds every procedure once, at version 1.
    assert len(procedures) == CATALOGUE_SIZE
    assert {p["code"] for p in procedures} == codes
    assert {(p["version"], p["revision"], p["state"]) for p in procedures} == {(1, 0, "active")}

    # Around the kills, each procedure has one version and one change: the event announced.
    event_of = {e["code"]: e["event_id"] for e in receiver.events}
    for code, detail in details.items():
        history = [(h["event_id"], h["type"]) for h in detail["history"]]
        assert history == [(event_of[code], "procedure.created")], (code, detail["history"])
        assert [v["version"] for v in detail["versions"]] == [1], (code, detail["versions"])

    elapsed = time.monotonic() - started
    print(
        f"\ncatalogue crash: kills at (read, announced) {kills}; LayThuTuc calls {fetched()} "
        f"for {CATALOGUE_SIZE}; re-deliveries {redelivered}; {elapsed:.1f} s"
    )
