"""The bad-input corpus at the ministry push door: `POST /api/v1/ministries/{system}/results`.

Two REST systems push with the civil-status mapping: `civil_status` with a bearer token (its
salted hash configured), `civil_signed` with HMAC-signed requests; each has had its own
dossiers handed off. Drawn pushes mix valid results about the system's own dossiers with
results holding one hostile field (or about another system's dossier, or a code nobody
holds); hostile credentials and signatures around valid batches; bodies without the list;
unknown systems; malformed bodies; hand-written requests no client library sends. Every case
is answered below 500 on a connection that stays whole; every valid result is `accepted`,
every invalid one `quarantined` with its code and reason (or the whole push refused); and
afterwards the one-stop system has received exactly the results the hub accepted, nothing
else reached a queue, nothing was parked.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import strategies as st

from connectors.ministry.auth import hmac_signature
from hub.config import load_config
from hub.runtime import Hub
from hub.tokens import hash_token
from sims.ministry.rest_simulator import CivilStatusSimulator
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.corpus_dossier_values import BAD_CODES, DROP, NOW, days, iso
from tests.integration.corpus_world import (  # noqa: F401  (product_logging: a fixture)
    ANY_JSON,
    INVALID,
    QUOTAS,
    SURROGATE,
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
    poisoned,
    product_logging,
    raw_request,
    send_all,
    text_values,
)
from tests.integration.ministry_world import (
    CIVIL_PROCEDURE,
    HMAC_AUTH,
    HMAC_KEY,
    HMAC_SECRET,
    SUB_TOKEN,
    World,
    base_overrides,
    civil_section,
    code,
)
from tests.support import PORTAL_PASSWORD, PORTAL_USER, eventually

pytestmark = [pytest.mark.slow, pytest.mark.broker, pytest.mark.usefixtures("product_logging")]

TOKEN_SYSTEM, SIGNED_SYSTEM = "civil_status", "civil_signed"
SYSTEMS = (TOKEN_SYSTEM, SIGNED_SYSTEM)
PUSH_TOKEN = "token-of-civil-status-Xy7q2Lm"
SIGNED_PROCEDURE = "1.001193"
OWN = 30  # dossiers handed to each system
N_BATCHES, N_CREDENTIALS, N_SIGNATURES, N_SHAPES, N_SYSTEMS, N_MALFORMED = (
    520,
    120,
    140,
    60,
    40,
    140,
)
JSON_TYPE = {"Content-Type": "application/json"}
MAX_BODY_BYTES = 2_000_000  # http.max_body_bytes (the default)
BREAKS = set("\t\n\r")
STATUSES = ["DANG_GIAI_QUYET", "BO_SUNG", "DA_DANG_KY", "TU_CHOI"]


def path_of(system: str) -> str:
    return f"/api/v1/ministries/{system}/results"


def own(system: str, n: int) -> str:
    """The system's own dossier number `n` (of `OWN`): handed off to it."""
    return code(1 + n % OWN, "261101" if system == TOKEN_SYSTEM else "261102")


def result(system: str, n: int) -> dict[str, Any]:
    """A valid result, number `n`, about one of the system's own dossiers."""
    return {
        "id": f"KQ-{n}",
        "maHoSo": own(system, n),
        "trangThai": "DA_DANG_KY",
        "thoiDiem": iso(NOW - timedelta(hours=2)),
        "canBo": "Trần Thị Bình",
        "coQuan": "Phòng Tư pháp",
        "ghiChu": "Đã đăng ký khai sinh",
        "soDangKy": f"{n}/2026/KS",
    }


# -- hostile values per field ---------------------------------------------------------------------


def values(verdict: str, kind: str, given: list[Any]) -> st.SearchStrategy[Value]:
    return st.builds(lambda v: Value(v, verdict, kind), st.sampled_from(given))  # type: ignore[arg-type]


def required(v: Value) -> Value:
    """A value of a required field: left out (null) or blank, it is missing."""
    if v.value is None or (isinstance(v.value, str) and not v.value.strip()):
        return Value(v.value, INVALID, v.kind)
    return v


