"""Bad input at every door: a precise error per item, the hub keeps running, nothing invalid
reaches the store or a queue, and valid items beside the bad ones go on."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.auth import sha256_hex
from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from tests.integration.status_world import FacadeCaller
from tests.support import (
    ONESTOP_PASSWORD,
    ONESTOP_TOKEN,
    ONESTOP_USER,
    PORTAL_PASSWORD,
    PORTAL_USER,
    READER_TOKEN,
    UNIT,
    eventually,
    hub_config,
    hub_overrides,
)

GOOD_CODE = "000.00.41.H41-221005-0001"
OTHER_UNIT_CODE = "000.00.99.H99-221005-0001"  # a unit the one-stop source may not act for
NOW = datetime.now(UTC)


def record(**fields: Any) -> dict[str, Any]:
    base = {
        "MaHoSo": GOOD_CODE,
        "TrangThaiHoSo": "2",
        "NgayTiepNhan": "20221005080000",
        "ChuHoSo": "Trần Thị Bình",
        "MaTTHC": "1.000494",
    }
    return {k: v for k, v in {**base, **fields}.items() if v is not None}


def step(**fields: Any) -> dict[str, Any]:
    base = {
        "MaHoSo": GOOD_CODE,
        "TrangThai": "4",
        "ThoiDiemXuLy": "20221006090000",
        "NoiDungXuLy": "Chuyển phòng chuyên môn",
    }
    return {k: v for k, v in {**base, **fields}.items() if v is not None}


future = (NOW + timedelta(days=30)).strftime("%Y%m%d%H%M%S")

# (label, service, bad item, expected field, expected words in the message)
BAD_ITEMS = [
    ("missing code", "DongBoHoSoMC", record(MaHoSo=None), "MaHoSo", "required"),
    ("malformed code", "DongBoHoSoMC", record(MaHoSo="HS-0001"), "MaHoSo", "does not look like"),
    (
        "impossible day",
        "DongBoHoSoMC",
        record(MaHoSo="000.00.41.H41-221341-0001"),
        "MaHoSo",
        "impossible",
    ),
    (
        "unknown status",
        "DongBoHoSoMC",
        record(TrangThaiHoSo="42"),
        "TrangThaiHoSo",
        "unknown status",
    ),
    ("wrong type", "DongBoHoSoMC", record(TaiLieuNop="not a list"), "TaiLieuNop", "list"),
    (
        "12-hour date",
        "DongBoHoSoMC",
        record(NgayTiepNhan="2022100508:00PM"),
        "NgayTiepNhan",
        "yyyyMMddHHmmss",
    ),
    ("future date", "DongBoHoSoMC", record(NgayTiepNhan=future), "NgayTiepNhan", "future"),
    (
        "far due date",
        "DongBoHoSoMC",
        record(NgayHenTra="20990101000000"),
        "NgayHenTra",
        "five years",
    ),
    (
        "ancient date",
        "DongBoHoSoMC",
        record(NgayTiepNhan="19800101000000"),
        "NgayTiepNhan",
        "before",
    ),
    (
        "negative fee",
        "DongBoHoSoMC",
        record(DanhSachLePhi=[{"Gia": "-5"}]),
        "DanhSachLePhi.0.Gia",
        "amount",
    ),
    ("long name", "DongBoHoSoMC", record(ChuHoSo="Nguyễn " * 100), "ChuHoSo", "at most 500"),
    ("NUL in a name", "DongBoHoSoMC", record(ChuHoSo="Trần\x00Bình"), "ChuHoSo", "U+0000"),
    (
        "right-to-left override",
        "DongBoHoSoMC",
        record(ChuHoSo="Trần \u202eThị Bình"),
        "ChuHoSo",
        "U+202E",
    ),
    (
        "due before received",
        "DongBoHoSoMC",
        record(NgayHenTra="20221004080000"),
        "NgayHenTra",
        "before NgayTiepNhan",
    ),
    ("step NUL", "CapNhatTienDoHoSoMC", step(NoiDungXuLy="a\x00b"), "NoiDungXuLy", "U+0000"),
    (
        "another unit's dossier",
        "DongBoHoSoMC",
        record(MaHoSo=OTHER_UNIT_CODE),
        "MaHoSo",
        "may not act for",
    ),
    (
        "another unit's step",
        "CapNhatTienDoHoSoMC",
        step(MaHoSo=OTHER_UNIT_CODE),
        "MaHoSo",
        "may not act for",
    ),
    ("item not object", "DongBoHoSoMC", "a string", None, "JSON object"),
    ("step no time", "CapNhatTienDoHoSoMC", step(ThoiDiemXuLy=None), "ThoiDiemXuLy", "required"),
    ("step bad status", "CapNhatTienDoHoSoMC", step(TrangThai="x"), "TrangThai", "unknown status"),
    ("step future", "CapNhatTienDoHoSoMC", step(ThoiDiemXuLy=future), "ThoiDiemXuLy", "future"),
    (
        "text too long",
        "CapNhatTienDoHoSoMC",
        step(NoiDungXuLy="x" * 5000),
        "NoiDungXuLy",
        "at most",
    ),
]


@pytest.fixture
async def setup(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> AsyncIterator[tuple[Hub, DvcqgSimulator, FacadeCaller]]:
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim:
        config = hub_config(tmp_path, rabbit_url, broker_prefix, sim.url)
        config = config.model_copy(
            update={
                "http": config.http.model_copy(update={"max_body_bytes": 200_000}),
                "validation": config.validation.model_copy(update={"max_items_per_batch": 20}),
            }
        )
        async with Hub(config) as hub, aiohttp.ClientSession() as http:
            caller = FacadeCaller(http, f"http://127.0.0.1:{hub.port}/dvcqg")
            await caller.login()
            yield hub, sim, caller


@pytest.mark.parametrize(("label", "service", "item", "field", "words"), BAD_ITEMS)
async def test_a_bad_item_is_refused_precisely_and_its_neighbour_goes_on(
    setup: tuple[Hub, DvcqgSimulator, FacadeCaller],
    label: str,
    service: str,
    item: Any,
    field: str | None,
    words: str,
) -> None:
    hub, sim, caller = setup
    neighbour_code = "000.00.41.H41-221005-0002"
    neighbour = (record if service == "DongBoHoSoMC" else step)(MaHoSo=neighbour_code)
    if service == "CapNhatTienDoHoSoMC":  # the step needs its dossier to exist at the portal
        await caller.call("DongBoHoSoMC", isUpdating="False", data=[record(MaHoSo=neighbour_code)])
    status, reply = await caller.call(service, isUpdating="False", data=[item, neighbour])
    assert status == 200, label
    assert reply["error_code"] == "02"
    refused, accepted = reply["result"]
    assert refused["error_code"] == "04"
    assert refused.get("field") == field, refused
    assert words in refused["message"], refused["message"]
    assert accepted["error_code"] == "00"
    assert hub.store is not None
    # The bad item is nowhere: not in the store, not at the portal. The neighbour arrives.
    if isinstance(item, dict) and item.get("MaHoSo") not in (None, neighbour_code):
        assert (await hub.store.dossier(str(item["MaHoSo"]))).snapshot is None
    view = await hub.store.dossier(GOOD_CODE)
    assert view.history == []
    await eventually(lambda: neighbour_code in sim.dossiers, 30, "the neighbour dossier at DVCQG")
    assert GOOD_CODE not in sim.dossiers


async def test_request_level_errors_use_the_protocol_codes(
    setup: tuple[Hub, DvcqgSimulator, FacadeCaller],
) -> None:
    hub, _, caller = setup
    url = caller.url

    async def post(body: Any, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
        data = raw if raw is not None else json.dumps(body).encode()
        async with caller.http.post(
            url, data=data, headers={"Content-Type": "application/json"}
        ) as r:
            return r.status, await r.json()

    s = caller.session
    cases: list[tuple[Any, bytes | None, int, str | int, str]] = [
        (None, b"{not json", 400, "01", "not valid JSON"),
        ([1, 2], None, 400, "01", "JSON object"),
        ({"service": "XoaHoSo", "session": s}, None, 400, "01", "unknown service"),
        ({"service": ["DongBoHoSoMC"], "session": s}, None, 400, "01", "name of a service"),
        ({"service": {"a": 1}, "username": ONESTOP_USER}, None, 400, "01", "name of a service"),
        (
            {"service": "DongBoHoSoMC", "session": "forged", "madonvi": UNIT, "data": []},
            None,
            401,
            "401",
            "session",
        ),
        ({"service": "DongBoHoSoMC", "madonvi": UNIT, "data": []}, None, 401, "401", "session"),
        (
            {"service": "DongBoHoSoMC", "session": s, "madonvi": UNIT, "data": {}},
            None,
            400,
            "01",
            "list",
        ),
        (
            {"service": "DongBoHoSoMC", "session": s, "madonvi": UNIT, "data": []},
            None,
            400,
            "01",
            "no item",
        ),
        (
            {
                "service": "DongBoHoSoMC",
                "session": s,
                "madonvi": UNIT,
                "isUpdating": "maybe",
                "data": [record()],
            },
            None,
            400,
            "01",
            "isUpdating",
        ),
        (
            {"service": "DongBoHoSoMC", "session": s, "madonvi": "H41", "data": [record()]},
            None,
            400,
            "01",
            "agency code",
        ),
        (
            {
                "service": "DongBoHoSoMC",
                "session": s,
                "madonvi": "000.00.42.H42",
                "data": [record()],
            },
            None,
            403,
            "03",
            "may not act",
        ),
        (
            {"service": "DongBoHoSoMC", "session": s, "madonvi": UNIT, "data": [record()] * 21},
            None,
            413,
            "01",
            "at most 20",
        ),
        (
            {
                "service": "DongBoHoSoMC",
                "session": s,
                "madonvi": UNIT,
                "data": [record(GhiChu="x" * 3000)] * 19,
                "pad": "y" * 200_000,
            },
            None,
            413,
            "01",
            "larger than",
        ),
        (
            {"username": ONESTOP_USER, "password": "wrong"},
            None,
            401,
            -1,
            "wrong username or password",
        ),
        (
            {"username": "nobody", "password": ONESTOP_PASSWORD},
            None,
            401,
            -1,
            "wrong username or password",
        ),
        (
            {"service": "TraCuuHoSo", "session": s, "madonvi": UNIT, "mahoso": "bad"},
            None,
            400,
            "01",
            "does not look like",
        ),
        (
            {"service": "TraCuuHoSo", "session": s, "madonvi": UNIT, "mahoso": GOOD_CODE},
            None,
            200,
            "06",
            "unknown",
        ),
    ]
    for body, raw, http_status, code, words in cases:
        got_status, reply = await post(body, raw)
        assert (got_status, reply["error_code"]) == (http_status, code), (body, reply)
        assert words in reply["message"], (words, reply)
    assert hub.store is not None
    assert (await hub.store.dossier(GOOD_CODE)).snapshot is None
    async with caller.http.get(f"http://127.0.0.1:{hub.port}/healthz") as r:
        assert r.status == 200


async def test_canonical_api_answers_per_item_and_checks_permissions(
    setup: tuple[Hub, DvcqgSimulator, FacadeCaller],
) -> None:
    hub, sim, caller = setup
    base = f"http://127.0.0.1:{hub.port}"
    auth = {"Authorization": f"Bearer {ONESTOP_TOKEN}"}
    good = {
        "event_id": "ev-1",
        "dossier_code": "000.00.41.H41-221005-0003",
        "kind": "record",
        "occurred_at": "2022-10-05T08:00:00+07:00",
        "status": "accepted",
        "record": {
            "procedure_code": "1.000494",
            "owner_name": "Lê Văn Cường",
            "received_at": "2022-10-05T08:00:00+07:00",
        },
    }
    events = [
        good,
        {**good, "event_id": "ev-2", "status": "finished"},
        {**good, "event_id": "ev-3", "dossier_code": "nope"},
        {**good, "event_id": "ev-4", "occurred_at": "2022-10-05T08:00:00"},
        {**good, "event_id": "ev-5", "colour": "blue"},
        {**good, "event_id": "ev-6", "record": None},
        "not an object",
        good,
    ]
    async with caller.http.post(
        f"{base}/api/v1/dossier-events", json={"events": events}, headers=auth
    ) as r:
        assert r.status == 200
        reply = await r.json()
    outcomes = [(x["outcome"], (x["error"] or {}).get("code")) for x in reply["results"]]
    assert outcomes == [
        ("accepted", None),
        ("rejected", "unknown_status"),
        ("rejected", "bad_dossier_code"),
        ("rejected", "invalid"),
        ("rejected", "unknown_field"),
        ("rejected", "missing"),
        ("rejected", "wrong_type"),
        ("duplicate", None),
    ]
    assert (reply["accepted"], reply["duplicates"], reply["rejected"]) == (1, 1, 6)
    await eventually(lambda: good["dossier_code"] in sim.dossiers, 30, "the good dossier at DVCQG")

    for headers, status in [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": f"Bearer {READER_TOKEN}"}, 403),
    ]:
        async with caller.http.post(
            f"{base}/api/v1/dossier-events", json={"events": [good]}, headers=headers
        ) as r:
            assert r.status == status
        async with caller.http.get(f"{base}/api/v1/portal/dossier-changes", headers=headers) as r:
            assert r.status == status
    async with caller.http.post(f"{base}/api/v1/dossier-events", data=b"[", headers=auth) as r:
        assert r.status == 400
    for query in ("after=x", "after=-1", f"after={10**20}", "limit=0", "limit=5000"):
        async with caller.http.get(
            f"{base}/api/v1/portal/dossier-changes?{query}", headers=auth
        ) as r:
            assert r.status == 400, query


async def test_facade_login_works_and_a_system_without_permission_is_forbidden(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim:
        config = hub_config(tmp_path, rabbit_url, broker_prefix, sim.url)
        source = config.sources["onestop"].model_copy(update={"permissions": ["facade.TraCuuHoSo"]})
        config = config.model_copy(update={"sources": {"onestop": source}})
        async with Hub(config) as hub, aiohttp.ClientSession() as http:
            caller = FacadeCaller(http, f"http://127.0.0.1:{hub.port}/dvcqg")
            await caller.login()
            assert caller.session
            status, reply = await caller.call("DongBoHoSoMC", isUpdating="False", data=[record()])
            assert (status, reply["error_code"]) == (403, "03")
            status, reply = await caller.call("TraCuuHoSo", mahoso=GOOD_CODE)
            assert (status, reply["error_code"]) == (200, "06")
            assert hub.store is not None
            assert (await hub.store.dossier(GOOD_CODE)).snapshot is None


DEEP = b"[" * 4_000 + b"]" * 4_000  # 8 KB, deeper than the JSON parser goes


async def test_json_nested_too_deeply_is_refused_at_every_door_never_a_500(
    setup: tuple[Hub, DvcqgSimulator, FacadeCaller],
) -> None:
    hub, _, caller = setup
    base = f"http://127.0.0.1:{hub.port}"
    deep_object = b'{"a":' * 1_500 + b"1" + b"}" * 1_500
    doors = [
        (f"{base}/dvcqg", {}),
        (f"{base}/api/v1/dossier-events", {"Authorization": f"Bearer {ONESTOP_TOKEN}"}),
        (f"{base}/api/v1/admin/session", {}),
    ]
    for url, headers in doors:
        for body in (DEEP, deep_object):
            async with caller.http.post(
                url, data=body, headers={**headers, "Content-Type": "application/json"}
            ) as r:
                assert r.status == 400, (url, r.status, await r.text())
                assert "nested too deeply" in await r.text(), url
    # The hub is still whole: a good call goes on.
    status, reply = await caller.call("TraCuuHoSo", mahoso=GOOD_CODE)
    assert status == 200, reply


async def test_a_source_limited_to_units_neither_writes_nor_reads_another_units_dossiers(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim:
        tree = hub_overrides(tmp_path, rabbit_url, broker_prefix, sim.url)
        tree["sources"]["province"] = {  # the province's own system: every unit
            "api_token_sha256": sha256_hex("province-token"),
            "permissions": ["events.write", "portal.feed"],
        }
        async with Hub(load_config(None, tree)) as hub, aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{hub.port}"

            async def post(token: str, code: str, event_id: str) -> dict[str, Any]:
                event = {
                    "event_id": event_id,
                    "dossier_code": code,
                    "kind": "record",
                    "occurred_at": "2022-10-05T08:00:00+07:00",
                    "status": "accepted",
                    "record": {"owner_name": "Lê Văn Cường"},
                }
                async with http.post(
                    f"{base}/api/v1/dossier-events",
                    json={"events": [event]},
                    headers={"Authorization": f"Bearer {token}"},
                ) as r:
                    assert r.status == 200
                    reply: dict[str, Any] = await r.json()
                    return reply

            assert (await post("province-token", OTHER_UNIT_CODE, "p-1"))["accepted"] == 1
            assert (await post("province-token", GOOD_CODE, "p-2"))["accepted"] == 1
            refused = (await post(ONESTOP_TOKEN, OTHER_UNIT_CODE, "o-1"))["results"][0]
            assert refused["outcome"] == "rejected"
            assert refused["error"]["code"] == "forbidden_unit"

            # Reading it back: another unit's dossier reads exactly as an unknown one.
            caller = FacadeCaller(http, f"{base}/dvcqg")
            await caller.login()
            status, other = await caller.call("TraCuuHoSo", mahoso=OTHER_UNIT_CODE)
            status_unknown, unknown = await caller.call(
                "TraCuuHoSo", mahoso="000.00.99.H99-221005-0999"
            )
            assert (status, other["error_code"]) == (status_unknown, unknown["error_code"])
            assert "Lê Văn Cường" not in json.dumps(other, ensure_ascii=False)
            status, own = await caller.call("TraCuuHoSo", mahoso=GOOD_CODE)
            assert own["error_code"] == "00"

            # The change feed shows a limited source its units only.
            async with http.get(
                f"{base}/api/v1/portal/dossier-changes?after=0",
                headers={"Authorization": f"Bearer {ONESTOP_TOKEN}"},
            ) as r:
                mine = [i["dossier_code"] for i in (await r.json())["items"]]
            async with http.get(
                f"{base}/api/v1/portal/dossier-changes?after=0",
                headers={"Authorization": "Bearer province-token"},
            ) as r:
                every = [i["dossier_code"] for i in (await r.json())["items"]]
            assert mine == [GOOD_CODE]
            assert sorted(every) == sorted([GOOD_CODE, OTHER_UNIT_CODE])
