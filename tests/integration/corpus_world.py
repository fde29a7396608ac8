"""The bad-input corpus: hostile values drawn by hypothesis, sent in bulk to a running hub.

A door's test draws its cases (`draw`: a fixed seed, so every run sends the same corpus; set
`HUB_CORPUS_SEED` to explore another), sends them concurrently over one aiohttp session
(`send_all`; a case that must carry bytes aiohttp will not send, such as invalid UTF-8 in a
header, goes over a raw socket), checks that every one was answered below 500
(`assert_answered`), then checks what reached the hub's destinations against exactly the valid
items it sent. What each door was sent and how it answered is kept in `TALLY`, which the
terminal summary prints (tests/integration/conftest.py), so the count shows in a passing run.

Each drawn value carries its verdict: `VALID` (the door must accept it), `INVALID` (the door
must refuse it, naming the field), or `UNKNOWN` (the door may do either, but what it answered
must be what happened: accepted items arrive, refused ones never do).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import aiohttp
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from hub.health import QueueProbe, counts_of
from hub.logs import configure_logging
from hub.runtime import Hub
from tests.support import eventually

T = TypeVar("T")
Verdict = Literal["valid", "invalid", "unknown"]
VALID: Verdict = "valid"
INVALID: Verdict = "invalid"
UNKNOWN: Verdict = "unknown"

SEED = int(os.environ.get("HUB_CORPUS_SEED", "20261118"))
QUOTAS = {
    "facade": 4000,
    "api": 3500,
    "payment": 2500,
    "ministry": 1000,
    "admin_login": 550,
    "dashboard_login": 450,
    "transfer": 750,
}
"""At least this many cases per door (each door's test checks it sent them)."""
assert sum(QUOTAS.values()) >= 10_000, "the corpus is at least 10,000 cases"
CASE_TIMEOUT_S = 120.0  # one answer on a busy two-core machine; never hit in a good run


@pytest.fixture
def product_logging() -> Iterator[None]:
    """Logging configured as `hub run` configures it (hub.logs), so the corpus goes through
    the product's log pipeline, not structlog's default; set back to the default level after."""
    configure_logging("WARNING", "json")  # tens of thousands of refusals
    yield
    configure_logging("INFO", "json")


# -- drawing -------------------------------------------------------------------------------------


def draw(strategy: st.SearchStrategy[T], n: int, salt: int = 0) -> list[T]:
    """`n` values of `strategy`, the same ones at every run with the same `SEED` and `salt`.

    Hypothesis drives the drawing (its generate phase only: nothing to shrink, no example
    database), so the corpus gets its heuristics (boundaries, odd characters, growing sizes)
    while a run stays reproducible. Values are collected, not tested one by one: 10,000 HTTP
    calls in `@given` would take far too long.
    """
    out: list[T] = []

    @seed(SEED + salt)
    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: T) -> None:
        out.append(value)

    collect()
    assert len(out) >= n * 0.95, f"hypothesis drew {len(out)} of {n} values"
    return out


@dataclass(frozen=True)
class Value:
    """A value to put in a field, what the door must make of it, and how it was made."""

    value: Any
    verdict: Verdict
    kind: str


CONTROL = st.sampled_from(["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f"])
BIDI = st.sampled_from([chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]])
SURROGATE = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff", "\ud83d"])
# Unusual but harmless: Vietnamese with combining marks, emoji and joiners, right-to-left
# letters (not overrides), CJK, no-break and zero-width spaces, full-width forms, tabs.
ODD_ALPHABET = (
    "Trần Thị Bình Nguyễn Ánh Dương "
    "ệ ễ ự ữ ỹ "  # precomposed
    "e\u0302\u0301 a\u0306\u0323 "  # combining marks
    "👩‍👩‍👧 🇻🇳 ❤️ "  # emoji, joiners, variation selector
    "שלום مرحبا 漢字 가 "
    "\u00a0\u200b\u200c\u200d\ufeff\ufffd０１２Ａ\t\n\r"
)
PLAIN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ĐđƯưƠơ0123456789-.,", max_size=40)
ODD = st.text(alphabet=ODD_ALPHABET, min_size=1, max_size=60)