def code_values() -> st.SearchStrategy[Value]:
    """`{own}`: the system's own dossier; `{theirs}`: the other system's."""
    return st.one_of(
        values(VALID, "own", ["{own}", " {own} ", "{own}\t"]),
        values(INVALID, "theirs", ["{theirs}"]),
        values(INVALID, "nobodys", [code(9000 + k, "261103") for k in range(5)]),
        values(INVALID, "bad_code", [c.format(n=1) for c in BAD_CODES]),
        values(INVALID, "lower_case", ["{own_lower}"]),
        text_values(100, numbers_coerced=True)
        .map(required)
        .map(
            lambda v: Value(v.value, INVALID, v.kind)  # no such dossier, whatever it holds
        ),
    )


BAD_TIMES = [
    "2022-13-05T08:00:00+07:00",
    "2022-02-30T08:00:00+07:00",
    "2022-10-05T08:00:00+25:00",
    "2022-10-05T25:00:00+07:00",
    "05/10/2022 08:00",
    "yesterday",
    "２０２２-10-05T08:00:00+07:00",
]


def time_values() -> st.SearchStrategy[Value]:
    return st.one_of(
        st.builds(
            lambda d, h: Value(iso(d, h), VALID, "past"), days(-3650, -0.01), st.integers(-12, 14)
        ),
        st.builds(lambda d: Value(iso(d)[:19], VALID, "no_offset"), days(-3650, -1)),
        # Plausible as at every door: not ahead of the clock, not before validation's year.
        st.builds(lambda d: Value(iso(d), INVALID, "future"), days(1, 3650)),
        st.builds(
            lambda y: Value(f"{y:04d}-06-01T00:00:00+07:00", INVALID, "too_old"),
            st.integers(1, 1999),
        ),
        values(INVALID, "extreme", ["0001-01-01T00:00:00+07:00", "9999-12-31T23:59:59-12:00"]),
        values(INVALID, "bad_format", BAD_TIMES),
        values(INVALID, "missing", [None, "", "  "]),
        st.builds(lambda v: Value(v, UNKNOWN, "number"), st.integers(-(2**40), 2**40)),
        WRONG_TYPES,
        st.builds(lambda v: Value(v, INVALID, "surrogate"), poisoned(SURROGATE)),
    )


def status_values() -> st.SearchStrategy[Value]:
    return st.one_of(
        values(VALID, "known", STATUSES + [f" {s} " for s in STATUSES]),
        values(
            INVALID,
            "unknown",
            ["da_dang_ky", "DA_DANG_KYX", "9", "processed", "ĐÃ_ĐĂNG_KÝ", "DA_DANG\u202eKY"],
        ),
        values(INVALID, "missing", [None, "", " "]),
        st.builds(lambda v: Value(v, INVALID, "number"), st.integers(-5, 20)),
        WRONG_TYPES,
        st.builds(lambda v: Value(v, INVALID, "surrogate"), poisoned(SURROGATE)),
    )


def extra_values() -> st.SearchStrategy[Value]:
    """A field the mapping does not read: ignored, whatever it holds; what no store can hold
    (a lone surrogate, a number that is not finite, deep nesting) may be refused."""
    return st.one_of(
        st.builds(lambda v: Value(v, VALID, "any_json"), ANY_JSON),
        st.builds(lambda v: Value(v, UNKNOWN, "surrogate"), poisoned(SURROGATE)),
        values(UNKNOWN, "not_finite", [float("nan"), float("inf"), float("-inf")]),
        st.builds(lambda v: Value(v, UNKNOWN, "deep"), st.integers(2, 900).map(_nest)),
    )


def _nest(depth: int) -> Any:
    value: Any = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@dataclass(frozen=True)
class Mutation:
    field: str
    value: Value

    @property
    def kind(self) -> str:
        return f"{self.field}:{self.value.kind}"


