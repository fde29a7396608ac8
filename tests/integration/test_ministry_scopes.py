"""A ministry system reports results only for its own dossiers (decision 0053).

Two REST systems hand dossiers off to a loopback ministry: `civil_status` takes one procedure,
`civil_other` another (and may also report on a third it is never handed). A result one system
pushes about the other's dossier, or about a code nobody holds, gets the very same answer,
is quarantined where operators see which it was, is counted, and never leaves the hub.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.auth import sha256_hex
from hub.config import load_config
from hub.runtime import Hub
from sims.ministry.rest_simulator import CivilStatusSimulator
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.ministry_world import (
    CIVIL_PROCEDURE,
    SUB_TOKEN,
    World,
    base_overrides,
    civil_section,
    code,
)
from tests.support import PORTAL_PASSWORD, PORTAL_USER, eventually

A, B = "civil_status", "civil_other"
A_TOKEN, B_TOKEN = "token-of-civil-status-Xy7q2", "token-of-civil-other-Kp4m9"
B_PROCEDURE = "1.001193"
B_REPORTS_ONLY = "1.000656"  # B may report on these dossiers, though nobody hands them off
BEARER = "sim-bearer-token"


def _section(url: str, procedures: list[str], token: str, **extra: Any) -> dict[str, Any]:
    auth = {"kind": "bearer", "token": BEARER}
    return civil_section(
        url,
        auth,
        procedures=procedures,
        push={"token_sha256": sha256_hex(token)},
        **extra,
    )


@pytest.fixture
async def scoped(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> AsyncIterator[tuple[World, CivilStatusSimulator]]:
    async with AsyncExitStack() as stack:
        portal = await stack.enter_async_context(
            DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
        )
        one_stop = await stack.enter_async_context(WebhookReceiver(token=SUB_TOKEN))
        sim = await stack.enter_async_context(CivilStatusSimulator(auth="bearer"))
        overrides = base_overrides(tmp_path, rabbit_url, broker_prefix, portal, one_stop)
        overrides["ministries"] = {
            A: _section(sim.base_url, [CIVIL_PROCEDURE], A_TOKEN),
            B: _section(sim.base_url, [B_PROCEDURE], B_TOKEN, result_procedures=[B_REPORTS_ONLY]),
        }
        hub = await stack.enter_async_context(Hub(load_config(None, overrides)))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield World(hub, portal, one_stop, http), sim


def _result(result_id: str, dossier: str) -> dict[str, Any]:
    return {
        "id": result_id,
        "maHoSo": dossier,
        "trangThai": "DA_DANG_KY",
        "thoiDiem": "2026-11-23T10:00:00+07:00",
        "soDangKy": "12/2026/KS",
    }


async def _push(world: World, system: str, token: str, item: dict[str, Any]) -> tuple[int, Any]:
    path = f"/api/v1/ministries/{system}/results"
    return await world.call("POST", path, {"ketQua": [item]}, token=token)


async def _foreign_count(world: World, system: str) -> float:
    async with world.http.get(world.base + "/metrics") as reply:
        text = await reply.text()
    found = re.search(rf'hub_ministry_foreign_results_total{{system="{system}"}} (\S+)', text)
    return float(found.group(1)) if found else 0.0


async def test_a_system_is_refused_alike_for_another_systems_dossier_and_an_unknown_code(
    scoped: tuple[World, CivilStatusSimulator],
) -> None:
    world, sim = scoped
    mine, theirs, reported, nobodys = code(1), code(2), code(3), code(99)
    await world.dossiers([mine], CIVIL_PROCEDURE)
    await world.dossiers([theirs], B_PROCEDURE)
    await world.dossiers([reported], B_REPORTS_ONLY)
    await eventually(lambda: {mine, theirs} <= set(sim.accepted), 30, "both hand-offs")
    assert reported not in sim.accepted  # nobody takes that procedure

    # Counters are the process's: earlier tests in this process may have counted some.
    before = {s: await _foreign_count(world, s) for s in (A, B)}
    # A about B's dossier, and A about a code the hub does not hold: one and the same answer.
    answers = []
    for result_id, dossier in (("KQ-1", theirs), ("KQ-2", nobodys)):
        status, reply = await _push(world, A, A_TOKEN, _result(result_id, dossier))
        body = re.sub(re.escape(dossier), "<code>", repr(reply)).replace(result_id, "<id>")
        answers.append((status, body))
    assert answers[0] == answers[1], answers
    status, reply = await _push(world, A, A_TOKEN, _result("KQ-1", theirs))
    (item,) = reply["items"]
    assert (status, item["verdict"], item["code"]) == (200, "quarantined", "not_handed_to_system")
    assert "civil_status" in item["reason"]
    assert await _foreign_count(world, A) == before[A] + 3

    # Each system's own results go through: A's own dossier, B's handed one, and the one of
    # a procedure B may report on.
    for system, token, result_id, dossier in (
        (A, A_TOKEN, "KQ-3", mine),
        (B, B_TOKEN, "KQ-4", theirs),
        (B, B_TOKEN, "KQ-5", reported),
    ):
        status, reply = await _push(world, system, token, _result(result_id, dossier))
        assert (status, reply["accepted"]) == (200, 1), (system, dossier, reply)

    def delivered() -> set[tuple[str, str]]:
        return {(e["system"], e["dossier_code"]) for e in world.results_at_one_stop()}

    expected = {(A, mine), (B, theirs), (B, reported)}
    await eventually(lambda: delivered() == expected, 30, "the three own results")
    # A's refused results were never committed: nothing of them left the hub (the outbox
    # is relayed in order, so they would have arrived before A's own).
    assert delivered() == expected
    assert len(world.results_at_one_stop(A)) == 1
    assert await _foreign_count(world, B) == before[B]

    # Operators see both refusals, and which was which.
    status, body = await world.call("GET", f"/api/v1/ministries/quarantine?system={A}")
    assert status == 200, body
    kept = {q["dossier_code"]: q for q in body["quarantine"]}
    assert set(kept) == {theirs, nobodys}
    assert {q["code"] for q in kept.values()} == {"not_handed_to_system"}
    assert "holds no such dossier" in kept[nobodys]["reason"]
    assert f"holds it, of procedure {B_PROCEDURE}" in kept[theirs]["reason"]
    assert kept[theirs]["seen"] == 2
