"""The DVCQG simulator and the one-stop traffic generator, against each other over loopback.

No mocks: each test starts a real simulator on 127.0.0.1 and talks HTTP to it, so the rules
the hub's own tests rely on (reply codes, faults, what ends up held) are checked here first.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest

from sims.national_portal.simulator import DvcqgSimulator, step_key
from sims.one_stop.simulator import (
    VN_TZ,
    DossierScript,
    LoginRefused,
    OneStopTraffic,
    TrafficReport,
)
from tests.support import eventually

UNIT = "000.00.41.H41"
NOW = datetime(2025, 3, 14, 10, 30, tzinfo=VN_TZ)


@pytest.fixture
async def sim() -> AsyncIterator[DvcqgSimulator]:
    async with DvcqgSimulator() as simulator:
        yield simulator


def traffic(sim: DvcqgSimulator, **options: Any) -> OneStopTraffic:
    return OneStopTraffic(sim.url, sim.username, sim.password, UNIT, **options)


async def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


async def login(sim: DvcqgSimulator) -> str:
    status, reply = await post(sim.url, {"username": sim.username, "password": sim.password})
    assert status == 200
    assert reply["error_code"] == 0
    return str(reply["session"])


async def call(sim: DvcqgSimulator, session: str, service: str, **body: Any) -> tuple[int, Any]:
    return await post(sim.url, {"service": service, "session": session, "madonvi": UNIT, **body})


def assert_portal_holds(sim: DvcqgSimulator, report: TrafficReport) -> None:
    """The portal holds exactly the newest acknowledged record and every step, once."""
    expected = report.expected_state()
    assert sim.dossiers == expected.records
    assert set(sim.step_receipts) == expected.steps
    assert {code: [step_key(s) for s in steps] for code, steps in sim.steps.items()} == {
        code: [step_key(s) for s in steps] for code, steps in expected.steps_by_dossier.items()
    }
    assert sum(len(steps) for steps in sim.steps.values()) == len(expected.steps)


def assert_complete(
    sim: DvcqgSimulator, report: TrafficReport, scripts: list[DossierScript]
) -> None:
    assert report.completed
    assert report.refused == []
    assert_portal_holds(sim, report)
    assert sim.dossiers == {s.code: s.pairs[-1][0] for s in scripts}


# -- the plan -------------------------------------------------------------------------------------


def test_plan_is_realistic_and_covers_every_status() -> None:
    scripts = OneStopTraffic("http://unused", "u", "p", UNIT, seed=7).plan(36, now=NOW)
    assert {status for s in scripts for status in s.statuses} == set(range(1, 11))
    assert len({s.code for s in scripts}) == 36
    for script in scripts:
        assert re.fullmatch(r"\d{3}\.\d{2}\.\d{2}\.H\d{2}-\d{6}-\d{4}", script.code)
        check_script(script)


def check_script(script: DossierScript) -> None:
    times = [datetime.strptime(step["ThoiDiemXuLy"], "%Y%m%d%H%M%S") for _, step in script.pairs]
    assert all(b - a >= timedelta(seconds=1) for a, b in itertools.pairwise(times))
    assert times[-1] <= NOW.replace(tzinfo=None)
    first = script.pairs[0][0]
    assert script.code.split("-")[1] == first["NgayTiepNhan"][2:8]
    assert first["NgayTiepNhan"] == script.pairs[0][1]["ThoiDiemXuLy"]
    assert re.fullmatch(r"\d\.\d{6}", first["MaTTHC"])
    assert re.fullmatch(r"\d{12}", first["MaDoiTuong"])
    assert first["LoaiDoiTuong"] == "1"
    assert re.fullmatch(r"09\d{8}", first["SoDienThoai"])
    assert len(first["ChuHoSo"].split()) == 3
    assert first["TaiLieuNop"]
    assert all(fee["Gia"].isdigit() for fee in first["DanhSachLePhi"])
    for record, step in script.pairs:
        assert record["TrangThaiHoSo"] == step["TrangThai"]
        assert step["MaHoSo"] == record["MaHoSo"] == script.code
        assert bool(record["DanhSachGiayToKetQua"]) == (record["TrangThaiHoSo"] in ("9", "10"))
        assert step["NoiDungXuLy"]
        assert step["NgayBatDau"] <= step["ThoiDiemXuLy"]


def test_plan_is_deterministic_per_seed() -> None:
    def plan(seed: int) -> list[DossierScript]:
        return OneStopTraffic("http://unused", "u", "p", UNIT, seed=seed).plan(20, now=NOW)

    assert plan(3) == plan(3)
    assert {s.code for s in plan(3)}.isdisjoint({s.code for s in plan(4)})


# -- traffic against the simulator ----------------------------------------------------------------


async def test_traffic_leaves_newest_record_and_every_step_once(sim: DvcqgSimulator) -> None:
    generator = traffic(sim, seed=1, batch_size=7)
    scripts = generator.plan(30)
    report = await generator.run(scripts)
    assert_complete(sim, report, scripts)
    assert all(n == 1 for n in sim.step_receipts.values())
    assert sim.dossier_pushes == {s.code: len(s.pairs) for s in scripts}
    assert report.retries == 0
    assert sim.logins == report.logins == 1
    assert sum(sim.calls.values()) == report.calls


def requests_to(sim: DvcqgSimulator, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many requests `sim` receives from now on, logins included (its `calls` leave them
    out, and a client that meets an outage first retries its login)."""
    seen = [0]
    count = sim._count

    def counting(body: dict[str, Any] | None) -> None:
        seen[0] += 1
        count(body)

    monkeypatch.setattr(sim, "_count", counting)
    return lambda: seen[0]