def mutations() -> st.SearchStrategy[Mutation]:
    """One hostile field of one result."""
    fields = [
        ("id", text_values(150, numbers_coerced=True).map(required)),
        ("maHoSo", code_values()),
        ("trangThai", status_values()),
        ("thoiDiem", time_values()),
        ("canBo", text_values(500, numbers_coerced=True)),
        ("coQuan", text_values(4000, numbers_coerced=True)),
        ("ghiChu", text_values(4000, numbers_coerced=True)),
        ("soDangKy", text_values(500, numbers_coerced=True)),
        ("extra", extra_values()),
        (
            "item",
            st.builds(
                lambda v: Value(v, INVALID, "not_an_object"),
                st.none() | st.integers() | st.text(max_size=20) | st.lists(st.integers()),
            ),
        ),
    ]
    return st.one_of(*(st.builds(Mutation, st.just(name), s) for name, s in fields))


def strippable(kind: str, v: Any) -> bool:
    """A control character at an edge of a value the mapping strips is gone: the value goes."""
    return kind == "control" and isinstance(v, str) and v.strip().isprintable()


def mutate(system: str, n: int, m: Mutation | None) -> tuple[Any, str]:
    """Result number `n` with its mutation, and its verdict."""
    item = result(system, n)
    if m is None:
        return item, VALID
    v, verdict = m.value.value, m.value.verdict
    if m.field == "item":
        return v, verdict
    other = TOKEN_SYSTEM if system == SIGNED_SYSTEM else SIGNED_SYSTEM
    if isinstance(v, str):
        v = (
            v.replace("{own_lower}", own(system, n).lower())
            .replace("{own}", own(system, n))
            .replace("{theirs}", own(other, n))
        )
    if m.field == "id" and verdict == VALID and isinstance(v, str | int):
        prefix = f"{n}:"  # ids stay unique: a repeated id is a duplicate, or a conflict
        v = prefix + str(v)[: max(0, 150 - len(prefix))]
    if strippable(m.value.kind, v):
        verdict = VALID
    if m.field == "id" and isinstance(v, str) and (not v.strip() or BREAKS & set(v.strip())):
        verdict = INVALID  # blank, or not on one line (an id travels in HTTP headers)
    if m.field == "extra":
        item["ghiChuKhac"] = v
    elif v is DROP:
        item.pop(m.field, None)
    else:
        item[m.field] = v
    return item, verdict


# -- the world ------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the hub said it did with the results, filled in while judging."""

    accepted: set[str] = field(default_factory=set)  # `<system>:<result id>`
    quarantined: int = 0


@dataclass
class Pushed:
    """What a push case carried: the system, each item's verdict (None: the push as a whole
    must be refused), and whether the push as a whole may be taken."""

    system: str
    verdicts: list[str]
    whole: str = VALID  # the credential, the signature, the body's shape


@pytest.fixture
async def world(tmp_path: Path, rabbit_url: str, broker_prefix: str) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        portal = await stack.enter_async_context(
            DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
        )
        one_stop = await stack.enter_async_context(WebhookReceiver(token=SUB_TOKEN))
        sim = await stack.enter_async_context(CivilStatusSimulator(auth="bearer"))
        overrides = base_overrides(tmp_path, rabbit_url, broker_prefix, portal, one_stop)
        # What the door reads, not how often it may be called (test_rate_limits.py does).
        unlimited = {"per_address_per_s": 0, "per_source_per_s": 0}
        bearer = {"kind": "bearer", "token": "sim-bearer-token"}
        overrides["ministries"] = {
            TOKEN_SYSTEM: civil_section(
                sim.base_url,
                bearer,
                push={"token_sha256": hash_token(PUSH_TOKEN), "limits": unlimited},
            ),
            SIGNED_SYSTEM: civil_section(
                sim.base_url,
                bearer,
                procedures=[SIGNED_PROCEDURE],
                push={"hmac": HMAC_AUTH, "limits": unlimited},
            ),
        }
        hub = await stack.enter_async_context(Hub(load_config(None, overrides)))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        w = World(hub, portal, one_stop, http)
        mine = [own(TOKEN_SYSTEM, n) for n in range(OWN)]
        signed = [own(SIGNED_SYSTEM, n) for n in range(OWN)]
        await w.dossiers(mine, CIVIL_PROCEDURE)
        await w.dossiers(signed, SIGNED_PROCEDURE)
        await eventually(
            lambda: set(mine + signed) <= set(sim.accepted), 60, "every dossier handed off"
        )
        yield w


