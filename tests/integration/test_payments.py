"""Payment results end to end: the payment platform simulator, a real RabbitMQ, the hub in
process, and a loopback one-stop system that records every event it is sent.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from hub.config import load_config
from hub.runtime import Hub
from hub.store.sqlite import SqliteStore
from hub.validation import VN_TZ
from sims.national_portal.simulator import DvcqgSimulator
from sims.payment_platform.simulator import PaymentPlatformSimulator, SimTransaction
from sims.webhook.simulator import WebhookReceiver
from tests.integration.payments_world import (
    FEE,
    PARTNER,
    SECRET,
    SUB_TOKEN,
    code,
    payment_overrides,
)
from tests.support import (
    ONESTOP_TOKEN,
    PORTAL_PASSWORD,
    PORTAL_USER,
    READER_TOKEN,
    eventually,
)

QUIET_S = 0.7  # how long "no more events" is watched for


@dataclass
class PayWorld:
    hub: Hub
    platform: PaymentPlatformSimulator
    receiver: WebhookReceiver
    http: aiohttp.ClientSession
    out: Path
    overrides: dict[str, Any]

    @property
    def store(self) -> SqliteStore:
        assert self.hub.store is not None
        return self.hub.store

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.hub.port}"

    async def dossier(self, code: str, fees: list[int] | None = None) -> str:
        """The one-stop system tells the hub about a dossier (with its fees, if any)."""
        event = {
            "event_id": f"ev-{code}",
            "dossier_code": code,
            "kind": "record",
            "status": "payment_requested",
            "occurred_at": (datetime.now(VN_TZ) - timedelta(days=2)).isoformat(),
            "record": {
                "procedure_name": "Cấp giấy phép xây dựng",
                "fees": [{"name": "Lệ phí", "amount_vnd": a} for a in fees or []],
            },
        }
        status, reply = await self.call("POST", "/api/v1/dossier-events", {"events": [event]})
        assert status == 200, reply
        assert reply["results"][0]["outcome"] == "accepted", reply
        return code

    async def call(
        self, method: str, path: str, body: Any = None, token: str = ONESTOP_TOKEN
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
            ctype = r.headers.get("Content-Type", "")
            return r.status, await (r.json() if "json" in ctype else r.text())

    async def paid_events(self, expected: int) -> list[dict[str, Any]]:
        """Wait for `expected` payment events at the one-stop and for the hub to record each
        delivery, then make sure no more come."""

        def events() -> list[dict[str, Any]]:
            return [e for e in self.receiver.events if e["type"].startswith("payment.")]

        await eventually(lambda: len(events()) >= expected, 30, f"{expected} payment event(s)")
        for event in events():
            await self.acknowledged(event["dossier_code"], event["payment"]["transaction_id"])
        # Absence has no event to wait for: a second delivery would come within this window.
        await asyncio.sleep(QUIET_S)
        assert len(events()) == expected, [e["payment"]["transaction_id"] for e in events()]
        return events()

    async def acknowledged(self, dossier: str, transaction_id: str | None = None) -> None:
        """Wait until the hub recorded the one-stop's 2xx for the dossier's payment (the one
        of `transaction_id`, if given): it does so after the one-stop answered."""

        async def recorded() -> bool:
            payments = (await self.store.dossier(dossier)).payments
            return any(
                p.acknowledged_at is not None and transaction_id in (None, p.result.transaction_id)
                for p in payments
            )

        await eventually(recorded, 30, f"the delivery of {dossier}'s payment recorded")


@pytest.fixture
async def world(tmp_path: Path, rabbit_url: str, broker_prefix: str) -> AsyncIterator[PayWorld]:
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal,
        WebhookReceiver(token=SUB_TOKEN) as receiver,
        PaymentPlatformSimulator(partner_code=PARTNER, secret=SECRET) as platform,
    ):
        overrides = payment_overrides(
            tmp_path, rabbit_url, broker_prefix, portal.url, platform.base_url, receiver.url
        )
        async with Hub(load_config(None, overrides)) as hub, aiohttp.ClientSession() as http:
            path = hub.config.connectors.payment_platform.callback_path
            platform.callback_url = f"http://127.0.0.1:{hub.port}{path}"
            out = tmp_path / "reconciliation"
            yield PayWorld(hub, platform, receiver, http, out, overrides)


def codes_of(replies: list[dict[str, Any]]) -> list[str]:
    return [r["MaLoi"] for r in replies]


async def test_a_paid_callback_sent_three_times_reaches_the_one_stop_once(world: PayWorld) -> None:
    dossier = await world.dossier(code(1), fees=[FEE])
    tx = world.platform.new_transaction(f"{dossier}-01", FEE)
    tx.info = "Nguyen Van An, CCCD 001099012345, nop le phi"

    replies = await world.platform.send_callback(tx, "triple")

    assert codes_of(replies) == ["00", "00", "00"]
    (event,) = await world.paid_events(1)
    assert event["type"] == "payment.paid"
    assert event["dossier_code"] == dossier
    payment = event["payment"]
    assert payment["transaction_id"] == tx.transaction_id
    assert payment["reference"] == f"{dossier}-01"
    assert payment["amount_vnd"] == FEE
    assert payment["currency"] == "VND"
    assert payment["outcome"] == "paid"
    assert payment["bank"] == "VCB"
    assert datetime.fromisoformat(payment["paid_at"]) == tx.at
    assert world.receiver.receipts[event["event_id"]] == 1

    # The dossier's history shows the payment and its delivery to the one-stop system.
    await world.acknowledged(dossier)
    view = await world.store.dossier(dossier)
    assert [p.result.transaction_id for p in view.payments] == [tx.transaction_id]
    assert any(
        d.connector == "subscriber.one_stop" and "payment.paid" in (d.detail or "")
        for d in view.deliveries
    )
    status, log = await world.call("GET", "/api/v1/payments/callbacks")
    assert status == 200
    assert [c["verdict"] for c in log["callbacks"]] == ["duplicate", "duplicate", "accepted"]
    assert "001099012345" not in str(log)
    status, listed = await world.call("GET", f"/api/v1/payments?dossier_code={dossier}")
    assert status == 200
    assert listed["payments"][0]["acknowledged_at"] is not None
    assert "001099012345" not in str(listed)


async def test_a_late_callback_inside_the_window_is_accepted(world: PayWorld) -> None:
    dossier = await world.dossier(code(2))
    tx = world.platform.new_transaction(dossier, FEE, at=datetime.now(VN_TZ) - timedelta(hours=20))
    world.platform.late_delay_s = 0.3
    assert codes_of(await world.platform.send_callback(tx, "late")) == ["00"]
    (event,) = await world.paid_events(1)
    assert event["payment"]["transaction_id"] == tx.transaction_id


async def test_a_pending_transaction_is_resolved_by_the_status_check(world: PayWorld) -> None:
    hour_ago = datetime.now(VN_TZ) - timedelta(hours=1)
    to_pay = world.platform.new_transaction(await world.dossier(code(3)), FEE, hour_ago, "3")
    to_fail = world.platform.new_transaction(await world.dossier(code(4)), FEE, hour_ago, "3")
    stays = world.platform.new_transaction(await world.dossier(code(5)), FEE, hour_ago, "3")
    too_new = world.platform.new_transaction(await world.dossier(code(6)), FEE, state="3")
    for tx in (to_pay, to_fail, stays, too_new):
        assert codes_of(await world.platform.send_callback(tx)) == ["00"]
    # Nothing goes to the one-stop for a pending payment (paid_events(2) below checks that
    # the only events are the two the status check resolves).
    assert not [e for e in world.receiver.events if e["type"].startswith("payment.")]

    world.platform.set_state(to_pay.transaction_id, "1")
    world.platform.set_state(to_fail.transaction_id, "4")
    world.platform.set_state(too_new.transaction_id, "1")  # younger than 30 minutes: not asked
    status, done = await world.call("POST", "/api/v1/payments/status-checks")

    assert status == 200
    assert (done["checked"], done["paid"], done["failed"], done["pending"]) == (3, 1, 1, 1)
    events = await world.paid_events(2)
    assert {(e["type"], e["payment"]["transaction_id"]) for e in events} == {
        ("payment.paid", to_pay.transaction_id),
        ("payment.failed", to_fail.transaction_id),
    }
    assert all(e["payment"]["source"] == "status_check" for e in events)
    assert world.platform.checks_by_transaction[too_new.transaction_id] == 0

    # The next round asks only about what is still pending, and changes nothing.
    status, again = await world.call("POST", "/api/v1/payments/status-checks")
    assert (again["checked"], again["pending"]) == (1, 1)
    await world.paid_events(2)


async def test_a_platform_outage_leaves_the_transaction_pending_for_the_next_round(
    world: PayWorld,
) -> None:
    tx = world.platform.new_transaction(
        await world.dossier(code(7)), FEE, datetime.now(VN_TZ) - timedelta(hours=2), "3"
    )
    assert codes_of(await world.platform.send_callback(tx)) == ["00"]
    world.platform.set_state(tx.transaction_id, "1")
    world.platform.faults.status_outage_remaining = 10
    status, done = await world.call("POST", "/api/v1/payments/status-checks")
    assert status == 200
    assert (done["checked"], done["errors"]) == (0, 1)
    world.platform.faults.status_outage_remaining = 0
    world.platform.faults.bad_reply_signature = True  # a reply the hub cannot trust
    status, done = await world.call("POST", "/api/v1/payments/status-checks")
    assert (done["checked"], done["errors"]) == (0, 1)
    assert "MaXacThuc" in done["problems"][0]
    world.platform.faults.bad_reply_signature = False
    status, done = await world.call("POST", "/api/v1/payments/status-checks")
    assert (done["checked"], done["paid"]) == (1, 1)
    await world.paid_events(1)


BAD_VARIANTS = {
    "bad_signature": "bad_signature",
    "missing_signature": "missing",
    "tampered": "bad_signature",
    "twelve_hour": "bad_date",
    "stale": "stale_time",
    "non_numeric_amount": "bad_amount",
    "foreign_currency": "bad_currency",
    "unknown_reference": "unknown_reference",
}


async def test_bad_callbacks_are_refused_and_nothing_reaches_the_one_stop(
    world: PayWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    dossier = await world.dossier(code(8))
    for variant in BAD_VARIANTS:
        tx = world.platform.new_transaction(dossier, FEE)
        tx.info = "Tran Thi Binh 0912345678"
        replies = await world.platform.send_callback(tx, variant)  # type: ignore[arg-type]
        assert codes_of(replies) == ["99"], (variant, replies)
    # A well-formed reference whose dossier the hub never received.
    stranger = world.platform.new_transaction(code(9), FEE)
    assert codes_of(await world.platform.send_callback(stranger)) == ["99"]
    # Not JSON at all, and a JSON array: refused, not crashed.
    url = world.platform.callback_url or ""
    async with world.http.post(url, data=b"{not json") as r:
        assert (await r.json())["MaLoi"] == "99"
    async with world.http.post(url, json=[1, 2]) as r:
        assert (await r.json())["MaLoi"] == "99"
    # A paid transaction later reported failed: a conflict, refused and kept as paid.
    paid = world.platform.new_transaction(dossier, FEE)
    assert codes_of(await world.platform.send_callback(paid)) == ["00"]
    world.platform.set_state(paid.transaction_id, "4")
    assert codes_of(await world.platform.send_callback(paid)) == ["99"]

    (event,) = await world.paid_events(1)  # only the one good callback
    assert event["payment"]["transaction_id"] == paid.transaction_id
    status, log = await world.call("GET", "/api/v1/payments/callbacks?verdict=refused")
    assert status == 200
    refused = [c["code"] for c in reversed(log["callbacks"])]
    assert refused == [
        *BAD_VARIANTS.values(),
        "unknown_reference",
        "unreadable",
        "unreadable",
        "conflict",
    ]
    assert all(c["reason"] for c in log["callbacks"])
    text = str(log) + capsys.readouterr().out
    assert "0912345678" not in text
    assert "Tran Thi Binh" not in text
    assert SECRET not in text
    view = await world.store.dossier(dossier)
    assert [p.result.outcome.value for p in view.payments] == ["paid"]
    # The dashboard's payments page lists the same refusals, masked.
    assert world.hub.board is not None
    page = await world.hub.board.flow("payments")
    (callbacks,) = [t["rows"] for t in page["tables"] if t["key"] == "callbacks"]
    assert [c["code"] for c in reversed(callbacks) if c["verdict"] == "refused"] == refused
    assert "0912345678" not in str(page)


async def test_payment_reads_need_their_permission(world: PayWorld) -> None:
    day = "/api/v1/payments/reconciliation?date=2026-11-20"
    assert (await world.call("GET", day, token="nope"))[0] == 401
    assert (await world.call("GET", day, token=READER_TOKEN))[0] == 403
    assert (await world.call("POST", day, token=READER_TOKEN))[0] == 403
    assert (await world.call("GET", "/api/v1/payments", token=READER_TOKEN))[0] == 403
    assert (await world.call("GET", day))[0] == 404
    assert (await world.call("GET", "/api/v1/payments/reconciliation?date=20.11.2026"))[0] == 400
    assert (await world.call("GET", "/api/v1/payments"))[0] == 400
    assert (await world.call("GET", "/api/v1/payments/callbacks?verdict=x"))[0] == 400


async def test_the_reconciliation_lists_exactly_the_planted_mismatches(world: PayWorld) -> None:
    today = datetime.now(VN_TZ).date()
    day = today - timedelta(days=1)
    at = datetime.combine(day, datetime.min.time(), VN_TZ) + timedelta(hours=10)
    platform = world.platform

    async def paid(
        n: int, amount: int = FEE, fees: list[int] | None = None, ref: str = ""
    ) -> SimTransaction:
        dossier = code(n) if n in seeded else await world.dossier(code(n), fees)
        seeded.add(n)
        tx = platform.new_transaction(ref or dossier, amount, at + timedelta(minutes=n))
        assert codes_of(await platform.send_callback(tx)) == ["00"]
        return tx

    seeded: set[int] = set()
    clean = await paid(10, fees=[FEE])
    amount = await paid(11)
    dup_a = await paid(12, ref=code(12) + "-01")
    dup_b = await paid(12, ref=code(12) + "-01")
    await paid(13, amount=100_000, fees=[FEE])
    unconfirmed = await paid(14)
    disputed = await paid(15)
    shifted = await paid(20)
    await world.paid_events(8)
    # The one-stop system refuses the next payment: it is never acknowledged.
    world.receiver.faults.reject_types = ["payment.paid"]
    refused_before = world.receiver.requests
    unacknowledged = await paid(16)
    await eventually(lambda: world.receiver.requests > refused_before, 30, "the refusal")
    world.receiver.faults.reject_types = []
    # Pending since yesterday morning; the platform listing includes pending ones too.
    await world.dossier(code(17))
    pending = platform.new_transaction(code(17), FEE, at, "3")
    assert codes_of(await platform.send_callback(pending)) == ["00"]
    # Only the platform knows these two.
    await world.dossier(code(18))
    lost = platform.new_transaction(code(18), FEE, at + timedelta(hours=1))
    dollars = platform.new_transaction(code(19), 10, at + timedelta(hours=2), currency="USD")
    # What the platform says about the day differs from what it said in the callbacks.
    amount.amount = 200_000
    platform.set_state(disputed.transaction_id, "4")
    shifted.at += timedelta(hours=3)  # its listing's clock runs in another time zone
    platform.confirm_day(day, [t for t in platform.transactions.values() if t is not unconfirmed])

    status, report = await world.call("POST", f"/api/v1/payments/reconciliation?date={day}")

    assert status == 200, report
    found = {(f["kind"], f["transaction_id"] or f["dossier_code"]) for f in report["findings"]}
    assert found == {
        ("amount_mismatch", amount.transaction_id),
        ("duplicate", dup_a.transaction_id),
        ("duplicate", dup_b.transaction_id),
        ("fee_mismatch", code(13)),
        ("unconfirmed_by_platform", unconfirmed.transaction_id),
        ("status_mismatch", disputed.transaction_id),
        ("time_mismatch", shifted.transaction_id),
        ("missing_at_one_stop", unacknowledged.transaction_id),
        ("pending_too_long", pending.transaction_id),
        ("missing_at_hub", lost.transaction_id),
        ("currency_mismatch", dollars.transaction_id),
    }, report["findings"]
    assert clean.transaction_id not in str(report["findings"])
    clock = next(f for f in report["findings"] if f["kind"] == "time_mismatch")
    assert "3 h later" in clock["detail"]
    assert "clock error" in clock["detail"]
    assert len(report["findings"]) == len(found)
    summary = report["summary"]
    # Listed as paid: seven of the callbacks (not the unconfirmed or disputed ones), the lost
    # one and the one in dollars.
    assert summary["platform_confirmed"] == 9
    assert summary["findings"]["duplicate"] == 2
    # The payment whose callback was lost is delivered now, once.
    events = await world.paid_events(9)
    assert events[-1]["payment"]["transaction_id"] == lost.transaction_id
    assert events[-1]["payment"]["source"] == "reconciliation"

    # Stored and served, as JSON and as CSV; written to files too.
    status, stored = await world.call("GET", f"/api/v1/payments/reconciliation?date={day}")
    assert status == 200
    assert stored["findings"] == report["findings"]
    async with world.http.get(
        f"{world.base}/api/v1/payments/reconciliation?date={day}&format=csv",
        headers={"Authorization": f"Bearer {ONESTOP_TOKEN}"},
    ) as served:  # a download, never a page
        assert served.status == 200
        assert served.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        assert served.headers["Content-Disposition"].startswith(
            f'attachment; filename="reconciliation-{day}.csv"'
        )
        text = await served.text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {(r["kind"], r["transaction_id"] or r["dossier_code"]) for r in rows} == found
    files = sorted(p.name for p in world.out.iterdir())
    assert files == [f"reconciliation-{day}.csv", f"reconciliation-{day}.json"]

    # Again: the lost payment is now known and acknowledged (paid_events waited for that);
    # nothing is delivered twice.
    status, again = await world.call("POST", f"/api/v1/payments/reconciliation?date={day}")
    found_again = {(f["kind"], f["transaction_id"] or f["dossier_code"]) for f in again["findings"]}
    assert found_again == found - {("missing_at_hub", lost.transaction_id)}
    await world.paid_events(9)


async def test_an_operator_reconciles_a_day_from_the_command_line(
    world: PayWorld, tmp_path: Path
) -> None:
    from tests.support import hub_cli

    day = datetime.now(VN_TZ).date() - timedelta(days=1)
    at = datetime.combine(day, datetime.min.time(), VN_TZ) + timedelta(hours=9)
    clean = world.platform.new_transaction(await world.dossier(code(20)), FEE, at)
    assert codes_of(await world.platform.send_callback(clean)) == ["00"]
    await world.paid_events(1)
    config_path = tmp_path / "hub-cli.yaml"
    config_path.write_text(yaml.safe_dump(world.overrides, allow_unicode=True))
    out_dir = tmp_path / "reports"

    status, out, err = await hub_cli(
        "payments", "reconcile", "--date", str(day), "-c", str(config_path), "--out", str(out_dir)
    )
    assert status == 0, out + err
    assert f"{day}: platform confirmed 1 ({FEE} đồng), hub paid 1" in out
    assert sorted(p.name for p in out_dir.iterdir()) == [
        f"reconciliation-{day}.csv",
        f"reconciliation-{day}.json",
    ]

    # A payment only the platform knows: listed, recorded, exit status 3.
    lost = world.platform.new_transaction(await world.dossier(code(21)), FEE, at)
    status, out, err = await hub_cli(
        "payments", "reconcile", "--date", str(day), "-c", str(config_path), "--out", str(out_dir)
    )
    assert status == 3, out + err
    assert "missing_at_hub: 1" in out
    (event,) = [e for e in await world.paid_events(2) if e["payment"]["source"] == "reconciliation"]
    assert event["payment"]["transaction_id"] == lost.transaction_id

    status, out, err = await hub_cli(
        "payments", "reconcile", "--date", "22/11", "-c", str(config_path)
    )
    assert status == 2
    assert "is not a date" in err
    bad = world.platform.new_transaction(code(22), FEE)
    await world.platform.send_callback(bad, "tampered")
    world.platform.faults.status_outage_remaining = 100  # listings answer 503 too
    status, out, err = await hub_cli(
        "payments", "reconcile", "--date", str(day), "-c", str(config_path)
    )
    assert status == 1, out + err
    assert "error: HTTP 503 from the payment platform" in err
    world.platform.faults.status_outage_remaining = 0
    status, out, err = await hub_cli("payments", "callbacks", "--refused", "-c", str(config_path))
    assert status == 0, err
    assert "bad_signature" in out
    assert bad.transaction_id in out