async def test_outage_then_recovery(sim: DvcqgSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    sim.faults.mode = "http_503"
    requests = requests_to(sim, monkeypatch)
    generator = traffic(sim, seed=2)
    scripts = generator.plan(8)
    running = asyncio.create_task(generator.run(scripts))
    # One request at a time: a third one through the outage is a second retry.
    await eventually(lambda: requests() >= 3, 30, "three requests met by 503s")
    sim.faults.mode = "ok"
    report = await running
    assert report.retries >= 2
    assert_complete(sim, report, scripts)


async def test_timeouts_then_recovery(sim: DvcqgSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    sim.faults.update({"mode": "timeout", "timeout_sleep_s": 2.0})
    requests = requests_to(sim, monkeypatch)
    generator = traffic(sim, seed=3, request_timeout_s=0.2)
    scripts = generator.plan(6)
    running = asyncio.create_task(generator.run(scripts))
    await eventually(lambda: requests() >= 2, 30, "a request timed out and sent again")
    sim.faults.mode = "ok"
    report = await running
    assert report.retries >= 1
    assert "Timeout" in report.last_error
    assert_complete(sim, report, scripts)


async def test_lost_replies_are_resent_idempotently(
    sim: DvcqgSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    await login(sim)  # so the lost replies hit pushes, not only logins
    sim.faults.update({"mode": "lost_reply", "timeout_sleep_s": 0.4})
    requests = requests_to(sim, monkeypatch)
    generator = traffic(sim, seed=4, request_timeout_s=0.15)
    scripts = generator.plan(6)
    running = asyncio.create_task(generator.run(scripts))
    await eventually(lambda: requests() >= 2, 30, "a reply lost and the request sent again")
    sim.faults.mode = "ok"
    report = await running
    assert report.retries >= 1
    assert_complete(sim, report, scripts)


async def test_slow_mode_answers_late_but_normally(sim: DvcqgSimulator) -> None:
    sim.faults.update({"mode": "slow", "delay_s": 0.05})
    generator = traffic(sim, seed=5, request_timeout_s=2.0)
    scripts = generator.plan(3)
    report = await generator.run(scripts)
    assert report.retries == 0
    assert_complete(sim, report, scripts)


async def test_fail_next_fails_exactly_that_many_calls(sim: DvcqgSimulator) -> None:
    sim.faults.fail_next = 3
    generator = traffic(sim, seed=6)
    scripts = generator.plan(5)
    report = await generator.run(scripts)
    assert report.retries == 3
    assert sim.logins == 1
    assert sim.faults.fail_next == 0
    assert_complete(sim, report, scripts)


async def test_rejected_dossier_is_refused_and_not_resent(sim: DvcqgSimulator) -> None:
    generator = traffic(sim, seed=7)
    scripts = generator.plan(6)
    victim = scripts[2].code
    sim.faults.reject = {victim: "07"}
    report = await generator.run(scripts)
    assert [(r.kind, r.dossier_code, r.code) for r in report.refused] == [("new", victim, "07")]
    assert report.abandoned == [victim]
    assert victim not in sim.dossiers
    assert sim.dossier_pushes[victim] == 0
    assert_portal_holds(sim, report)
    assert len(sim.dossiers) == 5

    session = await login(sim)
    status, reply = await call(
        sim, session, "DongBoHoSoMC", isUpdating="False", data=[scripts[2].pairs[0][0]]
    )
    assert (status, reply["error_code"]) == (200, "02")
    assert reply["result"][0]["error_code"] == "07"
    assert reply["result"][0]["MaHoSo"] == victim


async def test_expired_sessions_make_the_client_log_in_again(sim: DvcqgSimulator) -> None:
    generator = traffic(sim, seed=8, batch_size=3)
    scripts = generator.plan(10)

    async def expire_after_some_calls() -> None:
        await eventually(
            lambda: sum(sim.calls.values()) >= 4, 30, "four calls at the simulator", every_s=0.005
        )
        sim.expire_sessions()

    expirer = asyncio.create_task(expire_after_some_calls())
    report = await generator.run(scripts, rate_per_s=150)
    await expirer
    assert report.relogins == 1
    assert sim.logins == report.logins == 2
    assert_complete(sim, report, scripts)


async def test_stop_ends_a_run_promptly(sim: DvcqgSimulator) -> None:
    sim.faults.timeout_sleep_s = 5.0
    generator = traffic(sim, seed=9, batch_size=4, request_timeout_s=5.0)
    stop = asyncio.Event()
    running = asyncio.create_task(generator.run(generator.plan(4), rate_per_s=20, stop=stop))
    await eventually(
        lambda: sum(sim.calls.values()) >= 2, 30, "two calls at the simulator", every_s=0.005
    )
    called = sim.calls.total()
    sim.faults.mode = "timeout"
    await eventually(lambda: sim.calls.total() > called, 30, "a call held in DVCQG's time-out")
    stop.set()
    report = await asyncio.wait_for(running, 1.0)
    assert not report.completed
    assert report.in_doubt
    assert report.calls == sum(sim.calls.values())


async def test_wrong_credentials_raise(sim: DvcqgSimulator) -> None:
    generator = OneStopTraffic(sim.url, sim.username, "wrong", UNIT)
    with pytest.raises(LoginRefused):
        await generator.run(generator.plan(1))
    status, reply = await post(sim.url, {"username": sim.username, "password": "wrong"})
    assert (status, reply["error_code"]) == (401, -1)


# -- protocol rules, item by item -----------------------------------------------------------------


def sample(seed: int = 11) -> DossierScript:
    return OneStopTraffic("http://unused", "u", "p", UNIT, seed=seed).plan(1)[0]


async def test_is_updating_decides_between_new_and_held(sim: DvcqgSimulator) -> None:
    session = await login(sim)
    record, step = sample().pairs[0]
    _, reply = await call(sim, session, "CapNhatTienDoHoSoMC", data=[step])
    assert (reply["error_code"], reply["result"][0]["error_code"]) == ("02", "06")
    _, reply = await call(sim, session, "DongBoHoSoMC", isUpdating="True", data=[record])
    assert (reply["error_code"], reply["result"][0]["error_code"]) == ("02", "06")
    _, reply = await call(sim, session, "DongBoHoSoMC", isUpdating="False", data=[record])
    assert reply == {
        "error_code": "00",
        "message": "1 accepted, 0 refused",
        "result": [{"MaHoSo": record["MaHoSo"], "error_code": "00", "message": "accepted"}],
    }
    _, reply = await call(sim, session, "DongBoHoSoMC", isUpdating="False", data=[record])
    assert (reply["error_code"], reply["result"][0]["error_code"]) == ("02", "05")
    _, reply = await call(sim, session, "DongBoHoSoMC", isUpdating="True", data=[record])
    assert reply["error_code"] == "00"
    status, reply = await call(sim, session, "DongBoHoSoMC", isUpdating="true", data=[record])
    assert (status, reply["error_code"]) == (400, "01")
    assert sim.dossier_pushes[record["MaHoSo"]] == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("MaHoSo", None),
        ("TrangThaiHoSo", None),
        ("TrangThaiHoSo", "11"),
        ("NgayTiepNhan", "2025-03-14 10:30:00"),
        ("NgayHenTra", "20251301000000"),
        ("NgayTra", "202503141030"),
    ],
)
async def test_invalid_dossier_items_get_04(
    sim: DvcqgSimulator, field: str, value: str | None
) -> None:
    session = await login(sim)
    good, bad = sample(12).pairs[0][0], dict(sample(13).pairs[0][0])
    if value is None:
        del bad[field]
    else:
        bad[field] = value
    _, reply = await call(sim, session, "DongBoHoSoMC", isUpdating="False", data=[bad, good])
    assert reply["error_code"] == "02"
    assert [r["error_code"] for r in reply["result"]] == ["04", "00"]
    assert field in reply["result"][0]["message"]
    assert list(sim.dossiers) == [good["MaHoSo"]]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("TrangThai", None),
        ("ThoiDiemXuLy", None),
        ("ThoiDiemXuLy", "14/03/2025 10:30"),
        ("NgayBatDau", "20250230100000"),
    ],
)
async def test_invalid_steps_get_04(sim: DvcqgSimulator, field: str, value: str | None) -> None:
    session = await login(sim)
    record, step = sample().pairs[0]
    await call(sim, session, "DongBoHoSoMC", isUpdating="False", data=[record])
    bad = dict(step)
    if value is None:
        del bad[field]
    else:
        bad[field] = value
    _, reply = await call(sim, session, "CapNhatTienDoHoSoMC", data=[bad, step, step])
    assert [r["error_code"] for r in reply["result"]] == ["04", "00", "00"]
    assert sim.steps[record["MaHoSo"]] == [step]
    assert sim.step_receipts[step_key(step)] == 2