# -- the cases ------------------------------------------------------------------------------------


def signed(body: bytes, path: str, **changes: Any) -> dict[str, str]:
    """The HMAC headers of a push (the timestamp now), with `changes` to them."""
    stamp = str(changes.pop("stamp", int(time.time())))
    signature = hmac_signature(HMAC_SECRET, "POST", path, stamp, body)
    headers = {"X-Api-Key": HMAC_KEY, "X-Timestamp": stamp, "X-Signature": signature}
    return {**JSON_TYPE, **headers, **changes}


def credential(system: str, body: bytes) -> dict[str, str]:
    if system == TOKEN_SYSTEM:
        return {**JSON_TYPE, "Authorization": f"Bearer {PUSH_TOKEN}"}
    return signed(body, path_of(system))


def batch_cases(counter: list[int]) -> list[Case]:
    plans = draw(
        st.tuples(
            st.sampled_from(SYSTEMS), st.lists(st.none() | mutations(), min_size=1, max_size=4)
        ),
        N_BATCHES,
        salt=31,
    )
    cases = []
    for system, plan in plans:
        items, verdicts = [], []
        for m in plan:
            counter[0] += 1
            item, verdict = mutate(system, counter[0], m)
            items.append(item)
            verdicts.append(verdict)
        body = json.dumps({"ketQua": items}).encode()
        kind = "results:" + "+".join(m.kind if m else "valid" for m in plan)
        # Nested deeper than a message is (64 levels), the whole body is refused.
        whole = UNKNOWN if max(depth(i) for i in items) >= 60 else VALID
        cases.append(
            Case(
                "ministry",
                kind,
                "POST",
                path_of(system),
                body,
                credential(system, body),
                about=Pushed(system, verdicts, whole),
            )
        )
    return cases


def depth(value: Any) -> int:
    """Levels of objects and lists in `value` (without recursion: some are 900 deep)."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        v, level = todo.pop()
        inner = v.values() if isinstance(v, dict) else v if isinstance(v, list) else None
        if inner is not None:
            deepest = max(deepest, level + 1)
            todo.extend((x, level + 1) for x in inner)
    return deepest


def token_cases(counter: list[int]) -> list[Case]:
    """The token system's valid push under hostile credentials."""
    wrong = ["", "Bearer", "Bearer ", f"Basic {PUSH_TOKEN}", PUSH_TOKEN, f"Token {PUSH_TOKEN}"]
    headers = st.one_of(
        values(VALID, "right", [f"Bearer {PUSH_TOKEN}", f"bearer {PUSH_TOKEN}"]),
        values(VALID, "spaced", [f"Bearer   {PUSH_TOKEN}", f"BEARER {PUSH_TOKEN}"]),
        values(INVALID, "malformed", wrong),
        values(INVALID, "near", [f"Bearer {PUSH_TOKEN[:-1]}", f"Bearer {PUSH_TOKEN}x"]),
        values(INVALID, "case", [f"Bearer {PUSH_TOKEN.upper()}"]),
        values(INVALID, "missing", [None]),
        text_values(2000, numbers_coerced=False).map(
            lambda v: Value(f"Bearer {v.value}", INVALID, v.kind)
        ),
    )
    cases = []
    for value in draw(headers, N_CREDENTIALS, salt=32):
        counter[0] += 1
        body = json.dumps({"ketQua": [result(TOKEN_SYSTEM, counter[0])]}).encode()
        sent = dict(JSON_TYPE)
        if value.value is not None:
            sent["Authorization"] = value.value
        cases.append(
            Case(
                "ministry",
                f"token:{value.kind}",
                "POST",
                path_of(TOKEN_SYSTEM),
                body,
                sent,
                about=Pushed(TOKEN_SYSTEM, [VALID], value.verdict),
            )
        )
    return cases


