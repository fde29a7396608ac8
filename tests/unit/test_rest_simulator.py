"""The civil-status REST simulator, exercised over real loopback HTTP.

No mocks: each test starts a real simulator on 127.0.0.1 and calls it with aiohttp the way a
client of the ministry would, so the rules the hub's civil-status connector tests rely on
(authentication, idempotent submit, cursor paging, faults, push) are checked here first.
Push tests run a small receiver of their own in place of the hub.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sims.loopback import LoopbackServer
from sims.ministry.rest_simulator import (
    RESULTS_PATH,
    SUBMIT_PATH,
    CivilStatusSimulator,
    _parser,
    hmac_headers,
    verify_hmac,
)
from tests.support import eventually

CLIENT_ID, CLIENT_SECRET = "hub-hotich", "client-secret-1"
UNIT = "000.00.00.H41"
KEY_ID, KEY_SECRET = "hub-key", "hmac-secret-1"


async def call(
    method: str,
    url: str,
    *,
    json_body: Any = None,
    data: bytes | dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout_s: float = 5.0,
) -> tuple[int, Any]:
    """One request; (status, parsed JSON or the raw text when the reply is not JSON)."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.request(method, url, json=json_body, data=data, headers=headers) as response,
    ):
        text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


def basic(client_id: str, client_secret: str) -> dict[str, str]:
    """HTTP Basic client authentication, encoded by hand (not by the library under test)."""
    pair = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


async def get_token(sim: CivilStatusSimulator) -> str:
    status, body = await call(
        "POST",
        f"{sim.base_url}/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers=basic(CLIENT_ID, CLIENT_SECRET),
    )
    assert status == 200, body
    return str(body["access_token"])


def dossier(code: str = "HS-0001", **extra: Any) -> dict[str, Any]:
    return {
        "maHoSo": code,
        "maThuTuc": "1.001193",
        "loaiViec": "KS",
        "nguoiYeuCau": {"hoTen": "Lê Văn Bình", "soDinhDanh": "079201001234"},
        "ngayTiepNhan": "2026-03-14T09:30:00+07:00",
        **extra,
    }