@st.composite
def poisoned(draw_: st.DrawFn, bad: st.SearchStrategy[str]) -> str:
    """Ordinary text with one forbidden character somewhere in it."""
    text = draw_(PLAIN)
    at = draw_(st.integers(0, len(text)))
    return text[:at] + draw_(bad) + text[at:]


def huge(limit: int) -> st.SearchStrategy[str]:
    """Longer than `limit`: just over it, far over it, or 200,000 characters."""
    lengths = st.one_of(
        st.integers(limit + 1, limit + 20), st.integers(limit + 21, limit * 4), st.just(200_000)
    )
    return st.builds(lambda n, c: c * n, lengths, st.sampled_from(["x", "ệ", "👩", "0"]))


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)


def nested(depth: int) -> Any:
    """A value nested `depth` levels deep (lists in dicts in lists …)."""
    value: Any = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


WRONG_TYPES: st.SearchStrategy[Value] = st.one_of(
    st.builds(lambda v: Value(v, INVALID, "list"), st.lists(JSON_SCALARS, max_size=3)),
    st.builds(
        lambda v: Value(v, INVALID, "object"), st.dictionaries(st.text(max_size=5), JSON_SCALARS)
    ),
    st.builds(lambda d: Value(nested(d), INVALID, "deep"), st.integers(2, 900)),
)


def text_values(limit: int, numbers_coerced: bool) -> st.SearchStrategy[Value]:
    """Hostile and odd values for a free-text field of at most `limit` characters."""
    number = VALID if numbers_coerced else INVALID
    return st.one_of(
        st.builds(lambda v: Value(v, INVALID, "control"), poisoned(CONTROL)),
        st.builds(lambda v: Value(v, INVALID, "bidi"), poisoned(BIDI)),
        st.builds(lambda v: Value(v, INVALID, "surrogate"), poisoned(SURROGATE)),
        st.builds(lambda v: Value(v, INVALID, "too_long"), huge(limit)),
        st.builds(lambda v: Value(v, VALID, "odd_unicode"), ODD.filter(lambda s: len(s) <= limit)),
        st.builds(lambda v: Value(v, VALID, "at_limit"), st.just("ư" * limit)),
        st.builds(lambda v: Value(v, number, "number"), st.integers(-(10**6), 10**6)),
        st.just(Value(None, VALID, "null")),
        WRONG_TYPES,
    )