SIGNATURE_CHANGES: list[tuple[str, str, dict[str, Any]]] = [
    (VALID, "right", {}),
    (VALID, "upper_case", {"upper": True}),
    (VALID, "padded", {"pad": True}),
    (VALID, "skew_within", {"stamp_delta": -250}),
    (VALID, "skew_ahead_within", {"stamp_delta": 250}),
    (INVALID, "stale", {"stamp_delta": -301}),
    (INVALID, "stale_far", {"stamp_delta": -(10**9)}),
    (INVALID, "ahead", {"stamp_delta": 400}),
    (INVALID, "no_key", {"X-Api-Key": None}),
    (INVALID, "no_stamp", {"X-Timestamp": None}),
    (INVALID, "no_signature", {"X-Signature": None}),
    (INVALID, "other_key", {"X-Api-Key": "hub-key-2"}),
    (INVALID, "key_case", {"X-Api-Key": HMAC_KEY.upper()}),
    (INVALID, "empty_signature", {"X-Signature": ""}),
    (INVALID, "garbage_signature", {"X-Signature": "z" * 64}),
    (INVALID, "short_signature", {"truncate": 63}),
    (INVALID, "other_body", {"sign_body": b"{}"}),
    (INVALID, "other_path", {"sign_path": "/api/v1/ministries/civil_status/results"}),
    (INVALID, "other_method", {"sign_method": "PUT"}),
    (INVALID, "other_secret", {"sign_secret": "not-the-secret"}),
    (INVALID, "stamp_float", {"stamp": "1700000000.5"}),
    (INVALID, "stamp_text", {"stamp": "yesterday"}),
    (INVALID, "stamp_exponent", {"stamp": "1.7e9"}),
    (INVALID, "stamp_negative", {"stamp": "-1"}),
    (INVALID, "stamp_hex", {"stamp": "0x65a0bc00"}),
    (INVALID, "stamp_arabic_digits", {"stamp": "١٧٠٠٠٠٠٠٠٠"}),
    (INVALID, "stamp_huge", {"stamp": "9" * 400}),
    (INVALID, "stamp_huger", {"stamp": "9" * 5000}),
    (INVALID, "stamp_minus_huge", {"stamp": "-" + "9" * 400}),
    (INVALID, "stamp_zero", {"stamp": "0"}),
]


def signature_cases(counter: list[int]) -> list[Case]:
    """The signed system's valid push under hostile signatures."""
    path = path_of(SIGNED_SYSTEM)
    cases = []
    # Each drawn with a number beside it: hypothesis draws a small set's members once each.
    drawn = draw(st.tuples(st.sampled_from(SIGNATURE_CHANGES), st.integers()), N_SIGNATURES, 33)
    for (verdict, kind, change), _ in drawn:
        counter[0] += 1
        body = json.dumps({"ketQua": [result(SIGNED_SYSTEM, counter[0])]}).encode()
        change = dict(change)
        stamp = change.pop("stamp", None) or str(int(time.time()) + change.pop("stamp_delta", 0))
        sign_body = change.pop("sign_body", body)
        sign_path = change.pop("sign_path", path)
        method = change.pop("sign_method", "POST")
        secret = change.pop("sign_secret", HMAC_SECRET)
        signature = hmac_signature(secret, method, sign_path, stamp, sign_body)
        if change.pop("upper", False):
            signature = signature.upper()
        if change.pop("pad", False):
            signature = f" {signature} "
        if (cut := change.pop("truncate", None)) is not None:
            signature = signature[:cut]
        headers = {
            **JSON_TYPE,
            "X-Api-Key": HMAC_KEY,
            "X-Timestamp": stamp,
            "X-Signature": signature,
            **change,
        }
        sent = {k: v for k, v in headers.items() if v is not None}
        cases.append(
            Case(
                "ministry",
                f"signature:{kind}",
                "POST",
                path,
                body,
                sent,
                about=Pushed(SIGNED_SYSTEM, [VALID], verdict),
            )
        )
    return cases


