"""The flow pages' tables over HTTP: the admin API's JSON and the CSV export agree with the
store, filter, count, sum and page as the page does, refuse a date that is none, and need a
log-in. A hub with the payment platform on, payments made by the simulator's signed callbacks."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.auth import hash_password
from hub.config import load_config
from hub.runtime import Hub
from hub.validation import VN_TZ
from sims.national_portal.simulator import DvcqgSimulator
from sims.payment_platform.simulator import PaymentPlatformSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.payments_world import (
    FEE,
    PARTNER,
    SECRET,
    SUB_TOKEN,
    code,
    payment_overrides,
)
from tests.support import ONESTOP_TOKEN, PORTAL_PASSWORD, PORTAL_USER

N, FAILED_EVERY = 30, 3  # payments made; every third one failed


@pytest.fixture
async def site(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> AsyncIterator[tuple[str, aiohttp.ClientSession, dict[str, str]]]:
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal,
        WebhookReceiver(token=SUB_TOKEN) as receiver,
        PaymentPlatformSimulator(partner_code=PARTNER, secret=SECRET) as platform,
    ):
        overrides = payment_overrides(
            tmp_path, rabbit_url, broker_prefix, portal.url, platform.base_url, receiver.url
        )
        overrides["dashboard"] = {
            "users": {"xem": {"password_hash": hash_password("xem-password"), "role": "viewer"}},
            "failed_login_delay_s": 0.1,
        }
        async with Hub(load_config(None, overrides)) as hub, aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{hub.port}"
            platform.callback_url = base + hub.config.connectors.payment_platform.callback_path
            now = datetime.now(VN_TZ)
            for i in range(N):
                dossier = code(i + 1, f"{now:%y%m%d}")
                event = {
                    "event_id": f"ev-{dossier}",
                    "dossier_code": dossier,
                    "kind": "record",
                    "status": "payment_requested",
                    "occurred_at": (now - timedelta(days=1)).isoformat(),
                    "record": {"procedure_name": "Cấp giấy phép xây dựng"},
                }
                async with http.post(
                    base + "/api/v1/dossier-events",
                    json={"events": [event]},
                    headers={"Authorization": f"Bearer {ONESTOP_TOKEN}"},
                ) as r:
                    assert r.status == 200
                state = "4" if i % FAILED_EVERY == 0 else "1"
                tx = platform.new_transaction(dossier, FEE, now - timedelta(minutes=i), state)
                assert [x["MaLoi"] for x in await platform.send_callback(tx)] == ["00"]
            async with http.post(
                base + "/api/v1/admin/session", json={"username": "xem", "password": "xem-password"}
            ) as r:
                assert r.status == 200
                session = r.cookies["hub_session"].value
            yield base, http, {"Cookie": f"hub_session={session}"}


async def _get(site: Any, path: str) -> tuple[int, str, Any]:
    base, http, headers = site
    async with http.get(base + path, headers=headers, allow_redirects=False) as r:
        text = await r.text(encoding="utf-8")
        body = await r.json() if "json" in r.headers.get("Content-Type", "") else text
        return r.status, r.headers.get("Content-Type", ""), body


def _table(body: dict[str, Any], key: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [t for t in body["tables"] if t["key"] == key]
    assert len(found) == 1, key
    return found[0]


async def test_the_json_filters_counts_sums_and_pages_like_the_page(site: Any) -> None:
    status, _, body = await _get(site, "/api/v1/admin/payments")
    assert status == 200, body
    payments = _table(body, "payments")
    assert (payments["total"], payments["pages"], len(payments["rows"])) == (N, 2, 25)
    assert payments["sums"] == {"amount_vnd": N * FEE}
    assert payments["options"]["outcome"] == ["failed", "paid"]
    assert {c["key"]: c["kind"] for c in payments["columns"]}["paid_at"] == "time"
    assert [c["name"] for c in body["connectors"]] == ["payment_platform"]
    failed = N // FAILED_EVERY
    status, _, body = await _get(site, "/api/v1/admin/payments?payments-outcome=failed")
    payments = _table(body, "payments")
    assert payments["total"] == failed
    assert {r["outcome"] for r in payments["rows"]} == {"failed"}
    assert payments["sums"] == {"amount_vnd": failed * FEE}
    status, _, body = await _get(site, "/api/v1/admin/payments?payments-page=1")
    assert len(_table(body, "payments")["rows"]) == N - 25
    status, _, body = await _get(site, "/api/v1/admin/payments?payments-since=6/12/2026")
    assert status == 400
    assert body["error"] == "bad_filter"


async def test_the_csv_has_every_matching_row_in_vietnamese_and_local_time(site: Any) -> None:
    status, ctype, text = await _get(site, "/dashboard/payments/payments.csv?payments-outcome=paid")
    assert status == 200
    assert ctype.startswith("text/csv")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:5] == ["Trục nhận lúc", "Thời điểm giao dịch", "Mã hồ sơ", "Số tiền", "Kết quả"]
    paid = N - N // FAILED_EVERY
    assert len(rows) == 1 + paid  # all of them, not a page of 25
    assert {r[4] for r in rows[1:]} == {"Đã thanh toán"}
    assert {r[3] for r in rows[1:]} == {"150.000 đ"}
    for r in rows[1:]:
        datetime.strptime(r[1], "%Y-%m-%d %H:%M:%S")  # local time, to the second
    status, _, _ = await _get(site, "/dashboard/payments/nothing.csv")
    assert status == 404


async def test_the_csv_and_the_json_need_a_log_in(site: Any) -> None:
    base, http, _ = site
    async with http.get(base + "/dashboard/payments/payments.csv", allow_redirects=False) as r:
        assert r.status == 303
        assert "/dashboard/login" in r.headers["Location"]
    async with http.get(base + "/api/v1/admin/payments") as r:
        assert r.status == 401