ANY_JSON: st.SearchStrategy[Any] = st.recursive(
    JSON_SCALARS | st.text(alphabet=ODD_ALPHABET + "\x00\x1b\u202e", max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def free_form_values() -> st.SearchStrategy[Value]:
    """Values for a list of free-form objects the hub passes on as they came."""
    return st.one_of(
        st.builds(
            lambda v: Value(v, UNKNOWN, "any_json"),
            st.lists(st.dictionaries(st.text(max_size=8), ANY_JSON, max_size=4), max_size=3),
        ),
        st.builds(lambda v: Value([{"x": v}], INVALID, "surrogate"), poisoned(SURROGATE)),
        st.builds(
            lambda v: Value([{"x": v}], INVALID, "not_a_number"),
            st.sampled_from([float("nan"), float("inf"), float("-inf")]),
        ),
        st.builds(lambda d: Value([nested(d)], INVALID, "deep"), st.integers(200, 900)),
        st.builds(lambda v: Value(v, INVALID, "wrong_type"), st.text(max_size=10) | st.integers()),
    )


# -- malformed bodies -------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A body as bytes with its content type: what a broken or hostile client sends."""

    body: bytes
    content_type: str
    kind: str


def malformed(valid_body: bytes) -> st.SearchStrategy[Raw]:
    """Bodies that are not the JSON object a door expects, built around a valid one."""
    n = len(valid_body)
    return st.one_of(
        st.builds(
            lambda at: Raw(valid_body[:at], "application/json", "truncated"), st.integers(0, n - 1)
        ),
        st.builds(
            lambda at, b: Raw(
                valid_body[:at] + bytes([b]) + valid_body[at:], "application/json", "invalid_utf8"
            ),
            st.integers(0, n),
            st.sampled_from([0x80, 0xC0, 0xC3, 0xED, 0xF5, 0xFE, 0xFF]),
        ),
        st.builds(lambda b: Raw(b, "application/json", "random_bytes"), st.binary(max_size=300)),
        st.builds(
            lambda ct: Raw(valid_body, ct, "content_type"),
            st.sampled_from(
                [
                    "text/plain",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data",
                    "multipart/form-data; boundary=",
                    "application/json; charset=latin-1",
                    "application/json; charset=nonsense",
                    "",
                    "\x7f/\x7f",
                ]
            ),
        ),
        st.builds(
            lambda v: Raw(json.dumps(v).encode(), "application/json", "not_an_object"),
            st.one_of(JSON_SCALARS, st.lists(JSON_SCALARS, max_size=3)),
        ),
        st.builds(
            lambda d, c: Raw(c[0] * d + b"1" + c[1] * d, "application/json", "deep_json"),
            st.integers(10, 100_000),
            st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]),
        ),
        st.sampled_from(
            [
                Raw(b'{"a": NaN}', "application/json", "json_constant"),
                Raw(b'{"a": Infinity}', "application/json", "json_constant"),
                Raw(b'{"a": 1e999}', "application/json", "json_constant"),
                Raw(b'{"a": ' + b"9" * 5000 + b"}", "application/json", "huge_int"),
                Raw(b'{"a": "\\ud800"}', "application/json", "surrogate"),
                Raw(b"\xef\xbb\xbf{}", "application/json", "bom"),
                Raw(b'{"a": 1, "a": 2}', "application/json", "duplicate_key"),
                Raw(b"\x00" * 64, "application/json", "nul_bytes"),
                Raw(b"", "application/json", "empty"),
            ]
        ),
    )


# -- sending -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One request. `raw` (the whole request as bytes) goes over a socket of its own."""

    door: str
    kind: str
    method: str
    path: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    about: Any = None  # what the door's test needs to judge the answer (its items, …)


@dataclass
class Answer:
    case: Case
    status: int | None  # None: no answer (the connection was dropped or reset)
    body: bytes
    error: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # of an answer aiohttp read

    def json(self) -> Any:
        return json.loads(self.body)


TALLY: dict[str, Counter[str]] = {}
"""Per door: cases sent, and answers by status code (`dropped` for none); printed at the end."""


def record(answers: Iterable[Answer]) -> None:
    for a in answers:
        counts = TALLY.setdefault(a.case.door, Counter())
        counts["cases"] += 1
        counts[str(a.status) if a.status is not None else "dropped"] += 1


def summary_lines() -> list[str]:
    lines = []
    for door, counts in sorted(TALLY.items()):
        statuses = sorted((k, v) for k, v in counts.items() if k != "cases")
        fives = sum(v for k, v in statuses if k.isdigit() and int(k) >= 500)
        by_status = ", ".join(f"{k}: {v}" for k, v in statuses)
        lines.append(
            f"{door}: {counts['cases']} cases ({by_status}); 5xx: {fives}, "
            f"dropped: {counts['dropped']}"
        )
    total = sum(c["cases"] for c in TALLY.values())
    if TALLY:
        lines.append(f"total: {total} cases (seed {SEED})")
    return lines


async def send_all(
    http: aiohttp.ClientSession, base: str, cases: Sequence[Case], concurrency: int = 16
) -> list[Answer]:
    """Every case sent, at most `concurrency` at a time; the answers in the cases' order."""
    gate = asyncio.Semaphore(concurrency)
    host, port = _host_port(base)

    async def one(case: Case) -> Answer:
        async with gate:
            if case.raw is not None:
                return await _send_raw(host, port, case)
            try:
                async with http.request(
                    case.method,
                    base + case.path,
                    data=case.body,
                    headers=dict(case.headers),
                    timeout=aiohttp.ClientTimeout(total=CASE_TIMEOUT_S),
                    allow_redirects=False,  # what the door answered, not where it leads
                ) as r:
                    return Answer(case, r.status, await r.read(), headers=dict(r.headers))
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                return Answer(case, None, b"", repr(exc))
            except (ValueError, UnicodeEncodeError):  # headers aiohttp will not send: raw
                return await _send_raw(host, port, as_raw(case))

    answers = await asyncio.gather(*(one(c) for c in cases))
    record(answers)
    return answers


