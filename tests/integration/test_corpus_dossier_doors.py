"""The bad-input corpus at the dossier doors: the DVCQG-compatible facade (`/dvcqg`: log-in,
`DongBoHoSoMC`, `CapNhatTienDoHoSoMC`, `TraCuuHoSo`) and the canonical REST API
(`POST /api/v1/dossier-events`, `GET /api/v1/portal/dossier-changes`), one hub for both.

Thousands of drawn cases (corpus_world, corpus_dossier_values): batches mixing valid items and
items with one hostile field, hostile envelopes around a valid item, hostile log-ins and
look-ups, malformed bodies, and hand-written requests no client library sends. Every case is
answered below 500 on a connection that stays whole; every valid item is accepted and every
invalid one refused naming its field; and afterwards DVCQG holds exactly the dossiers and steps
the hub said it accepted: nothing refused reached a queue, nothing was parked.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import strategies as st

from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from tests.integration.corpus_dossier_values import (
    DROP,
    NOW,
    Mutation,
    api_event_mutations,
    code_values,
    dossier_code,
    iso,
    record_mutations,
    step_mutations,
    wire,
)
from tests.integration.corpus_world import (  # noqa: F401  (product_logging: a fixture)
    INVALID,
    QUOTAS,
    VALID,
    WRONG_TYPES,
    Answer,
    Case,
    Raw,
    Stopwatch,
    Value,
    answered,
    assert_answered,
    by_kind,
    drained,
    draw,
    judged,
    malformed,
    product_logging,
    raw_request,
    send_all,
    text_values,
)
from tests.support import (
    ONESTOP_PASSWORD,
    ONESTOP_TOKEN,
    ONESTOP_USER,
    PORTAL_PASSWORD,
    PORTAL_USER,
    READER_TOKEN,
    UNIT,
    eventually,
    hub_overrides,
)

pytestmark = [pytest.mark.slow, pytest.mark.broker, pytest.mark.usefixtures("product_logging")]

MAX_BODY_BYTES = 2_000_000  # http.max_body_bytes (the default)
MAX_ITEMS = 50  # validation.max_items_per_batch of this hub: an oversized batch stays cheap
FACADE = "/dvcqg"
EVENTS = "/api/v1/dossier-events"
FEED = "/api/v1/portal/dossier-changes"
JSON_HEADERS = {"Content-Type": "application/json"}
AUTH = {"Authorization": f"Bearer {ONESTOP_TOKEN}", **JSON_HEADERS}
SEED_DAY = "240101"  # the dossiers the steps are about
N_RECORD_BATCHES, N_STEP_BATCHES, N_ENVELOPES, N_LOOKUPS = 1700, 800, 500, 300
N_LOGINS_CHEAP, N_LOGINS_HASHED, N_FACADE_MALFORMED = 300, 25, 500
N_API_BATCHES, N_API_ENVELOPES, N_API_MALFORMED, N_FEED = 2500, 400, 350, 300
SEEDS = 2000  # dossiers the facade's steps are about (one each)


def seeded(n: int) -> str:
    return f"{UNIT}-{SEED_DAY}-{n:06d}"


@dataclass
class Item:
    """One item of a batch: what it is expected to become, and the key it arrives under."""

    mutation: Mutation | None
    key: str  # the dossier code it is sent under (what DVCQG would hold)
    step: bool = False  # a processing step (of a seeded dossier), not a record

    @property
    def verdict(self) -> str:
        return self.mutation.value.verdict if self.mutation else VALID

    @property
    def label(self) -> str:
        return self.mutation.kind if self.mutation else "valid"


@dataclass
class Ledger:
    """What the hub said it accepted and refused, by dossier code; filled in while judging."""

    records: set[str] = field(default_factory=set)
    steps: set[str] = field(default_factory=set)
    refused_records: set[str] = field(default_factory=set)
    refused_steps: set[str] = field(default_factory=set)


def mutate(base: dict[str, Any], m: Mutation | None, n: int) -> dict[str, Any]:
    item: dict[str, Any] = json.loads(json.dumps(base))
    if m is None:
        return item
    target, name = item, m.field
    head, _, rest = m.field.partition(".")
    if rest and head in ("record", "step"):
        if head == "step":
            item["kind"] = "step"
            item.pop("record", None)
        target, name = item.setdefault(head, {}), rest
    value = m.value.value
    if isinstance(value, str) and "{n" in value:
        value = value.format(n=n)
    if name == "event_id" and m.value.verdict == VALID and isinstance(value, str):
        prefix = f"{n}:"  # ids stay unique: a repeated id would be a duplicate
        value = prefix + value[: max(0, 200 - len(prefix))]
    if value == DROP:
        target.pop(name, None)
    else:
        target[name] = value
    return item


def record(n: int) -> dict[str, Any]:
    return {
        "MaHoSo": dossier_code(n),
        "TrangThaiHoSo": "2",
        "NgayTiepNhan": wire(NOW - timedelta(days=30)),
        "ChuHoSo": "Trần Thị Bình",
        "MaTTHC": "1.000494",
        "DanhSachLePhi": [{"TenPhiLePhi": "Lệ phí", "Gia": "150000"}],
    }


def step(n: int) -> dict[str, Any]:
    return {
        "MaHoSo": seeded(n),
        "TrangThai": "4",
        "ThoiDiemXuLy": wire(NOW - timedelta(days=2)),
        "NoiDungXuLy": "Chuyển phòng chuyên môn",
        "NguoiXuLy": "Lê Văn Cường",
    }


def event(n: int) -> dict[str, Any]:
    at = iso(NOW - timedelta(days=30))
    return {
        "event_id": f"ev-{n}",
        "dossier_code": dossier_code(n),
        "kind": "record",
        "occurred_at": at,
        "status": "accepted",
        "record": {
            "procedure_code": "1.000494",
            "owner_name": "Lê Văn Cường",
            "received_at": at,
            "fees": [{"name": "Lệ phí", "amount_vnd": 150000}],
        },
    }


def key_of(item: Any, code_field: str) -> str:
    code = item.get(code_field) if isinstance(item, dict) else None
    return code if isinstance(code, str) else ""


# -- the world ------------------------------------------------------------------------------------


@dataclass
class World:
    hub: Hub
    sim: DvcqgSimulator
    http: aiohttp.ClientSession
    session: str = ""
    numbers: int = 0
    steps: int = 0  # seeded dossiers taken by steps

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.hub.port}"

    def number(self) -> int:
        self.numbers += 1
        return self.numbers


@pytest.fixture
async def world(tmp_path: Path, rabbit_url: str, broker_prefix: str) -> AsyncIterator[World]:
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim:
        tree = hub_overrides(tmp_path, rabbit_url, broker_prefix, sim.url)
        tree["validation"] = {"max_items_per_batch": MAX_ITEMS}
        # The corpus tests what each door reads, not how often it may be called (that is
        # test_rate_limits.py): thousands of cases from one address would meet the limits.
        unlimited = {"per_address_per_s": 0, "per_source_per_s": 0}
        tree.setdefault("facade", {})["limits"] = unlimited
        tree["http"]["api_limits"] = unlimited
        async with Hub(load_config(None, tree)) as hub, aiohttp.ClientSession() as http:
            w = World(hub, sim, http)
            async with http.post(
                w.base + FACADE, json={"username": ONESTOP_USER, "password": ONESTOP_PASSWORD}
            ) as r:
                w.session = (await r.json())["session"]
            yield w


async def seed_dossiers(w: World, count: int) -> None:
    """`count` dossiers for the steps to be about, received long ago, held by DVCQG."""
    at = iso(NOW - timedelta(days=3700))
    events = [
        {**event(0), "event_id": f"seed-{n}", "dossier_code": seeded(n), "occurred_at": at,
         "record": {"owner_name": "Phạm Thị Dung", "received_at": at}}
        for n in range(1, count + 1)
    ]  # fmt: skip
    for start in range(0, count, MAX_ITEMS):
        async with w.http.post(
            w.base + EVENTS, json={"events": events[start : start + MAX_ITEMS]}, headers=AUTH
        ) as r:
            assert r.status == 200
            assert (await r.json())["accepted"] == len(events[start : start + MAX_ITEMS])
    await eventually(lambda: len(w.sim.dossiers) >= count, 120, f"{count} seeded dossiers")


# -- the facade -----------------------------------------------------------------------------------


def facade_body(w: World, service: str, data: Any, **extra: Any) -> bytes:
    body = {"service": service, "session": w.session, "madonvi": UNIT, "isUpdating": "False"}
    return json.dumps({**body, "data": data, **extra}).encode()


def facade_batches(w: World, mutations: list[list[Mutation | None]], service: str) -> list[Case]:
    cases = []
    for plan in mutations:
        items: list[Item] = []
        data = []
        for m in plan:
            n = w.number()
            base = record(n) if service == "DongBoHoSoMC" else step(n)
            data.append(mutate(base, m, n))
            items.append(Item(m, key_of(data[-1], "MaHoSo"), service != "DongBoHoSoMC"))
        kind = service + ":" + "+".join(i.label for i in items)
        body = facade_body(w, service, data)
        cases.append(Case("facade", kind, "POST", FACADE, body, JSON_HEADERS, about=items))
    return cases


def judge_batch(
    ledger: Ledger, outcome: Callable[[Any], tuple[bool, Any]]
) -> Callable[[Answer], str | None]:
    """A judge of batch answers: `outcome(entry)` is (accepted?, the field a refusal names)."""

    def judge(a: Answer) -> str | None:
        items: list[Item] = a.case.about
        if a.status == 413 and len(a.case.body) > MAX_BODY_BYTES:
            for i in items:  # too large as a whole: all refused
                (ledger.refused_steps if i.step else ledger.refused_records).add(i.key)
            return None
        if a.status != 200:
            return f"HTTP {a.status}: {a.body[:300]!r}"
        reply = a.json()
        entries = reply.get("result") or reply.get("results") or []
        if len(entries) != len(items):
            return f"{len(entries)} results for {len(items)} items"
        for item, entry in zip(items, entries, strict=True):
            ok, named = outcome(entry)
            if item.step:
                (ledger.steps if ok else ledger.refused_steps).add(item.key)
            else:
                (ledger.records if ok else ledger.refused_records).add(item.key)
            if (why := wrong_outcome(item, ok, named)) is not None:
                return f"{why}: {entry}"
        return None

    return judge


def wrong_outcome(item: Item, ok: bool, named: object) -> str | None:
    if item.verdict == VALID and not ok:
        return f"valid item {item.label} refused"
    if item.verdict == INVALID and ok:
        return f"invalid item {item.label} accepted"
    want = item.mutation.refused_as if item.mutation else None
    if item.verdict == INVALID and want is not None and not names(named, want):
        return f"{item.label} refused naming {named!r}, not {want!r}"
    return None


def names(named: object, field: str) -> bool:
    """Whether a refusal naming `named` names `field`: the same path down to the first list
    index (`fees.0` and `fees.0.amount_vnd` both name `fees.0.amount_vnd`)."""
    return isinstance(named, str) and _root(named) == _root(field)


def _root(path: str) -> str:
    parts = path.split(".")
    digits = [i for i, p in enumerate(parts) if p.isdigit()]
    return ".".join(parts[: digits[0]] if digits else parts)


def facade_outcome(entry: Any) -> tuple[bool, Any]:
    return entry["error_code"] == "00", entry.get("field")


def envelope_cases(w: World) -> list[Case]:
    """A valid item in a request that is wrong as a whole: refused, and the item with it."""
    fields = st.one_of(
        st.tuples(st.just("service"), text_values(50, numbers_coerced=True) | WRONG_TYPES),
        st.tuples(st.just("session"), text_values(300, numbers_coerced=True) | WRONG_TYPES),
        st.tuples(st.just("madonvi"), text_values(50, numbers_coerced=True) | WRONG_TYPES),
        st.tuples(st.just("isUpdating"), text_values(50, numbers_coerced=True)),
        st.tuples(st.just("data"), WRONG_TYPES.filter(lambda v: v.kind != "list")),
        st.tuples(st.just("data"), st.sampled_from([Value([], INVALID, "empty")])),
    )
    cases = []
    for name, value in draw(fields, N_ENVELOPES, salt=3):
        n = w.number()
        data = [record(n)]
        body = json.loads(facade_body(w, "DongBoHoSoMC", data))
        if name == "data":
            body["data"] = value.value
        elif value.value is None:
            body.pop(name)
        else:
            body[name] = value.value
        if name == "isUpdating" and name not in body:
            continue  # left out, it means "False": a valid call
        kind = f"envelope:{name}:{value.kind}"
        raw = json.dumps(body).encode()
        cases.append(Case("facade", kind, "POST", FACADE, raw, JSON_HEADERS, about=dossier_code(n)))
    too_many = facade_body(w, "DongBoHoSoMC", [record(w.number() + 10**5)] * (MAX_ITEMS + 1))
    cases.append(
        Case("facade", "envelope:too_many", "POST", FACADE, too_many, JSON_HEADERS, about="")
    )
    return cases


def login_cases() -> list[Case]:
    """Log-ins: hostile names and passwords. Most passwords are no string, so they cost no
    password check (argon2 takes a quarter second of a core here); a few are."""
    cheap = st.tuples(
        text_values(64, numbers_coerced=False) | WRONG_TYPES,
        WRONG_TYPES | st.builds(lambda v: Value(v, INVALID, "number"), st.integers() | st.none()),
    )
    hashed = st.tuples(
        st.sampled_from([Value(ONESTOP_USER, VALID, "known"), Value("nobody", INVALID, "unknown")]),
        text_values(1000, numbers_coerced=False).filter(lambda v: isinstance(v.value, str)),
    )
    cases: list[Case] = []
    for salt, n, strategy in ((5, N_LOGINS_CHEAP, cheap), (6, N_LOGINS_HASHED, hashed)):
        for user, password in draw(strategy, n, salt=salt):
            body = {"username": user.value, "password": password.value}
            if salt == 5 and len(cases) % 3 == 0:
                body["service"] = "DangNhap"
            kind = f"login:{user.kind}:{password.kind}"
            cases.append(
                Case("facade", kind, "POST", FACADE, json.dumps(body).encode(), JSON_HEADERS)
            )
    return cases


def lookup_cases(w: World) -> list[Case]:
    values = code_values() | text_values(200, numbers_coerced=True)
    cases = []
    for v in draw(values, N_LOOKUPS, salt=7):
        mahoso = v.value
        if isinstance(mahoso, str) and "{n" in mahoso:
            mahoso = mahoso.format(n=w.number())
        body = {"service": "TraCuuHoSo", "session": w.session, "madonvi": UNIT, "mahoso": mahoso}
        cases.append(
            Case(
                "facade",
                f"lookup:{v.kind}",
                "POST",
                FACADE,
                json.dumps(body).encode(),
                JSON_HEADERS,
            )
        )
    return cases


def malformed_cases(
    door: str, path: str, valid: tuple[bytes, str], headers: dict[str, str], n: int, salt: int
) -> list[Case]:
    """Malformed bodies (drawn), hostile ones and hostile requests (hand-written); `valid` is
    a valid body and the dossier code of its one item."""
    cases = []
    for raw in draw(malformed(valid[0]), n, salt=salt):
        sent = {**headers, "Content-Type": raw.content_type} if raw.content_type else dict(headers)
        if not raw.content_type:
            sent.pop("Content-Type", None)
        # The doors read JSON whatever type is declared (old adapters send text/plain): a
        # valid body under another type may be taken, and its item then counts as accepted.
        family = "raw" if raw.kind == "content_type" else "malformed"
        cases.append(
            Case(door, f"{family}:{raw.kind}", "POST", path, raw.body, sent, about=valid[1])
        )
    return cases + hostile_requests(door, path, valid, headers)


HOSTILE_BODIES = [
    Raw(b'{"a": NaN}', "application/json", "json_constant"),
    Raw(b'{"a": -Infinity}', "application/json", "json_constant"),
    Raw(b'{"a": 1e999}', "application/json", "huge_float"),
    Raw(b'{"a": ' + b"9" * 5000 + b"}", "application/json", "huge_int"),
    Raw(b'{"a": "\\ud800"}', "application/json", "surrogate"),
    Raw(b"\xef\xbb\xbf{}", "application/json", "bom"),
    Raw(b"\x00" * 64, "application/json", "nul_bytes"),
    Raw(b"", "application/json", "empty"),
    Raw(b"[" * 100_000, "application/json", "unclosed"),
]


def hostile_requests(
    door: str, path: str, valid: tuple[bytes, str], headers: dict[str, str]
) -> list[Case]:
    """Hand-written: bodies no encoder makes, and requests no client library sends."""
    body, key = valid
    cases = [
        Case(
            door,
            f"hostile:{r.kind}",
            "POST",
            path,
            r.body,
            {**headers, "Content-Type": r.content_type},
        )
        for r in HOSTILE_BODIES
    ]
    auth = [(k.encode(), v.encode()) for k, v in headers.items() if k != "Content-Type"]
    json_type = (b"Content-Type", b"application/json")
    raws = {
        "header_invalid_utf8": [json_type, (b"X-Note", b"\xff\xfe\xc3("), *auth],
        "content_type_invalid_utf8": [(b"Content-Type", b"application/json; charset=\xff"), *auth],
        "authorization_invalid_utf8": [
            json_type,
            (b"Authorization", b"Bearer \xff\xfe\xed\xa0\x80"),
        ],
        "authorization_nul": [json_type, (b"Authorization", b"Bearer a\x00b")],
        "cookie_invalid_utf8": [json_type, (b"Cookie", b"hub_session=\xff\xfe"), *auth],
        "many_headers": [json_type, *auth, *((f"X-H{i}".encode(), b"v") for i in range(90))],
        "long_header": [json_type, *auth, (b"X-Long", b"a" * 7000)],
    }
    for kind, hs in raws.items():
        cases.append(
            Case(
                door,
                f"raw:{kind}",
                "POST",
                path,
                raw=raw_request("POST", path, hs, body),
                about=key,
            )
        )
    cases.append(
        Case(
            door,
            "raw:path_invalid_utf8",
            "POST",
            path,
            raw=raw_request("POST", path.encode() + b"?\xff=\xfe", [json_type, *auth], body),
            about=key,
        )
    )
    cases.append(
        Case(
            door,
            "raw:chunked_garbage",
            "POST",
            path,
            raw=b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        )
    )
    cases.append(
        Case(
            door,
            "raw:both_lengths",
            "POST",
            path,
            raw=b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        )
    )
    cases.append(Case(door, "raw:method_get", "GET", path, raw=raw_request("GET", path, auth, b"")))
    return cases


def judge_raw(
    accepted: set[str], outcome: Callable[[Any], tuple[bool, Any]]
) -> Callable[[Answer], str | None]:
    """A request no client library sends, around a valid body: refused, or taken as it is
    (its item then counts as accepted)."""

    def judge(a: Answer) -> str | None:
        if a.status == 200:
            reply = a.json()
            entries = reply.get("result") or reply.get("results") or []
            if entries and outcome(entries[0])[0]:
                accepted.add(a.case.about)
            return None
        return judge_refused(a)

    return judge


def judge_envelope(a: Answer) -> str | None:
    """Refused as a whole, or (a list where items belong) each of its items refused."""
    if a.status == 200:
        reply = a.json()
        entries = reply.get("result") or reply.get("results") or []
        taken = [
            e
            for e in entries
            if e.get("error_code") == "00" or e.get("outcome") in ("accepted", "duplicate")
        ]
        return f"items taken from a wrong envelope: {taken[:2]}" if taken else None
    return judge_refused(a)


def judge_refused(a: Answer) -> str | None:
    if a.status is not None and 400 <= a.status < 500:
        return None
    return f"HTTP {a.status} where a refusal (4xx) was due: {a.body[:200]!r}"


async def test_every_facade_case_is_answered_and_only_valid_items_reach_dvcqg(world: World) -> None:
    w, ledger, clock = world, Ledger(), Stopwatch()
    await seed_dossiers(w, SEEDS)
    print(f"seeded in {clock}", flush=True)
    records = facade_batches(
        w,
        draw(
            st.lists(st.none() | record_mutations(), min_size=1, max_size=4),
            N_RECORD_BATCHES,
            salt=1,
        ),
        "DongBoHoSoMC",
    )
    w.numbers = 0  # the steps are about the seeded dossiers 1, 2, …
    steps = facade_batches(
        w,
        draw(
            st.lists(st.none() | step_mutations(), min_size=1, max_size=2), N_STEP_BATCHES, salt=2
        ),
        "CapNhatTienDoHoSoMC",
    )
    assert w.numbers <= SEEDS, "more steps than seeded dossiers"
    w.numbers = 10**5
    envelopes, lookups, logins = envelope_cases(w), lookup_cases(w), login_cases()
    n = w.number()
    valid = facade_body(w, "DongBoHoSoMC", [record(n)]), dossier_code(n)
    broken = malformed_cases("facade", FACADE, valid, JSON_HEADERS, N_FACADE_MALFORMED, salt=4)

    print(f"drawn in {clock}", flush=True)
    answers = await send_all(w.http, w.base, [*records, *steps, *envelopes, *lookups, *broken])
    print(f"sent in {clock}", flush=True)
    answers += await send_all(w.http, w.base, logins, concurrency=8)  # below LoginsBusy
    answered(answers, "facade", clock)

    kinds = by_kind(answers)
    judged(
        kinds["DongBoHoSoMC"],
        judge_batch(ledger, facade_outcome),
    )
    judged(
        kinds["CapNhatTienDoHoSoMC"],
        judge_batch(ledger, facade_outcome),
    )
    judged(kinds["envelope"], judge_envelope)
    judged(kinds["malformed"] + kinds["hostile"], judge_refused)
    judged(kinds["raw"], judge_raw(ledger.records, facade_outcome))
    judged(
        kinds["login"], lambda a: None if a.status in (400, 401, 413, 429) else f"HTTP {a.status}"
    )
    assert ledger.records, "no valid record was drawn"
    assert ledger.steps, "no valid step was drawn"
    assert ledger.refused_records, "no invalid record was drawn"
    assert ledger.refused_steps, "no invalid step was drawn"

    await arrived_exactly(w, ledger, [a.case.about for a in kinds["envelope"]])


async def arrived_exactly(w: World, ledger: Ledger, never: list[str]) -> None:
    """DVCQG ends up holding exactly what the hub accepted; nothing parked, nothing waiting."""
    seeds = {c for c in w.sim.dossiers if f"-{SEED_DAY}-" in c}
    await eventually(
        lambda: ledger.records <= set(w.sim.dossiers),
        180,
        lambda: (
            "the accepted dossiers at DVCQG; missing: "
            + str(sorted(ledger.records - set(w.sim.dossiers))[:5])
        ),
    )

    def stepped() -> set[str]:
        return {c for c, s in w.sim.steps.items() if s}

    await eventually(lambda: ledger.steps <= stepped(), 180, "the accepted steps at DVCQG")
    await drained(w.hub)
    assert set(w.sim.dossiers) - seeds == ledger.records
    assert stepped() == ledger.steps
    assert not (set(never) | ledger.refused_records) & set(w.sim.dossiers)
    assert not ledger.refused_steps & stepped()


# -- the canonical REST API -------------------------------------------------------------------


def api_outcome(entry: Any) -> tuple[bool, Any]:
    return entry["outcome"] == "accepted", (entry.get("error") or {}).get("field")


def api_batches(w: World) -> list[Case]:
    plans = draw(
        st.lists(st.none() | api_event_mutations(), min_size=1, max_size=4), N_API_BATCHES, salt=11
    )
    cases = []
    for plan in plans:
        items, events = [], []
        for m in plan:
            n = w.number()
            events.append(mutate(event(n), m, n))
            is_step = events[-1].get("kind") == "step"
            if is_step:  # a step is about a dossier DVCQG holds
                w.steps += 1
                if events[-1].get("dossier_code") == dossier_code(n):
                    events[-1]["dossier_code"] = seeded(w.steps)
            items.append(Item(m, key_of(events[-1], "dossier_code"), is_step))
        kind = "events:" + "+".join(i.label for i in items)
        cases.append(
            Case(
                "api",
                kind,
                "POST",
                EVENTS,
                json.dumps({"events": events}).encode(),
                AUTH,
                about=items,
            )
        )
    return cases


def api_envelopes(w: World) -> list[Case]:
    tokens = text_values(300, numbers_coerced=False).map(
        lambda v: {"Authorization": f"Bearer {v.value}"} if header_safe(v.value) else {}
    )
    headers = st.one_of(
        tokens,
        st.sampled_from(
            [
                {},
                {"Authorization": ONESTOP_TOKEN},
                {"Authorization": f"bearer {ONESTOP_TOKEN}"},
                {"Authorization": f"Bearer {READER_TOKEN}"},
                {"Authorization": f"Basic {ONESTOP_TOKEN}"},
            ]
        ),
    )
    bodies = st.one_of(
        WRONG_TYPES, st.just(Value([], INVALID, "empty")), st.just(Value(DROP, INVALID, "missing"))
    )
    cases = []
    for which, (h, v) in enumerate(draw(st.tuples(headers, bodies), N_API_ENVELOPES, salt=12)):
        n = w.number()
        if which % 2:  # a wrong credential around a valid batch
            body, sent, kind = {"events": [event(n)]}, {**JSON_HEADERS, **h}, "envelope:credential"
        else:  # a valid credential, the batch not one
            body = {} if v.value == DROP else {"events": v.value}
            sent, kind = AUTH, f"envelope:events:{v.kind}"
        if sent.get("Authorization") == AUTH["Authorization"] and kind == "envelope:credential":
            continue
        cases.append(
            Case(
                "api", kind, "POST", EVENTS, json.dumps(body).encode(), sent, about=dossier_code(n)
            )
        )
    too_many = {"events": [event(w.number())] * (MAX_ITEMS + 1)}
    cases.append(
        Case(
            "api",
            "envelope:too_many",
            "POST",
            EVENTS,
            json.dumps(too_many).encode(),
            AUTH,
            about="",
        )
    )
    return cases


def header_safe(value: object) -> bool:
    """Whether aiohttp sends it as a header value (the raw cases send the others)."""
    if not isinstance(value, str) or "\r" in value or "\n" in value or "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def feed_cases() -> list[Case]:
    values = st.one_of(
        st.integers().map(str),
        st.text(max_size=30),
        st.sampled_from(
            [
                "",
                "-0",
                "1e3",
                "0x10",
                "1_000",
                "١٢٣",
                "%FF",
                "%00",
                "%ED%A0%80",
                str(2**63),
                "9" * 5000,
            ]
        ),
    )
    cases = []
    for after, limit in draw(st.tuples(values, values), N_FEED, salt=13):
        after_q = quote(after, safe="%", errors="surrogatepass")
        query = f"after={after_q}&limit={quote(limit, safe='%', errors='surrogatepass')}"
        cases.append(
            Case(
                "api",
                "feed:query",
                "GET",
                f"{FEED}?{query}",
                b"",
                {"Authorization": f"Bearer {ONESTOP_TOKEN}"},
            )
        )
    return cases


async def test_every_api_case_is_answered_and_only_valid_events_reach_dvcqg(world: World) -> None:
    w, ledger, clock = world, Ledger(), Stopwatch()
    batches, envelopes, feed = api_batches(w), api_envelopes(w), feed_cases()
    await seed_dossiers(w, w.steps)
    n = w.number()
    valid = json.dumps({"events": [event(n)]}).encode(), dossier_code(n)
    broken = malformed_cases("api", EVENTS, valid, AUTH, N_API_MALFORMED, salt=14)
    answers = await send_all(w.http, w.base, [*batches, *envelopes, *feed, *broken])
    answered(answers, "api", clock)

    kinds = by_kind(answers)
    judged(kinds["events"], judge_batch(ledger, api_outcome))
    judged(kinds["envelope"], judge_envelope)
    judged(kinds["malformed"] + kinds["hostile"], judge_refused)
    judged(kinds["raw"], judge_raw(ledger.records, api_outcome))
    judged(kinds["feed"], lambda a: None if a.status in (200, 400) else f"HTTP {a.status}")
    assert ledger.records, "no valid event was drawn"
    assert ledger.refused_records, "no invalid event was drawn"
    await arrived_exactly(w, ledger, [a.case.about for a in kinds["envelope"]])