async def test_lookup_returns_the_dossier_with_its_steps(sim: DvcqgSimulator) -> None:
    session = await login(sim)
    (record, step), (record2, step2) = sample().pairs[:2]
    await call(sim, session, "DongBoHoSoMC", isUpdating="False", data=[record])
    await call(sim, session, "CapNhatTienDoHoSoMC", data=[step])
    await call(sim, session, "DongBoHoSoMC", isUpdating="True", data=[record2])
    await call(sim, session, "CapNhatTienDoHoSoMC", data=[step2])
    _, reply = await call(sim, session, "TraCuuHoSo", mahoso=record["MaHoSo"])
    assert reply["error_code"] == "00"
    assert reply["data"] == {**record2, "QuaTrinhXuLy": [step, step2]}
    _, reply = await call(sim, session, "TraCuuHoSo", mahoso="000.00.41.H41-250101-0001")
    assert reply["error_code"] == "06"


async def test_requests_without_a_valid_session_or_shape(sim: DvcqgSimulator) -> None:
    status, reply = await call(sim, "forged", "DongBoHoSoMC", isUpdating="False", data=[])
    assert (status, reply["error_code"]) == (401, "401")
    session = await login(sim)
    status, reply = await call(sim, session, "LayDanhSachHoSo", data=[])
    assert (status, reply["error_code"]) == (400, "01")
    status, reply = await call(sim, session, "CapNhatTienDoHoSoMC", data={"not": "a list"})
    assert (status, reply["error_code"]) == (400, "01")
    status, reply = await post(sim.url, {"service": "TraCuuHoSo", "session": session})
    assert (status, reply["error_code"]) == (400, "01")