def shape_cases(counter: list[int]) -> list[Case]:
    """Authenticated pushes whose body holds no list where the mapping says."""
    shapes = st.one_of(
        WRONG_TYPES.filter(lambda v: v.kind != "list").map(
            lambda v: Value({"ketQua": v.value}, INVALID, f"not_a_list:{v.kind}")
        ),
        st.builds(
            lambda v: Value({"ketQua": v}, INVALID, "not_a_list"),
            st.none() | st.integers() | st.text(max_size=10),
        ),
        st.builds(lambda v: Value(v, INVALID, "no_list"), st.lists(st.integers(), max_size=3)),
        st.builds(lambda v: Value({"duLieu": [v]}, INVALID, "elsewhere"), st.just("x")),
        st.just(Value({"ketQua": []}, VALID, "empty")),
    )
    cases = []
    for system, value in draw(st.tuples(st.sampled_from(SYSTEMS), shapes), N_SHAPES, salt=34):
        body = json.dumps(value.value).encode()
        verdicts: list[str] = [] if value.verdict == VALID else [INVALID]
        if "deep" in value.kind:  # a list deep down: then its one item is refused
            value = Value(value.value, UNKNOWN, value.kind)
        cases.append(
            Case(
                "ministry",
                f"shape:{value.kind}",
                "POST",
                path_of(system),
                body,
                credential(system, body),
                about=Pushed(system, verdicts, value.verdict),
            )
        )
    counter[0] += 1
    too_many = [result(TOKEN_SYSTEM, counter[0])] * 1001
    body = json.dumps({"ketQua": too_many}).encode()
    cases.append(
        Case(
            "ministry",
            "shape:too_many",
            "POST",
            path_of(TOKEN_SYSTEM),
            body,
            credential(TOKEN_SYSTEM, body),
            about=Pushed(TOKEN_SYSTEM, [INVALID], INVALID),
        )
    )
    return cases


def system_cases() -> list[Case]:
    """Pushes to systems that do not push here: 404 before anything is read."""
    names = st.one_of(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-.", min_size=1, max_size=40),
        st.sampled_from(
            [
                "CIVIL_STATUS",
                "civil_status ",
                "..",
                "%2e%2e",
                "civil_status%00",
                "hộ_tịch",
                "%ED%A0%80",
                "business_registration",
                "x" * 5000,
            ]
        ),
    )
    cases = []
    body = json.dumps({"ketQua": [result(TOKEN_SYSTEM, 10**7)]}).encode()
    for name in draw(names, N_SYSTEMS, salt=35):
        if name in SYSTEMS:
            continue
        path = f"/api/v1/ministries/{name}/results"
        cases.append(
            Case(
                "ministry",
                "system:unknown",
                "POST",
                path,
                body,
                {**JSON_TYPE, "Authorization": f"Bearer {PUSH_TOKEN}"},
                about=Pushed(TOKEN_SYSTEM, [INVALID], INVALID),
            )
        )
    return cases


