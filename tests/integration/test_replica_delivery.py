"""Two hubs as competing replicas (one PostgreSQL store, one broker prefix) with
`broker.single_active_consumer`: each dossier's changes arrive through both replicas' doors
in turn, and still reach DVCQG in order, never regressing, at their newest state; one replica
at a time takes from the work queue, and when it stops the other takes over and delivers the
rest. A work queue made without the setting, declared again with it, is refused by name.
"""

from __future__ import annotations

import asyncio
import secrets
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.config import load_config
from hub.errors import ConfigError
from hub.runtime import Hub
from hub.validation import VN_TZ
from sims.national_portal.simulator import DvcqgSimulator
from sims.rabbitmq_node import RabbitNode
from tests.support import (
    ONESTOP_TOKEN,
    PORTAL_PASSWORD,
    PORTAL_USER,
    UNIT,
    eventually,
    hub_overrides,
)
from tests.support.streaming import LIFE, NUMBERS, life_record

# A dossier's life, each status later than the one before (DVCQG's TrangThaiHoSo is its number).
DOSSIERS = 12


def replica(tmp: Path, url: str, prefix: str, store: str, portal: str) -> dict[str, Any]:
    overrides = hub_overrides(tmp, url, prefix, portal)
    overrides["store"] = {"backend": "postgresql", "url": store}
    overrides["broker"]["single_active_consumer"] = True
    return overrides


def event(code: str, step: int, start: datetime) -> dict[str, Any]:
    return life_record(code, step, start, f"ev-{code}-{step}")


async def post(http: aiohttp.ClientSession, hub: Hub, events: list[dict[str, Any]]) -> None:
    async with http.post(
        f"http://127.0.0.1:{hub.port}/api/v1/dossier-events",
        json={"events": events},
        headers={"Authorization": f"Bearer {ONESTOP_TOKEN}"},
    ) as r:
        reply = await r.json()
        assert r.status == 200, reply
        assert reply["rejected"] == 0, reply


def active_consumers(node: RabbitNode, queue: str) -> list[str]:
    """The `active` column of the queue's consumers, as the broker lists them."""
    rows = node.ctl("list_consumers", "queue_name", "active").splitlines()
    return [row.split("\t")[1] for row in rows if row.split("\t")[0] == queue]


def in_order(history: list[str]) -> bool:
    numbers = [int(n) for n in history]
    return numbers == sorted(numbers)


async def test_changes_through_either_replica_reach_dvcqg_in_order_and_move_on_a_stop(
    tmp_path: Path, rabbit_node: RabbitNode, broker_prefix: str, postgres_database: str
) -> None:
    start = datetime.now(VN_TZ) - timedelta(hours=2)
    codes = [f"{UNIT}-{start:%y%m%d}-{9500 + n:04d}" for n in range(DOSSIERS)]
    work = f"{broker_prefix}.national_portal.work"
    async with AsyncExitStack() as stack:
        sim = await stack.enter_async_context(
            DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
        )
        http = await stack.enter_async_context(aiohttp.ClientSession())
        stops = [await stack.enter_async_context(AsyncExitStack()) for _ in range(2)]
        hubs = [
            await stops[n].enter_async_context(
                Hub(
                    load_config(
                        None,
                        replica(
                            tmp_path / f"r{n}",
                            rabbit_node.url,
                            broker_prefix,
                            postgres_database,
                            sim.url,
                        ),
                    )
                )
            )
            for n in range(2)
        ]
        assert sorted(active_consumers(rabbit_node, work)) == ["false", "true"]

        # The first three steps of every dossier, each step through the other replica.
        for step in range(3):
            await asyncio.gather(
                *(
                    post(http, hubs[(i + step) % 2], [event(c, step, start)])
                    for i, c in enumerate(codes)
                )
            )

        def at(step: int) -> bool:
            wanted = str(NUMBERS[LIFE[step]])
            return all(sim.dossiers.get(c, {}).get("TrangThaiHoSo") == wanted for c in codes)

        await eventually(lambda: at(2), 60, "every dossier at its third status at DVCQG")

        # The replica that took from the queue (the first to subscribe) stops: the other one
        # takes over, and the last two steps, sent through it, arrive too.
        await stops[0].aclose()
        await eventually(
            lambda: active_consumers(rabbit_node, work) == ["true"], 30, "one consumer, active"
        )
        for step in (3, 4):
            await asyncio.gather(*(post(http, hubs[1], [event(c, step, start)]) for c in codes))
        await eventually(lambda: at(4), 60, "every dossier at its newest status at DVCQG")

    for code in codes:
        history = sim.dossier_history[code]
        assert in_order(history), f"{code} went back at DVCQG: {history}"
        assert history[-1] == "10", history


async def test_a_work_queue_made_without_the_setting_is_refused_by_name(
    tmp_path: Path, rabbit_url: str, postgres_database: str
) -> None:
    prefix = f"t{secrets.token_hex(4)}"
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim:
        plain = replica(tmp_path / "a", rabbit_url, prefix, postgres_database, sim.url)
        plain["broker"]["single_active_consumer"] = False
        async with Hub(load_config(None, plain)):
            pass
        single = replica(tmp_path / "b", rabbit_url, prefix, postgres_database, sim.url)
        with pytest.raises(ConfigError) as refused:
            async with Hub(load_config(None, single)):
                pass
    assert f"the queue {prefix}.national_portal.work exists" in refused.value.message
    assert any("x-single-active-consumer" in p for p in refused.value.problems), refused.value
