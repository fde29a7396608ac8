"""Sync completeness and sync lag, checked against a traffic run whose true values are known.

Every dossier's status time is set in the past by a known offset, so each true lag is that
offset plus the time the hub took, which the test brackets between the moment it posted and
the moment DVCQG held everything. Dossiers DVCQG refuses stay unconfirmed, and changes made
while DVCQG is down are unconfirmed until it is back: the test knows exactly how many.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.synclag import RATIO
from tests.integration.dashboard_world import DashboardWorld, record_event
from tests.support import eventually

CODE = "000.00.41.H41-261124-{:04d}"
N = 40
REFUSED = 4  # the last four: DVCQG refuses them for good
HALF_BUCKET = math.sqrt(RATIO)  # the histogram's worst error either side


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def step_event(code: str, event_id: str, status: str, at: datetime) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "dossier_code": code,
        "kind": "step",
        "occurred_at": at.isoformat(),
        "status": status,
        "step": {"content": "Chuyển phòng chuyên môn"},
    }


async def test_completeness_and_lag_match_a_known_traffic_run(dash: DashboardWorld) -> None:
    viewer = await dash.operator("viewer")
    codes = [CODE.format(i) for i in range(N)]
    dash.sim.faults.reject = dict.fromkeys(codes[N - REFUSED :], "99")
    offsets_s = {code: 10.0 * (i + 1) for i, code in enumerate(codes)}  # 10 s … 400 s

    # Whole seconds: the one-stop's times travel to the second.
    posted = time.time()
    now = datetime.fromtimestamp(math.floor(posted), UTC)
    await dash.post_events(
        [
            record_event(c, f"r-{c}", "accepted", now - timedelta(seconds=offsets_s[c]))
            for c in codes
        ]
    )
    accepted = codes[: N - REFUSED]
    await eventually(
        lambda: all(c in dash.sim.dossiers for c in accepted), 30, "the accepted dossiers at DVCQG"
    )
    held = time.time()

    async def overview() -> dict[str, Any]:
        status, reply = await viewer.call("GET", "/api/v1/admin/overview")
        assert status == 200
        data: dict[str, Any] = reply
        return data

    async def settled(expected_unconfirmed: int) -> bool:
        unconfirmed: int = (await overview())["completeness"]["unconfirmed"]
        return unconfirmed == expected_unconfirmed

    await eventually(lambda: settled(REFUSED), 30, f"{REFUSED} unconfirmed")
    data = await overview()
    assert data["completeness"] == {
        "dossiers": N,
        "confirmed": N - REFUSED,
        "unconfirmed": REFUSED,
        "ratio": (N - REFUSED) / N,
        "min_ratio": 0.95,
        "below_min": (N - REFUSED) / N < 0.95,
    }
    # The true lags: each confirmed dossier's offset plus [0, held - posted + 1 s of rounding].
    base = [offsets_s[c] + (posted - now.timestamp()) for c in accepted]
    slack = held - posted
    assert data["lag"]["samples"] == N - REFUSED
    for q, key in ((0.5, "p50_s"), (0.95, "p95_s")):
        low = nearest_rank(base, q)
        assert low / HALF_BUCKET <= data["lag"][key] <= (low + slack) * HALF_BUCKET, (q, data)

    # Sending the same states again counts nothing twice: the hub takes each as a duplicate
    # there and then, and queues nothing.
    again = await dash.post_events(
        [
            record_event(c, f"r-{c}", "accepted", now - timedelta(seconds=offsets_s[c]))
            for c in codes
        ]
    )
    assert {r["outcome"] for r in again["results"]} == {"duplicate"}, again
    assert (await overview())["lag"]["samples"] == N - REFUSED

    # DVCQG down: ten dossiers move on; they are unconfirmed until it is back, then each new
    # status counts once more.
    dash.sim.faults.mode = "http_503"
    moved = accepted[:10]
    changed_at = datetime.fromtimestamp(math.floor(time.time()), UTC)
    await dash.post_events([step_event(c, f"s-{c}", "processing", changed_at) for c in moved])
    await eventually(lambda: settled(REFUSED + 10), 30, f"{REFUSED + 10} unconfirmed")
    ratio = (await overview())["completeness"]["ratio"]
    assert ratio == (N - REFUSED - 10) / N
    portal = dash.hub.connector("national_portal")
    assert portal is not None
    assert portal.guard is not None
    gate = portal.guard.gate
    tiers_s = sum(dash.hub.config.connectors.national_portal.delay_tiers_s)
    await eventually(
        lambda: gate.outage is not None and time.time() - gate.outage.started_at > 1.5 * tiers_s,
        60,
        "DVCQG down for longer than every delay tier together",
    )
    dash.sim.faults.mode = "ok"
    # The test's retry tiers are short (seconds) and the outage outlasted them: the changes
    # waited, nothing was parked, and they go out by themselves with no operator.
    await eventually(lambda: settled(REFUSED), 60, f"{REFUSED} unconfirmed again")
    data = await overview()
    assert data["lag"]["samples"] == N - REFUSED + 10
    assert data["completeness"]["ratio"] == (N - REFUSED) / N
    portal = next(c for c in data["connectors"] if c["name"] == "national_portal")
    assert portal["dead_letters"] == REFUSED  # the refused ones only, none from the outage
