"""The bad-input corpus at the payment platform's door: the signed result callback.

Drawn callbacks, each with one hostile field (then signed, so the field itself is what the
door must judge), with broken signatures, as JSON or as a form; malformed bodies; hand-written
requests. Every one is answered below 500 on a connection that stays whole (the protocol
answers HTTP 200 with `MaLoi` 00 or 99); every valid callback is taken (`00`), every invalid
one refused (`99`); and afterwards the one-stop system has received exactly one event per
final result the hub took, nothing for the others, and nothing was parked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from hypothesis import strategies as st

from connectors.payment_platform.config import CALLBACK_FIELDS
from connectors.payment_platform.signing import SIGNATURE_FIELD
from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from sims.payment_platform.simulator import PaymentPlatformSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.corpus_dossier_values import BAD_CODES, BAD_WIRE_DATES, NOW, days, wire
from tests.integration.corpus_world import (  # noqa: F401  (product_logging: a fixture)
    INVALID,
    QUOTAS,
    UNKNOWN,
    VALID,
    WRONG_TYPES,
    Answer,
    Case,
    Stopwatch,
    Value,
    answered,
    assert_answered,
    drained,
    draw,
    judged,
    malformed,
    product_logging,
    raw_request,
    send_all,
    text_values,
)
from tests.integration.payments_world import PARTNER, SECRET, SUB_TOKEN, code, payment_overrides
from tests.support import ONESTOP_TOKEN, PORTAL_PASSWORD, PORTAL_USER, eventually

pytestmark = [pytest.mark.slow, pytest.mark.broker, pytest.mark.usefixtures("product_logging")]

N_CALLBACKS, N_SIGNATURES, N_MALFORMED, DOSSIERS = 2100, 200, 200, 20
FINAL = {"00", "02", "03", "04", "05", "06", "07", "08", "10", "11", "12", "13", "24", "51", "99"}
PENDING = {"01", "09"}


def sign(fields: dict[str, Any], secret: str = SECRET) -> str:
    """`MaXacThuc` as the platform computes it; a lone surrogate is hashed as its bytes (the
    hub cannot sign such a message at all, so it refuses it whatever the signature)."""
    parts = ["" if fields.get(n) is None else str(fields.get(n)) for n in CALLBACK_FIELDS]
    text = "|".join([*parts, secret])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def callback(n: int) -> dict[str, Any]:
    return {
        "LoaiBanTin": "KetQuaThanhToan",
        "MaLoi": "00",
        "MaDoiTac": PARTNER,
        "MaThamChieu": code(1 + n % DOSSIERS),
        "SoTien": "150000",
        "MaTienTe": "VND",
        "MaGiaoDich": f"GD{n:08d}",
        "MaNganHang": "VCB",
        "ThoiGianGD": wire(NOW - timedelta(hours=1)),
        "ThongTinGiaoDich": "Nguyễn Văn An nộp lệ phí",
    }


def one_of_values(verdict: str, kind: str, values: list[Any]) -> st.SearchStrategy[Value]:
    return st.builds(lambda v: Value(v, verdict, kind), st.sampled_from(values))  # type: ignore[arg-type]


def field_values() -> st.SearchStrategy[tuple[str, Value]]:
    unknown_dossier = code(9000)
    return st.one_of(
        st.tuples(
            st.just("LoaiBanTin"),
            one_of_values(
                INVALID, "unknown_type", ["KetQua", "", "TruyVanGiaoDich", "ketquathanhtoan"]
            )
            | WRONG_TYPES,
        ),
        st.tuples(st.just("MaLoi"), one_of_values(VALID, "known", sorted(FINAL | PENDING))),
        st.tuples(
            st.just("MaLoi"),
            one_of_values(INVALID, "unknown", ["42", "", "0", "000", " 00x", "０"]) | WRONG_TYPES,
        ),
        st.tuples(
            st.just("MaDoiTac"),
            one_of_values(
                INVALID, "other_partner", ["000.00.00.H42", "", PARTNER + " x", PARTNER.lower()]
            )
            | WRONG_TYPES,
        ),
        st.tuples(
            st.just("MaThamChieu"),
            one_of_values(VALID, "suffix", ["{code}-01", "{code}-1", "{code}-999"]),
        ),
        st.tuples(
            st.just("MaThamChieu"),
            one_of_values(
                INVALID,
                "unknown_dossier",
                [unknown_dossier, unknown_dossier + "-01", "{code}-1234", "{code}x", ""],
            ),
        ),
        st.tuples(
            st.just("MaThamChieu"),
            st.builds(lambda t: Value(t, INVALID, "bad_code"), st.sampled_from(BAD_CODES)),
        ),
        st.tuples(
            st.just("SoTien"),
            one_of_values(
                VALID, "amount", ["150000", "150000.00", "150000.0", 150000, "0", "9999999999999"]
            ),
        ),
        st.tuples(
            st.just("SoTien"),
            one_of_values(
                INVALID,
                "bad_amount",
                ["-150000", "150000.5", "1e5", "", "1" * 16, "150.000", "150,000", 1.5, "٣"],
            )
            | WRONG_TYPES,
        ),
        st.tuples(
            st.just("MaTienTe"), one_of_values(VALID, "currency", ["VND", "vnd", "704", " VND "])
        ),
        st.tuples(
            st.just("MaTienTe"),
            one_of_values(INVALID, "bad_currency", ["USD", "", "VNĐ", "đ"]) | WRONG_TYPES,
        ),
        st.tuples(st.just("MaGiaoDich"), text_values(100, numbers_coerced=True)),
        st.tuples(st.just("MaNganHang"), text_values(50, numbers_coerced=True)),
        st.tuples(st.just("ThongTinGiaoDich"), text_values(2000, numbers_coerced=True)),
        st.tuples(
            st.just("ThoiGianGD"),
            st.builds(lambda d: Value(wire(d), VALID, "in_window"), days(-2.9, 0)),
        ),
        st.tuples(
            st.just("ThoiGianGD"),
            st.builds(lambda d: Value(wire(d), INVALID, "stale"), days(-3000, -3.1)),
        ),
        st.tuples(
            st.just("ThoiGianGD"),
            # A day ahead at least: the cases are drawn when the module is collected, and a
            # busy `make test` may send them many minutes later (max_future_s is 5 minutes).
            st.builds(lambda d: Value(wire(d), INVALID, "future"), days(1, 3000)),
        ),
        st.tuples(
            st.just("ThoiGianGD"),
            one_of_values(INVALID, "bad_format", BAD_WIRE_DATES) | WRONG_TYPES,
        ),
        st.tuples(
            st.just("Extra"),
            st.builds(lambda v: Value(v, VALID, "unsigned_extra"), st.text(max_size=20)),
        ),
    )


def signature_values() -> st.SearchStrategy[Value]:
    """What stands in `MaXacThuc`, given the right one (the callback otherwise valid)."""
    return st.one_of(
        st.just(Value("upper", VALID, "upper_case")),
        st.just(Value("padded", VALID, "padded")),
        st.just(Value("wrong_key", INVALID, "wrong_key")),
        st.just(Value("flipped", INVALID, "flipped")),
        st.just(Value(None, INVALID, "missing")),
        one_of_values(INVALID, "garbage", ["", "0" * 64, "x" * 64, "ạ" * 64, "\ud800" * 64]),
        WRONG_TYPES,
    )


@dataclass
class World:
    hub: Hub
    receiver: WebhookReceiver
    http: aiohttp.ClientSession
    path: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.hub.port}"


@pytest.fixture
async def world(tmp_path: Path, rabbit_url: str, broker_prefix: str) -> AsyncIterator[World]:
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal,
        WebhookReceiver(token=SUB_TOKEN) as receiver,
        PaymentPlatformSimulator(partner_code=PARTNER, secret=SECRET) as platform,
    ):
        overrides = payment_overrides(
            tmp_path, rabbit_url, broker_prefix, portal.url, platform.base_url, receiver.url
        )
        # What the door reads, not how often it may be called (test_rate_limits.py does).
        overrides["connectors"]["payment_platform"]["callback_limits"]["per_address_per_s"] = 0
        async with Hub(load_config(None, overrides)) as hub, aiohttp.ClientSession() as http:
            w = World(hub, receiver, http, hub.config.connectors.payment_platform.callback_path)
            events = [
                {
                    "event_id": f"ev-{code(i)}", "dossier_code": code(i), "kind": "record",
                    "status": "payment_requested",
                    "occurred_at": (NOW - timedelta(days=2)).isoformat(),
                    "record": {"fees": [{"name": "Lệ phí", "amount_vnd": 150000}]},
                }
                for i in range(1, DOSSIERS + 1)
            ]  # fmt: skip
            async with http.post(
                w.base + "/api/v1/dossier-events",
                json={"events": events},
                headers={"Authorization": f"Bearer {ONESTOP_TOKEN}"},
            ) as r:
                assert (await r.json())["accepted"] == DOSSIERS
            yield w


@dataclass(frozen=True)
class Sent:
    verdict: str
    transaction: str  # MaGiaoDich as sent (what the one-stop would be told of)
    final: bool


def build(n: int, name: str, value: Value, as_form: bool) -> tuple[bytes, str, Sent]:
    fields = callback(n)
    v = value.value
    if isinstance(v, str) and "{code}" in v:
        v = v.replace("{code}", fields["MaThamChieu"])
    elif isinstance(v, str) and "{n" in v:
        v = v.format(n=n)
    if name == "MaGiaoDich" and value.verdict == VALID and isinstance(v, str | int):
        v = f"{n}-{v}"[:100]  # unique, so each is a new transaction
    verdict = value.verdict
    if value.kind == "control" and isinstance(v, str) and v.strip().isprintable():
        verdict = VALID  # the door strips blanks around a value: a control one at an edge goes
    if name == "MaGiaoDich" and isinstance(v, str) and not v.strip():
        verdict = INVALID  # blank: missing
    if v is None:
        fields.pop(name, None)
        verdict = INVALID if name not in ("MaNganHang", "ThongTinGiaoDich") else verdict
    else:
        fields[name] = v
    fields[SIGNATURE_FIELD] = sign(fields)
    if as_form and not all(isinstance(x, str) for x in fields.values()):
        as_form = False  # a form carries strings only
    final = isinstance(fields.get("MaLoi"), str) and fields["MaLoi"] in FINAL
    sent = Sent(verdict, str(fields.get("MaGiaoDich", "")).strip(), final)
    if as_form:
        body = urlencode(fields, encoding="utf-8", errors="surrogatepass").encode()
        return body, "application/x-www-form-urlencoded", sent
    return json.dumps(fields).encode(), "application/json", sent


def signed_wrong(n: int, value: Value) -> tuple[bytes, Sent]:
    fields = callback(n)
    right = sign(fields)
    stand_in: Any = (
        {
            "upper": right.upper(),
            "padded": f"  {right} ",
            "wrong_key": sign(fields, "another-key"),
            "flipped": right[:-1] + ("0" if right[-1] != "0" else "1"),
        }.get(value.value, value.value)
        if isinstance(value.value, str)
        else value.value
    )
    if stand_in is None:
        fields.pop(SIGNATURE_FIELD, None)
    else:
        fields[SIGNATURE_FIELD] = stand_in
    return json.dumps(fields).encode(), Sent(value.verdict, fields["MaGiaoDich"], True)


def corpus(w: World) -> list[Case]:
    """Every case sent to the callback door: drawn, then hand-written."""
    cases: list[Case] = []
    for n, ((name, value), as_form) in enumerate(
        draw(st.tuples(field_values(), st.booleans()), N_CALLBACKS, salt=21)
    ):
        body, ctype, sent = build(n, name, value, as_form)
        cases.append(
            Case(
                "payment",
                f"callback:{name}:{value.kind}",
                "POST",
                w.path,
                body,
                {"Content-Type": ctype},
                about=sent,
            )
        )
    for n, value in enumerate(draw(signature_values(), N_SIGNATURES, salt=22), start=N_CALLBACKS):
        body, sent = signed_wrong(n, value)
        cases.append(
            Case(
                "payment",
                f"callback:signature:{value.kind}",
                "POST",
                w.path,
                body,
                {"Content-Type": "application/json"},
                about=sent,
            )
        )
    valid = json.dumps({**callback(10**6), SIGNATURE_FIELD: sign(callback(10**6))}).encode()
    for raw in draw(malformed(valid), N_MALFORMED, salt=23):
        cases.append(
            Case(
                "payment",
                f"malformed:{raw.kind}",
                "POST",
                w.path,
                raw.body,
                {"Content-Type": raw.content_type} if raw.content_type else {},
                about=Sent(UNKNOWN, f"GD{10**6:08d}", True),
            )
        )
    for kind, headers in {
        "header_invalid_utf8": [(b"Content-Type", b"application/json"), (b"X-Note", b"\xff\xfe")],
        "content_type_invalid_utf8": [
            (b"Content-Type", b"application/x-www-form-urlencoded; charset=\xff")
        ],
        "form_invalid_utf8": [(b"Content-Type", b"application/x-www-form-urlencoded")],
    }.items():
        body = b"MaLoi=00&MaGiaoDich=\xff\xfe" if kind == "form_invalid_utf8" else valid
        cases.append(
            Case(
                "payment",
                f"raw:{kind}",
                "POST",
                w.path,
                raw=raw_request("POST", w.path, headers, body),
                about=Sent(UNKNOWN, f"GD{10**6:08d}", True),
            )
        )

    return cases


def judge_callback(taken: set[str]) -> Callable[[Answer], str | None]:
    """A judge of the answers; the final results it took go into `taken`."""

    def judge(a: Answer) -> str | None:
        sent: Sent = a.case.about
        if a.status == 400 and a.case.kind.startswith(("malformed:", "raw:")):
            return None  # refused by the HTTP layer (a header no parser takes)
        if a.status != 200:
            return f"HTTP {a.status}, the protocol answers 200: {a.body[:200]!r}"
        ok = a.json()["MaLoi"] == "00"
        if ok and sent.final:
            taken.add(sent.transaction)
        if sent.verdict == VALID and not ok:
            return f"a valid callback refused: {a.body[:300]!r}"
        if sent.verdict == INVALID and ok:
            return f"an invalid callback taken: {a.body[:300]!r}"
        return None

    return judge


async def test_every_callback_is_answered_and_only_valid_results_reach_the_one_stop(
    world: World,
) -> None:
    w, clock = world, Stopwatch()
    answers = await send_all(w.http, w.base, corpus(w))
    answered(answers, "payment", clock)

    taken: set[str] = set()
    judged(answers, judge_callback(taken))
    assert taken

    def told() -> set[str]:
        return {
            e["payment"]["transaction_id"]
            for e in w.receiver.events
            if e["type"].startswith("payment.")
        }

    await eventually(
        lambda: taken <= told(),
        120,
        lambda: f"results at the one-stop; missing {sorted(taken - told())[:5]}",
    )
    await drained(w.hub)
    assert told() == taken