_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})")


async def _send_raw(host: str, port: int, case: Case) -> Answer:
    assert case.raw is not None
    try:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(case.raw)
            await writer.drain()
            reply = await asyncio.wait_for(reader.read(), CASE_TIMEOUT_S)
        finally:
            writer.close()
    except (OSError, TimeoutError) as exc:
        return Answer(case, None, b"", repr(exc))
    found = _STATUS_LINE.match(reply)
    if found is None:
        return Answer(case, None, reply, "no status line")
    _, _, body = reply.partition(b"\r\n\r\n")
    return Answer(case, int(found[1]), body)


def raw_request(
    method: str, path: str | bytes, headers: Sequence[tuple[bytes, bytes]], body: bytes
) -> bytes:
    """An HTTP/1.1 request as bytes, the connection closed after the answer."""
    target = path if isinstance(path, bytes) else path.encode()
    lines = [
        method.encode() + b" " + target + b" HTTP/1.1",
        b"Host: 127.0.0.1",
        b"Connection: close",
    ]
    lines += [name + b": " + value for name, value in headers]
    lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def as_raw(case: Case) -> Case:
    """The case as raw bytes: its headers encoded as they are (a lone surrogate as the byte
    it stands for)."""
    headers = [
        (k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
        for k, v in case.headers.items()
    ]
    raw = raw_request(case.method, case.path, headers, case.body)
    return Case(case.door, case.kind, case.method, case.path, raw=raw, about=case.about)


def _host_port(base: str) -> tuple[str, int]:
    host, _, port = base.removeprefix("http://").partition(":")
    return host, int(port)


def assert_answered(answers: Sequence[Answer]) -> None:
    """Every case answered, below 500."""
    bad = [a for a in answers if a.status is None or a.status >= 500]
    kinds = Counter(a.case.kind for a in bad)
    assert not bad, (
        f"{len(bad)} of {len(answers)} cases not answered below 500; by kind: {dict(kinds)}; "
        + "; ".join(
            f"{a.case.kind} {a.case.method} {a.case.path} -> {a.status} {a.error or a.body[:200]!r}"
            for a in bad[:5]
        )
    )


def answered(answers: Sequence[Answer], door: str, clock: Stopwatch) -> None:
    """Every case of `door` answered below 500, at least its quota of them; says so."""
    assert_answered(answers)
    assert len(answers) >= QUOTAS[door], f"{door}: {len(answers)} cases, under {QUOTAS[door]}"
    print(f"{door}: {len(answers)} cases answered in {clock}")


def by_kind(answers: Sequence[Answer]) -> dict[str, list[Answer]]:
    """The answers by the first part of their case's kind ("DongBoHoSoMC:..." and so on)."""
    found: dict[str, list[Answer]] = {}
    for a in answers:
        found.setdefault(a.case.kind.split(":", 1)[0], []).append(a)
    return found


def judged(answers: Sequence[Answer], judge: Callable[[Answer], str | None]) -> None:
    """`judge` says what is wrong with an answer, or None; every wrong one is listed."""
    wrong = [(a, why) for a in answers if (why := judge(a)) is not None]
    assert not wrong, f"{len(wrong)} of {len(answers)} answers wrong: " + "; ".join(
        f"{a.case.kind}: {why}" for a, why in wrong[:10]
    )


async def drained(hub: Hub) -> None:
    """Every queue of the hub empty, nothing parked: what was accepted went on, nothing
    refused (or accepted and then refused downstream) waits anywhere."""
    assert hub.broker is not None
    probe = QueueProbe(hub.broker)

    async def empty() -> bool:
        for watched in hub.watched:
            counts = await counts_of(watched, probe)
            if counts.parked or counts.waiting:
                return False
        return True

    await eventually(empty, 120, "every queue drained, nothing parked")


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def __str__(self) -> str:
        return f"{time.monotonic() - self.start:.1f} s"