async def test_sessions_expire_after_their_ttl() -> None:
    async with DvcqgSimulator(session_ttl_s=0.05) as sim:
        session = await login(sim)
        await asyncio.sleep(0.1)
        status, _ = await call(sim, session, "TraCuuHoSo", mahoso="000.00.41.H41-250101-0001")
        assert status == 401


# -- control over HTTP ----------------------------------------------------------------------------


async def test_faults_state_and_reset_over_http(sim: DvcqgSimulator) -> None:
    status, reply = await post(f"{sim.url}/_sim/faults", {"mode": "http_503", "fail_next": 2})
    assert status == 200
    assert reply["faults"]["mode"] == "http_503"
    async with aiohttp.ClientSession() as http:
        async with http.post(sim.url, json={"username": "hub", "password": "secret"}) as r:
            assert r.status == 503
        status, reply = await post(f"{sim.url}/_sim/faults", {"mode": "sometimes"})
        assert status == 400
        assert sim.faults.mode == "http_503"
        await post(f"{sim.url}/_sim/faults", {"mode": "ok", "reject": {"X": "07"}})
        assert sim.faults.fail_next == 2
        assert sim.faults.reject == {"X": "07"}

        session = await login(sim)
        status, reply = await post(f"{sim.url}/_sim/faults", {"expire_sessions": True})
        assert status == 200
        statuses = [(await call(sim, session, "TraCuuHoSo", mahoso="X"))[0] for _ in range(3)]
        assert statuses == [503, 503, 401]  # fail_next comes before the session check
        async with http.get(f"{sim.url}/_sim/state") as r:
            state = await r.json()
        assert state["logins"] == 1
        assert state["calls"] == {"TraCuuHoSo": 3}
        assert state["dossiers"] == {}

        status, reply = await post(f"{sim.url}/_sim/reset", {})
        assert (status, reply["error_code"]) == (200, "00")
        assert sim.faults.fail_next == 0
        assert sim.logins == 0
        assert sim.calls == {}