async def submit(sim: CivilStatusSimulator, token: str, body: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    return await call("POST", sim.base_url + SUBMIT_PATH, json_body=body, headers=headers)


async def page(
    sim: CivilStatusSimulator, token: str, query: str = "sau=0&soLuong=100"
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    return await call("GET", f"{sim.base_url}{RESULTS_PATH}?{query}", headers=headers)


async def set_faults(sim: CivilStatusSimulator, **fields: Any) -> tuple[int, Any]:
    return await call("POST", f"{sim.base_url}/_sim/faults", json_body=fields)


@pytest.fixture
async def sim() -> AsyncIterator[CivilStatusSimulator]:
    async with CivilStatusSimulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as server:
        yield server


@pytest.fixture
async def token(sim: CivilStatusSimulator) -> str:
    return await get_token(sim)


# -- the token endpoint ---------------------------------------------------------------------------


async def test_token_by_basic_and_by_form(sim: CivilStatusSimulator) -> None:
    url, grant = f"{sim.base_url}/oauth2/token", {"grant_type": "client_credentials"}
    by_basic = await call("POST", url, data=grant, headers=basic(CLIENT_ID, CLIENT_SECRET))
    form = {**grant, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    posted = await call("POST", url, data=form)
    for status, body in (by_basic, posted):
        assert status == 200
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 300
        assert len(body["access_token"]) >= 20
    assert by_basic[1]["access_token"] != posted[1]["access_token"]
    assert sim.tokens_issued == 2
    assert sim.requests["token"] == 2
    assert (await submit(sim, posted[1]["access_token"], dossier()))[0] == 201


@pytest.mark.parametrize(
    ("client_auth", "wrong_way"),
    [("basic", "form"), ("form", "basic")],
)
async def test_client_auth_accepts_only_its_way(client_auth: str, wrong_way: str) -> None:
    async with CivilStatusSimulator(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        client_auth=client_auth,  # type: ignore[arg-type]
    ) as server:
        url, grant = f"{server.base_url}/oauth2/token", {"grant_type": "client_credentials"}
        by_basic = basic(CLIENT_ID, CLIENT_SECRET)
        form = {**grant, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        ways = {
            "basic": lambda: call("POST", url, data=grant, headers=by_basic),
            "form": lambda: call("POST", url, data=form),
        }
        assert (await ways[client_auth]())[0] == 200
        assert await ways[wrong_way]() == (401, {"error": "invalid_client"})
        assert server.tokens_issued == 1


@pytest.mark.parametrize(
    ("form", "headers"),
    [
        ({"client_id": CLIENT_ID, "client_secret": "wrong"}, None),
        ({"client_id": "someone-else", "client_secret": CLIENT_SECRET}, None),
        ({}, basic(CLIENT_ID, "wrong")),
        ({}, None),
    ],
)
async def test_wrong_client_credentials(
    sim: CivilStatusSimulator, form: dict[str, str], headers: dict[str, str] | None
) -> None:
    data = {"grant_type": "client_credentials", **form}
    status, body = await call("POST", f"{sim.base_url}/oauth2/token", data=data, headers=headers)
    assert (status, body) == (401, {"error": "invalid_client"})
    assert sim.tokens_issued == 0
    assert sim.auth_failures["invalid_client"] == 1


async def test_wrong_grant_type(sim: CivilStatusSimulator) -> None:
    url, by_basic = f"{sim.base_url}/oauth2/token", basic(CLIENT_ID, CLIENT_SECRET)
    wrong = await call("POST", url, data={"grant_type": "password"}, headers=by_basic)
    assert wrong == (400, {"error": "unsupported_grant_type"})
    assert await call("POST", url, data={}, headers=by_basic) == (400, {"error": "invalid_request"})
    assert sim.tokens_issued == 0


# -- API authentication ---------------------------------------------------------------------------


async def test_api_refuses_a_missing_or_unknown_token(sim: CivilStatusSimulator) -> None:
    url = sim.base_url + SUBMIT_PATH
    assert await call("POST", url, json_body=dossier()) == (401, {"error": "invalid_token"})
    assert await submit(sim, "not-a-token", dossier()) == (401, {"error": "invalid_token"})
    assert await page(sim, "not-a-token") == (401, {"error": "invalid_token"})
    assert sim.accepted == {}
    assert sim.submissions == []
    assert sim.auth_failures["invalid_token"] == 3
    assert sim.requests["submit"] == 2


async def test_api_refuses_an_expired_token() -> None:
    async with CivilStatusSimulator(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_ttl_s=60
    ) as server:
        status, body = await call(
            "POST",
            f"{server.base_url}/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers=basic(CLIENT_ID, CLIENT_SECRET),
        )
        assert (status, body["expires_in"]) == (200, 60)
        token = body["access_token"]
        assert (await page(server, token))[0] == 200
        server.clock = lambda: time.time() + 61
        assert await page(server, token) == (401, {"error": "invalid_token"})
        assert (await page(server, await get_token(server)))[0] == 200


async def test_bearer_mode_needs_the_token_and_the_extra_header() -> None:
    async with CivilStatusSimulator(
        auth="bearer", bearer_token="fixed-1", required_headers={"X-Ma-Don-Vi": UNIT}
    ) as server:
        url = server.base_url + SUBMIT_PATH
        right = {"Authorization": "Bearer fixed-1", "X-Ma-Don-Vi": UNIT}
        cases = [
            ({"Authorization": "Bearer fixed-1"}, "missing_header"),
            ({**right, "X-Ma-Don-Vi": "000.00.00.H01"}, "invalid_header"),
            ({**right, "Authorization": "Bearer fixed-2"}, "invalid_token"),
        ]
        for headers, error in cases:
            assert await call("POST", url, json_body=dossier(), headers=headers) == (
                401,
                {"error": error},
            )
        assert server.accepted == {}
        status, body = await call("POST", url, json_body=dossier(), headers=right)
        assert (status, body["id"]) == (201, "HT-000001")
        assert dict(server.auth_failures) == {
            "missing_header": 1,
            "invalid_header": 1,
            "invalid_token": 1,
        }


# -- HMAC -----------------------------------------------------------------------------------------


def test_hmac_headers_follow_the_canonical_string() -> None:
    body = b'{"maHoSo": "HS-1"}'
    headers = hmac_headers("post", "/api/x?a=1&b=2", body, KEY_ID, KEY_SECRET, now=1_760_000_000)
    canonical = "\n".join(
        ["POST", "/api/x?a=1&b=2", "1760000000", hashlib.sha256(body).hexdigest()]
    )
    expected = hmac.new(KEY_SECRET.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    assert headers == {
        "X-Api-Key": KEY_ID,
        "X-Timestamp": "1760000000",
        "X-Signature": expected,
    }
    empty = hmac_headers("GET", "/p", b"", KEY_ID, KEY_SECRET, now=1)["X-Signature"]
    empty_canonical = f"GET\n/p\n1\n{hashlib.sha256(b'').hexdigest()}"
    assert empty == hmac.new(KEY_SECRET.encode(), empty_canonical.encode(), "sha256").hexdigest()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({}, None),
        ({"X-Signature": "0" * 64}, "bad_signature"),
        ({"X-Api-Key": "other-key"}, "unknown_key"),
        ({"X-Timestamp": "soon"}, "bad_timestamp"),
        ({"X-Timestamp": "²"}, "bad_timestamp"),
        ({"X-Timestamp": None}, "missing_headers"),
    ],
)
def test_verify_hmac(change: dict[str, str | None], problem: str | None) -> None:
    headers: dict[str, str | None] = {
        **hmac_headers("POST", "/p?q=1", b"{}", KEY_ID, KEY_SECRET, now=1000),
        **change,
    }
    present = {name: value for name, value in headers.items() if value is not None}
    verdict = verify_hmac("POST", "/p?q=1", b"{}", present, KEY_ID, KEY_SECRET, now=1000)
    assert verdict == problem


def test_verify_hmac_binds_method_path_body_and_time() -> None:
    signed = hmac_headers("POST", "/p?q=1", b"{}", KEY_ID, KEY_SECRET, now=1000)
    assert verify_hmac("GET", "/p?q=1", b"{}", signed, KEY_ID, KEY_SECRET, now=1000)
    assert verify_hmac("POST", "/p?q=2", b"{}", signed, KEY_ID, KEY_SECRET, now=1000)
    assert verify_hmac("POST", "/p?q=1", b"[]", signed, KEY_ID, KEY_SECRET, now=1000)
    assert verify_hmac("POST", "/p?q=1", b"{}", signed, KEY_ID, "other", now=1000)
    assert verify_hmac("POST", "/p?q=1", b"{}", signed, KEY_ID, KEY_SECRET, now=1300) is None
    late = verify_hmac("POST", "/p?q=1", b"{}", signed, KEY_ID, KEY_SECRET, now=1301)
    early = verify_hmac("POST", "/p?q=1", b"{}", signed, KEY_ID, KEY_SECRET, now=699)
    assert late == early == "stale_timestamp"


async def test_hmac_mode_checks_every_request() -> None:
    async with CivilStatusSimulator(
        auth="hmac", hmac_key_id=KEY_ID, hmac_secret=KEY_SECRET
    ) as server:
        body = json.dumps(dossier()).encode()

        async def send(headers: dict[str, str], data: bytes = body) -> tuple[int, Any]:
            all_headers = {"Content-Type": "application/json", **headers}
            url = server.base_url + SUBMIT_PATH
            return await call("POST", url, data=data, headers=all_headers)

        good = hmac_headers("POST", SUBMIT_PATH, body, KEY_ID, KEY_SECRET)
        stale = hmac_headers("POST", SUBMIT_PATH, body, KEY_ID, KEY_SECRET, now=time.time() - 301)
        wrong = hmac_headers("POST", SUBMIT_PATH, body, KEY_ID, "not-the-secret")
        assert await send(wrong) == (401, {"error": "bad_signature"})
        assert await send(stale) == (401, {"error": "stale_timestamp"})
        assert await send(good, json.dumps(dossier("HS-9")).encode()) == (
            401,
            {"error": "bad_signature"},
        )
        assert await send({}) == (401, {"error": "missing_headers"})
        assert server.accepted == {}
        assert (await send(good))[0] == 201
        assert server.accepted == {"HS-0001": "HT-000001"}

        query = f"{RESULTS_PATH}?sau=0&soLuong=5"
        signed_get = hmac_headers("GET", query, b"", KEY_ID, KEY_SECRET)
        status, reply = await call("GET", server.base_url + query, headers=signed_get)
        assert (status, reply["conTro"]) == (200, "1")
        unsigned_query = hmac_headers("GET", RESULTS_PATH, b"", KEY_ID, KEY_SECRET)
        assert (await call("GET", server.base_url + query, headers=unsigned_query))[0] == 401


# -- submit ---------------------------------------------------------------------------------------


async def test_submit_is_idempotent_by_dossier_code(sim: CivilStatusSimulator, token: str) -> None:
    assert await submit(sim, token, dossier("HS-1")) == (
        201,
        {"id": "HT-000001", "trangThai": "DA_TIEP_NHAN"},
    )
    assert await submit(sim, token, dossier("HS-1", ghiChu="gửi lại")) == (
        200,
        {"id": "HT-000001", "trangThai": "DA_TIEP_NHAN"},
    )
    assert (await submit(sim, token, dossier("HS-2")))[1]["id"] == "HT-000002"
    assert [s["maHoSo"] for s in sim.submissions] == ["HS-1", "HS-1", "HS-2"]
    assert sim.submissions[1]["ghiChu"] == "gửi lại"
    assert sim.accepted == {"HS-1": "HT-000001", "HS-2": "HT-000002"}
    assert [r["maHoSo"] for r in sim.results] == ["HS-1", "HS-2"]  # no second result for HS-1
    assert sim.requests["submit"] == 3


@pytest.mark.parametrize(
    "body",
    [
        {"maThuTuc": "1.001193"},
        {"maHoSo": "HS-1"},
        {"maHoSo": " ", "maThuTuc": "1.001193"},
        {"maHoSo": 17, "maThuTuc": "1.001193"},
        dossier(ngayTiepNhan="14/03/2026"),
        dossier(ghiChu=5),
        dossier(nguoiYeuCau="Lê Văn Bình"),
        ["HS-1"],
    ],
)
async def test_submit_refuses_malformed_bodies(
    sim: CivilStatusSimulator, token: str, body: Any
) -> None:
    status, reply = await submit(sim, token, body)
    assert status == 400
    assert isinstance(reply["loi"], str)
    assert reply["loi"]
    assert sim.accepted == {}
    assert sim.results == []


# -- results --------------------------------------------------------------------------------------


async def test_results_page_with_the_cursor() -> None:
    async with CivilStatusSimulator(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, results_per_dossier=2
    ) as server:
        tok = await get_token(server)
        for n in (1, 2, 3):
            assert (await submit(server, tok, dossier(f"HS-{n}")))[0] == 201
        first = (await page(server, tok, "soLuong=4"))[1]
        assert [item["id"] for item in first["duLieu"]] == ["KQ-1", "KQ-2", "KQ-3", "KQ-4"]
        assert (first["conTro"], first["conTiep"]) == ("4", True)
        rest = (await page(server, tok, f"sau={first['conTro']}&soLuong=4"))[1]
        assert [item["id"] for item in rest["duLieu"]] == ["KQ-5", "KQ-6"]
        assert (rest["conTro"], rest["conTiep"]) == ("6", False)
        assert await page(server, tok, "sau=6&soLuong=4") == (
            200,
            {"duLieu": [], "conTro": "6", "conTiep": False},
        )
        assert server.results_served == 6

        items = first["duLieu"] + rest["duLieu"]
        assert [(i["maHoSo"], i["trangThai"]) for i in items[:2]] == [
            ("HS-1", "DANG_GIAI_QUYET"),
            ("HS-1", "DA_DANG_KY"),
        ]
        assert items[0]["soDangKy"] is None
        assert re.fullmatch(r"\d+/20\d\d/KS", items[1]["soDangKy"])
        assert len({i["soDangKy"] for i in items if i["trangThai"] == "DA_DANG_KY"}) == 3
        for item in items:
            assert item["thoiDiem"].endswith("+07:00")
            assert set(item) == {
                "id", "maHoSo", "trangThai", "thoiDiem", "canBo", "coQuan", "ghiChu", "soDangKy"
            }  # fmt: skip


@pytest.mark.parametrize(
    "query", ["sau=abc", "sau=-1", "sau=%C2%B2", "soLuong=0", "soLuong=1001", "soLuong=x"]
)
async def test_results_refuse_a_bad_query(
    sim: CivilStatusSimulator, token: str, query: str
) -> None:
    status, reply = await page(sim, token, query)
    assert status == 400
    assert "loi" in reply


async def test_empty_cursor_means_from_the_beginning(sim: CivilStatusSimulator, token: str) -> None:
    await submit(sim, token, dossier())
    reply = (await page(sim, token, "sau=&soLuong=10"))[1]
    assert [item["maHoSo"] for item in reply["duLieu"]] == ["HS-0001"]
    assert reply["conTro"] == "1"


async def test_decide_overrides_the_outcome(sim: CivilStatusSimulator, token: str) -> None:
    sim.decide("HS-2", "TU_CHOI")
    await submit(sim, token, dossier("HS-1"))
    await submit(sim, token, dossier("HS-2"))
    sim.decide("HS-1", "BO_SUNG")
    outcomes = [
        (item["maHoSo"], item["trangThai"]) for item in (await page(sim, token))[1]["duLieu"]
    ]
    assert outcomes == [("HS-1", "DA_DANG_KY"), ("HS-2", "TU_CHOI"), ("HS-1", "BO_SUNG")]
    with pytest.raises(ValueError, match="status must be one of"):
        sim.decide("HS-1", "XONG")


async def test_results_per_dossier_zero_queues_nothing_until_decided() -> None:
    async with CivilStatusSimulator(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, results_per_dossier=0
    ) as server:
        tok = await get_token(server)
        await submit(server, tok, dossier("HS-1"))
        assert server.results == []
        server.decide("HS-1", "DA_DANG_KY")
        assert [r["trangThai"] for r in (await page(server, tok))[1]["duLieu"]] == ["DA_DANG_KY"]


async def test_inject_unknown_result(sim: CivilStatusSimulator, token: str) -> None:
    await submit(sim, token, dossier("HS-1"))
    injected = sim.inject_unknown_result("HS-KHONG-CO", "TU_CHOI")
    items = (await page(sim, token))[1]["duLieu"]
    assert [(i["maHoSo"], i["trangThai"]) for i in items] == [
        ("HS-1", "DA_DANG_KY"),
        ("HS-KHONG-CO", "TU_CHOI"),
    ]
    assert items[1] == injected
    assert "HS-KHONG-CO" not in sim.accepted


async def test_duplicate_next_page_repeats_the_previous_items(
    sim: CivilStatusSimulator, token: str
) -> None:
    for code in ("HS-1", "HS-2"):
        await submit(sim, token, dossier(code))
    first = (await page(sim, token, "sau=0&soLuong=10"))[1]
    assert (await page(sim, token, "sau=2&soLuong=10"))[1]["duLieu"] == []  # an empty poll
    sim.duplicate_next_page()
    await submit(sim, token, dossier("HS-3"))
    second = (await page(sim, token, "sau=2&soLuong=10"))[1]
    assert [i["id"] for i in second["duLieu"]] == ["KQ-1", "KQ-2", "KQ-3"]
    assert second["duLieu"][:2] == first["duLieu"]
    assert second["conTro"] == "3"
    third = (await page(sim, token, "sau=0&soLuong=10"))[1]
    assert [i["id"] for i in third["duLieu"]] == ["KQ-1", "KQ-2", "KQ-3"]  # once only
    assert (await page(sim, token, "sau=3&soLuong=10"))[1]["duLieu"] == []


# -- faults ---------------------------------------------------------------------------------------


async def test_http_503_for_count_requests_then_ok(sim: CivilStatusSimulator, token: str) -> None:
    status, reply = await set_faults(sim, mode="http_503", count=2)
    assert (status, reply["faults"]["mode"], reply["faults"]["count"]) == (200, "http_503", 2)
    assert (await submit(sim, token, dossier()))[0] == 503
    assert (await page(sim, token))[0] == 503
    assert (await submit(sim, token, dossier()))[0] == 201
    assert sim.faults.mode == "ok"
    assert sim.fault_hits["http_503"] == 2
    assert [s["maHoSo"] for s in sim.submissions] == ["HS-0001"]


async def test_faults_leave_the_token_endpoint_alone(sim: CivilStatusSimulator) -> None:
    sim.faults.mode = "http_503"
    token = await get_token(sim)
    assert (await page(sim, token))[0] == 503
    assert sim.faults.mode == "http_503"  # count 0: until changed


async def test_timeout_hangs_then_answers_504(sim: CivilStatusSimulator, token: str) -> None:
    await set_faults(sim, mode="timeout", timeout_sleep_s=5.0)
    with pytest.raises(TimeoutError):
        await call(
            "POST",
            sim.base_url + SUBMIT_PATH,
            json_body=dossier(),
            headers={"Authorization": f"Bearer {token}"},
            timeout_s=0.3,
        )
    await set_faults(sim, timeout_sleep_s=0.1)
    started = time.monotonic()
    assert (await submit(sim, token, dossier()))[0] == 504
    assert time.monotonic() - started >= 0.1
    assert sim.accepted == {}


async def test_slow_answers_late_but_right(sim: CivilStatusSimulator, token: str) -> None:
    await set_faults(sim, mode="slow", delay_s=0.3)
    started = time.monotonic()
    status, reply = await submit(sim, token, dossier())
    assert time.monotonic() - started >= 0.3
    assert (status, reply["id"]) == (201, "HT-000001")


async def test_expire_tokens_refuses_each_old_token_once(sim: CivilStatusSimulator) -> None:
    old = await get_token(sim)
    other_old = await get_token(sim)
    await set_faults(sim, mode="expire_tokens")
    assert await page(sim, old) == (401, {"error": "invalid_token"})
    assert await page(sim, old) == (401, {"error": "invalid_token"})  # forgotten
    fresh = await get_token(sim)
    assert (await page(sim, fresh))[0] == 200
    assert (await page(sim, fresh))[0] == 200
    assert (await page(sim, other_old))[0] == 401
    assert sim.fault_hits["expire_tokens"] == 2


async def test_expire_tokens_with_a_count(sim: CivilStatusSimulator) -> None:
    first, second = await get_token(sim), await get_token(sim)
    await set_faults(sim, mode="expire_tokens", count=1)
    assert (await page(sim, first))[0] == 401
    assert sim.faults.mode == "ok"
    assert (await page(sim, second))[0] == 200


async def test_invalid_json_garbles_the_reply_not_the_effect(
    sim: CivilStatusSimulator, token: str
) -> None:
    await set_faults(sim, mode="invalid_json", count=1)
    status, reply = await submit(sim, token, dossier())
    assert status == 201
    assert isinstance(reply, str)
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply)
    assert sim.accepted == {"HS-0001": "HT-000001"}
    assert await submit(sim, token, dossier()) == (
        200,
        {"id": "HT-000001", "trangThai": "DA_TIEP_NHAN"},
    )


async def test_oversized_reply(sim: CivilStatusSimulator, token: str) -> None:
    await submit(sim, token, dossier())
    await set_faults(sim, mode="oversized_reply", oversized_bytes=200_000)
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{sim.base_url}{RESULTS_PATH}?sau=0", headers=headers) as response,
    ):
        raw = await response.read()
    assert response.status == 200
    assert len(raw) > 200_000
    assert [item["maHoSo"] for item in json.loads(raw)["duLieu"]] == ["HS-0001"]


async def test_reject_refuses_submits_only(sim: CivilStatusSimulator, token: str) -> None:
    await set_faults(sim, mode="reject")
    status, reply = await submit(sim, token, dossier())
    assert status == 422
    assert reply["loi"]
    assert (await page(sim, token))[0] == 200
    assert sim.accepted == {}
    assert sim.results == []
    assert len(sim.submissions) == 1  # received, then refused
    assert sim.faults.mode == "reject"


@pytest.mark.parametrize(
    "fields",
    [{"mode": "broken"}, {"colour": "red"}, {"mode": "http_503", "count": -1}, {"delay_s": "1"}],
)
async def test_fault_settings_are_checked_all_or_nothing(
    sim: CivilStatusSimulator, fields: dict[str, Any]
) -> None:
    status, reply = await set_faults(sim, **fields)
    assert status == 400
    assert reply["error"] == "bad_request"
    assert (sim.faults.mode, sim.faults.count, sim.faults.delay_s) == ("ok", 0, 0.5)


async def test_peak_in_flight(sim: CivilStatusSimulator, token: str) -> None:
    sim.faults.mode, sim.faults.delay_s = "slow", 0.3
    await asyncio.gather(*(submit(sim, token, dossier(f"HS-{n}")) for n in range(4)))
    assert sim.peak_in_flight == 4
    assert sim.in_flight == 0
    assert sorted(sim.accepted.values()) == [f"HT-00000{n}" for n in range(1, 5)]


async def test_state_and_reset_over_http(sim: CivilStatusSimulator, token: str) -> None:
    await submit(sim, token, dossier())
    await set_faults(sim, mode="slow", delay_s=0.01)
    status, state = await call("GET", f"{sim.base_url}/_sim/state")
    assert status == 200
    assert state["accepted"] == {"HS-0001": "HT-000001"}
    assert state["requests"] == {"token": 1, "submit": 1}
    assert state["tokens_issued"] == 1
    assert state["faults"]["mode"] == "slow"
    assert [r["maHoSo"] for r in state["results"]] == ["HS-0001"]
    assert (await call("POST", f"{sim.base_url}/_sim/reset"))[0] == 200
    assert (sim.accepted, sim.submissions, sim.results) == ({}, [], [])
    assert sim.faults.mode == "ok"
    assert sim.requests == {}
    assert (await submit(sim, token, dossier()))[0] == 201  # tokens outlive a reset


# -- push -----------------------------------------------------------------------------------------


class Receiver(LoopbackServer):
    """The hub's push endpoint, played by the test: records what arrives, can fail first."""

    def __init__(self, fail_first: int = 0, hang_s: float = 0.0) -> None:
        super().__init__("127.0.0.1", 0)
        self.fail_first, self.hang_s = fail_first, hang_s
        self.received: list[tuple[str, dict[str, str], bytes]] = []  # raw path, headers, body
        self.items: list[dict[str, Any]] = []
        self.arrivals: list[float] = []  # time.monotonic() of each request

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/hub/ket-qua", self._handle)

    @property
    def url(self) -> str:
        return f"{self.base_url}/hub/ket-qua?nguon=hotich"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.arrivals.append(time.monotonic())
        self.received.append((request.raw_path, dict(request.headers), body))
        await self._sleep(self.hang_s)
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        batch = json.loads(body)["ketQua"]
        self.items.extend(batch)
        return web.json_response({"ketQua": [{"id": i["id"], "ketQua": "ok"} for i in batch]})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as server:
        yield server


async def test_push_sends_new_results_in_batches_with_a_bearer_token(receiver: Receiver) -> None:
    async with CivilStatusSimulator(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        results_per_dossier=2,
        push_url=receiver.url,
        push_token="push-token-1",
        push_batch=3,
        push_interval_s=0.05,
    ) as server:
        tok = await get_token(server)
        for code in ("HS-1", "HS-2"):
            await submit(server, tok, dossier(code))
        await eventually(lambda: len(receiver.items) == 4, 30, "four results pushed")
        assert [i["id"] for i in receiver.items] == ["KQ-1", "KQ-2", "KQ-3", "KQ-4"]
        assert receiver.items == server.results
        assert all(len(json.loads(body)["ketQua"]) <= 3 for _, _, body in receiver.received)
        for _, headers, _ in receiver.received:
            assert headers["Authorization"] == "Bearer push-token-1"
            assert headers["Content-Type"] == "application/json"
        assert {attempt.status for attempt in server.pushes} == {200}
        assert server.pushes[0].reply["ketQua"][0] == {
            "id": server.pushes[0].ids[0],
            "ketQua": "ok",
        }
        assert server.pushed_upto == 4


async def test_push_retries_a_503() -> None:
    async with (
        Receiver(fail_first=2) as receiver,
        CivilStatusSimulator(push_url=receiver.url, push_token="t", push_interval_s=0.05) as server,
    ):
        server.inject_unknown_result("HS-1")
        await eventually(
            lambda: len(receiver.items) == 1, 30, "the result pushed after two failures"
        )
        assert [(p.batch, p.attempt, p.status) for p in server.pushes] == [
            (1, 1, 503),
            (1, 2, 503),
            (1, 3, 200),
        ]
        assert len(receiver.received) == 3
        first_gap, second_gap = (b - a for a, b in itertools.pairwise(receiver.arrivals))
        assert first_gap >= 0.045  # backoff 0.05 s, then doubled
        assert second_gap >= 0.09
        assert [i["maHoSo"] for i in receiver.items] == ["HS-1"]


async def test_push_signs_with_hmac(receiver: Receiver) -> None:
    async with CivilStatusSimulator(
        push_url=receiver.url,
        push_hmac_key_id="ministry-key",
        push_hmac_secret="push-secret",
        push_interval_s=0.05,
    ) as server:
        server.inject_unknown_result("HS-1")
        server.inject_unknown_result("HS-2")
        await eventually(lambda: len(receiver.items) == 2, 30, "both results pushed")
    assert len(receiver.received) == 2  # push_batch 1 by default
    for raw_path, headers, body in receiver.received:
        assert raw_path == "/hub/ket-qua?nguon=hotich"
        assert "Authorization" not in headers
        assert verify_hmac("POST", raw_path, body, headers, "ministry-key", "push-secret") is None
        assert verify_hmac("POST", raw_path, body, headers, "ministry-key", "other") is not None


async def test_push_gives_up_after_its_attempts_on_connection_errors() -> None:
    async with Receiver() as gone:
        dead_url = gone.url
    async with CivilStatusSimulator(
        push_url=dead_url, push_token="t", push_attempts=2, push_interval_s=0.05
    ) as server:
        server.inject_unknown_result("HS-1")
        await eventually(
            lambda: server.pushed_upto == 1, 30, "the push given up after its attempts"
        )
        assert [(p.attempt, p.status) for p in server.pushes] == [(1, None), (2, None)]
        assert all(p.error for p in server.pushes)


async def test_push_can_be_switched_on_later_and_stops_with_the_simulator(
    receiver: Receiver,
) -> None:
    async with CivilStatusSimulator(push_interval_s=0.05) as server:
        server.inject_unknown_result("HS-1")
        await asyncio.sleep(0.15)
        assert server.pushes == []  # pull only
        server.push_url, server.push_token = receiver.url, "t"
        assert await server.push_now() == 1
        assert [i["maHoSo"] for i in receiver.items] == ["HS-1"]
    server.inject_unknown_result("HS-2")
    await asyncio.sleep(0.15)
    assert len(receiver.received) == 1


async def test_stop_abandons_a_push_in_flight() -> None:
    async with Receiver(hang_s=10.0) as hung:
        server = CivilStatusSimulator(push_url=hung.url, push_token="t", push_interval_s=0.05)
        await server.start()
        try:
            server.inject_unknown_result("HS-1")
            await eventually(
                lambda: len(hung.received) == 1, 30, "the push received by the hung receiver"
            )
        finally:
            started = time.monotonic()
            await server.stop()
        assert time.monotonic() - started < 1.0
        await asyncio.sleep(0.3)
        assert server.pushes == []  # the hung attempt was cancelled, nothing retried after stop
        assert len(hung.received) == 1


async def test_duplicate_next_page_applies_to_push(receiver: Receiver) -> None:
    async with CivilStatusSimulator(push_url=receiver.url, push_token="t") as server:
        server.inject_unknown_result("HS-1")
        await server.push_now()
        server.duplicate_next_page()
        server.inject_unknown_result("HS-2")
        await server.push_now()
    assert [i["maHoSo"] for i in receiver.items] == ["HS-1", "HS-1", "HS-2"]


# -- standalone -----------------------------------------------------------------------------------


def test_command_line_options_reach_the_simulator() -> None:
    args = _parser().parse_args(
        [
            *("--auth", "bearer", "--token-ttl-s", "60", "--push-batch", "5"),
            *("--header", f"X-Ma-Don-Vi={UNIT}", "--push-url", "http://127.0.0.1:1/x"),
        ]
    )
    assert (args.auth, args.token_ttl_s, args.push_batch) == ("bearer", 60.0, 5)
    assert (args.header, args.push_url, args.port) == (
        [("X-Ma-Don-Vi", UNIT)],
        "http://127.0.0.1:1/x",
        8090,
    )
    with pytest.raises(SystemExit):
        _parser().parse_args(["--header", "no-equals-sign"])