def malformed_cases() -> list[Case]:
    """Malformed bodies, authenticated (so the body is what is judged); a valid one sent
    under another content type may be taken (the door reads JSON whatever the type)."""
    cases = []
    for system, salt in ((TOKEN_SYSTEM, 36), (SIGNED_SYSTEM, 37)):
        valid = json.dumps({"ketQua": [result(system, 10**6 + salt)]}).encode()
        for raw in draw(malformed(valid), N_MALFORMED // 2, salt=salt):
            headers = credential(system, raw.body)
            if raw.content_type:
                headers["Content-Type"] = raw.content_type
            else:
                headers.pop("Content-Type")
            cases.append(
                Case(
                    "ministry",
                    f"malformed:{raw.kind}",
                    "POST",
                    path_of(system),
                    raw.body,
                    headers,
                    about=Pushed(system, [UNKNOWN], UNKNOWN),
                )
            )
    return cases


def hostile_requests() -> list[Case]:
    """Hand-written: requests no client library sends."""
    body = json.dumps({"ketQua": [result(TOKEN_SYSTEM, 10**6 + 99)]}).encode()
    path, signed_path = path_of(TOKEN_SYSTEM), path_of(SIGNED_SYSTEM)
    json_type = (b"Content-Type", b"application/json")
    auth = (b"Authorization", f"Bearer {PUSH_TOKEN}".encode())
    stamp = str(int(time.time())).encode()
    signature = hmac_signature(HMAC_SECRET, "POST", signed_path, stamp.decode(), body).encode()
    hmac_headers = [(b"X-Api-Key", HMAC_KEY.encode()), (b"X-Timestamp", stamp)]
    raws: dict[str, tuple[str, list[tuple[bytes, bytes]], str]] = {
        "token_invalid_utf8": (path, [json_type, (b"Authorization", b"Bearer \xff\xfe")], INVALID),
        "token_surrogate_bytes": (
            path,
            [json_type, (b"Authorization", b"Bearer \xed\xa0\x80" + PUSH_TOKEN.encode())],
            INVALID,
        ),
        "token_nul": (path, [json_type, (b"Authorization", b"Bearer a\x00b")], INVALID),
        "header_invalid_utf8": (path, [json_type, auth, (b"X-Note", b"\xff\xfe\xc3(")], UNKNOWN),
        "content_type_invalid_utf8": (
            path,
            [(b"Content-Type", b"application/json; charset=\xff"), auth],
            UNKNOWN,
        ),
        "key_invalid_utf8": (
            signed_path,
            [
                json_type,
                (b"X-Api-Key", b"\xff" + HMAC_KEY.encode()),
                (b"X-Timestamp", stamp),
                (b"X-Signature", signature),
            ],
            INVALID,
        ),
        "signature_invalid_utf8": (
            signed_path,
            [json_type, *hmac_headers, (b"X-Signature", signature[:-2] + b"\xc3\xa9")],
            INVALID,
        ),
        "stamp_invalid_utf8": (
            signed_path,
            [
                json_type,
                (b"X-Api-Key", HMAC_KEY.encode()),
                (b"X-Timestamp", b"\xff1"),
                (b"X-Signature", signature),
            ],
            INVALID,
        ),
        "many_headers": (
            path,
            [json_type, auth, *((b"X-H%d" % i, b"v") for i in range(90))],
            UNKNOWN,
        ),
        "long_header": (path, [json_type, auth, (b"X-Long", b"a" * 7000)], UNKNOWN),
    }
    cases = []
    for kind, (target, headers, verdict) in raws.items():  # signed right: one header wrong
        system = SIGNED_SYSTEM if target == signed_path else TOKEN_SYSTEM
        cases.append(
            Case(
                "ministry",
                f"raw:{kind}",
                "POST",
                target,
                raw=raw_request("POST", target, headers, body),
                about=Pushed(system, [UNKNOWN], verdict),
            )
        )
    cases.append(
        Case(
            "ministry",
            "raw:path_invalid_utf8",
            "POST",
            path,
            raw=raw_request("POST", path.encode() + b"?\xff=\xfe", [json_type, auth], body),
            about=Pushed(TOKEN_SYSTEM, [UNKNOWN], UNKNOWN),
        )
    )
    cases.append(
        Case(
            "ministry",
            "raw:system_invalid_utf8",
            "POST",
            path,
            raw=raw_request(
                "POST", b"/api/v1/ministries/civil\xff/results", [json_type, auth], body
            ),
            about=Pushed(TOKEN_SYSTEM, [INVALID], INVALID),
        )
    )
    for kind, raw in {
        "chunked_garbage": b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        "both_lengths": b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n",
    }.items():
        cases.append(
            Case(
                "ministry",
                f"raw:{kind}",
                "POST",
                path,
                raw=b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Authorization: Bearer " + PUSH_TOKEN.encode() + b"\r\n" + raw,
                about=Pushed(TOKEN_SYSTEM, [INVALID], INVALID),
            )
        )
    return cases


# -- judging --------------------------------------------------------------------------------------


def judge(ledger: Ledger) -> Callable[[Answer], str | None]:
    """A judge of the answers; what the hub took and quarantined goes into `ledger`."""

    def judged_one(a: Answer) -> str | None:
        pushed: Pushed = a.case.about
        if a.status is None or a.status >= 500:
            return f"HTTP {a.status}"
        if a.status != 200:
            return refusal_wrong(a, pushed)
        if pushed.whole == INVALID:
            return f"a push taken though it must be refused: {a.body[:300]!r}"
        items = a.json()["items"]
        if len(items) != len(pushed.verdicts) and pushed.whole != UNKNOWN:
            return f"{len(items)} outcomes for {len(pushed.verdicts)} items"
        for index, item in enumerate(items):
            verdict = pushed.verdicts[index] if index < len(pushed.verdicts) else UNKNOWN
            if (why := outcome_wrong(ledger, pushed.system, index, item, verdict)) is not None:
                return why
        return None

    return judged_one


def refusal_wrong(a: Answer, pushed: Pushed) -> str | None:
    """What is wrong with a push refused as a whole, or None."""
    may_be_refused = pushed.whole == INVALID or UNKNOWN in (pushed.whole, *pushed.verdicts)
    too_large = a.status == 413 and len(a.case.body) > MAX_BODY_BYTES
    if not (may_be_refused or too_large):
        return f"a push refused as a whole: HTTP {a.status} {a.body[:300]!r}"
    if a.body[:1] == b"{" and not (a.json().get("error") and a.json().get("message")):
        return f"a refusal without its error and message: {a.body[:300]!r}"
    return None  # not JSON: refused by the HTTP layer (a header no parser takes)


def outcome_wrong(
    ledger: Ledger, system: str, index: int, item: dict[str, Any], verdict: str
) -> str | None:
    """What is wrong with one item's outcome, or None; counted in `ledger`."""
    if item["index"] != index:
        return f"outcome {index} says index {item['index']}"
    if item["verdict"] == "accepted":
        ledger.accepted.add(f"{system}:{item['result_id']}")
        return f"an invalid result accepted: {item}" if verdict == INVALID else None
    if item["verdict"] == "quarantined":
        ledger.quarantined += 1
        if verdict == VALID:
            return f"a valid result quarantined: {item}"
        if not item.get("code") or not item.get("reason"):
            return f"quarantined without a code and a reason: {item}"
        return None
    if item["verdict"] == "duplicate" and verdict == UNKNOWN:
        return None  # the same malformed-but-valid body taken twice
    return f"unexpected outcome: {item}"


async def test_every_push_is_answered_and_only_valid_results_reach_the_one_stop(
    world: World,
) -> None:
    w, ledger, clock, counter = world, Ledger(), Stopwatch(), [0]
    cases = [
        *batch_cases(counter),
        *token_cases(counter),
        *signature_cases(counter),
        *shape_cases(counter),
        *system_cases(),
        *malformed_cases(),
        *hostile_requests(),
    ]
    print(f"drawn in {clock}", flush=True)
    answers = await send_all(w.http, w.base, cases)
    answered(answers, "ministry", clock)

    judged(answers, judge(ledger))
    assert ledger.accepted, "no valid result was drawn"
    assert ledger.quarantined, "no invalid result was drawn"

    def told() -> set[str]:
        return {e["event_id"] for e in w.results_at_one_stop()}

    await eventually(
        lambda: ledger.accepted <= told(),
        120,
        lambda: f"results at the one-stop; missing {sorted(ledger.accepted - told())[:5]}",
    )
    await drained(w.hub)
    assert told() == ledger.accepted
    assert w.one_stop.duplicates() == {}
    # Every quarantined result is where operators see it, with its reason.
    status, body = await w.call("GET", "/api/v1/ministries/quarantine?limit=500")
    assert status == 200, body
    assert body["quarantine"]
    assert all(q["reason"] for q in body["quarantine"])
