"""The bad-input corpus at the document axis's transfer door: `POST /api/v1/vdxp/transfers`,
as JSON (attachments inline in base64) and as multipart/form-data (a `transfer` part, then
one file part per attachment, streamed to disk within their limits).

Drawn transfers with one hostile field; drawn multipart bodies with hostile parts (file
names that are no UTF-8, look like paths or hold control characters, parts without names, a
second `transfer` part, part counts up to the limit and past it, hostile part types);
malformed bodies and broken multipart framing (no boundary, a wrong one, unclosed parts);
hostile credentials; requests no client library sends. Every case is answered below 500 on
a connection that stays whole; every valid transfer is taken (202) and every invalid one
refused (4xx); afterwards the axis has received exactly the transfers the hub took, nothing
was parked, nothing is left in the staging folder, and no file was written anywhere but in
a taken transfer's own folder.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from connectors.vdxp.outbound import EDXML_FILE, transfer_folder
from schemas.interagency import MAX_TRANSFER_ATTACHMENTS
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
from tests.integration.vdxp_world import (
    MINISTRY,
    STRANGER,
    AxisWorld,
    axis_world,
    known_dossier,
)
from tests.support import ONESTOP_TOKEN, READER_TOKEN, eventually

pytestmark = [
    pytest.mark.slow,
    pytest.mark.broker,
    pytest.mark.usefixtures("product_logging"),
    # aiohttp warns of each hostile Content-Disposition it reads (and then ignores)
    pytest.mark.filterwarnings("ignore::aiohttp.multipart.BadContentDispositionHeader"),
]

KB = 1024
LIMITS = {"max_document_bytes": 600 * KB, "max_attachment_bytes": 200 * KB}
PATH = "/api/v1/vdxp/transfers"
AUTH = {"Authorization": f"Bearer {ONESTOP_TOKEN}"}
JSON_HEADERS = {**AUTH, "Content-Type": "application/json"}
N_JSON, N_MULTIPART, N_MALFORMED, N_CREDENTIALS = 360, 300, 100, 40
DOSSIERS = 8
BOUNDARY = "corpusBoundary7MA4YWxkTrZu0gW"


def transfer(n: int, dossier: str) -> dict[str, Any]:
    return {
        "transfer_id": f"lt-{n}",
        "dossier_code": dossier,
        "to": [MINISTRY],
        "subject": f"Chuyển hồ sơ {dossier} để xác minh",
        "code_number": str(n),
        "code_notation": "UBND-VP",
    }


def values(verdict: str, kind: str, given: list[Any]) -> st.SearchStrategy[Value]:
    return st.builds(lambda v: Value(v, verdict, kind), st.sampled_from(given))  # type: ignore[arg-type]


def required(v: Value) -> Value:
    if v.value is None:
        return Value(v.value, INVALID, v.kind)
    return v


def plain_text(limit: int) -> st.SearchStrategy[Value]:
    """A text field of the transfer: numbers are no text here (pydantic's strict str)."""
    return text_values(limit, numbers_coerced=False)


def fields() -> st.SearchStrategy[tuple[str, Value]]:
    """One hostile field of a JSON transfer (`{dossier}`: a dossier the hub holds)."""
    return st.one_of(
        st.tuples(
            st.just("transfer_id"),
            values(VALID, "id_chars", ["{n}", "{n}.a:b-c_d", "{n}" + "9" * 60])
            | values(INVALID, "bad_id", ["", "{n} x", "{n}/x", "../{n}", "{n}\x00", "lt-{n}ệ"])
            | values(INVALID, "too_long", ["{n}" + "x" * 120])
            | plain_text(100).map(lambda v: Value(v.value, UNKNOWN, v.kind)),
        ),
        st.tuples(
            st.just("dossier_code"),
            values(INVALID, "unknown", ["000.00.41.H41-261123-9999", "{dossier}x", ""])
            | plain_text(100).map(lambda v: Value(v.value, INVALID, v.kind)),
        ),
        st.tuples(
            st.just("to"),
            values(VALID, "known", [[MINISTRY], [MINISTRY, MINISTRY]])
            | values(INVALID, "stranger", [[STRANGER], [MINISTRY, STRANGER]])
            | values(INVALID, "bad_code", [[], ["000.00.00.g12"], ["x"], [MINISTRY + " "], [1]])
            | values(INVALID, "too_many", [[MINISTRY] * 21])
            | WRONG_TYPES.filter(lambda v: v.kind != "list")
            | st.just(Value(None, INVALID, "null")),
        ),
        st.tuples(st.just("subject"), plain_text(4000).map(required)),
        st.tuples(st.just("code_number"), plain_text(500).map(required)),
        st.tuples(st.just("code_notation"), plain_text(500)),
        st.tuples(st.just("content"), plain_text(4000)),
        st.tuples(st.just("signer_name"), plain_text(500)),
        st.tuples(
            st.just("document_type"),
            values(VALID, "in_range", [0, 1, 1000])
            | values(INVALID, "out_of_range", [-1, 1001, 10**30])
            | values(UNKNOWN, "coerced", ["5", 5.0, True, " 7 "])
            | values(INVALID, "not_a_number", ["x", 1.5, [1], {}]),
        ),
        st.tuples(
            st.just("due_date"),
            values(VALID, "date", ["2027-01-31", None])
            | values(INVALID, "bad_date", ["2027-02-30", "31/01/2027", "x", 20270131.5]),
        ),
        st.tuples(
            st.just("unexpected"),
            st.builds(lambda v: Value(v, INVALID, "extra_field"), st.text(max_size=10)),
        ),
        st.tuples(st.just("attachments"), attachment_values()),
    )


def attachment(name: Any = "to-khai.pdf", content: bytes = b"%PDF-1.4 x") -> dict[str, Any]:
    return {
        "name": name,
        "content_type": "application/pdf",
        "content_base64": base64.b64encode(content).decode(),
    }


def attachment_values() -> st.SearchStrategy[Value]:
    return st.one_of(
        st.builds(
            lambda v: Value(
                [attachment(v.value)], INVALID if v.value is None else v.verdict, v.kind
            ),
            plain_text(500),
        ),
        values(
            VALID,
            "names",
            [
                [attachment("../../etc/passwd")],
                [attachment("..\\..\\windows\\win.ini")],
                [attachment("/etc/shadow")],
                [attachment("a" * 500)],
                [attachment(n) for n in ("a.pdf", "a.pdf", "b.pdf")],  # the same name twice
                [attachment(content=b"")],
            ],
        ),
        values(VALID, "at_limit", [[attachment(content=b"x" * LIMITS["max_attachment_bytes"])]]),
        values(
            VALID,
            "many",
            [[attachment(f"{i}.txt", b"%d" % i) for i in range(MAX_TRANSFER_ATTACHMENTS)]],
        ),
        values(
            INVALID,
            "too_many",
            [[attachment(f"{i}.txt", b"%d" % i) for i in range(MAX_TRANSFER_ATTACHMENTS + 1)]],
        ),
        values(
            INVALID,
            "bad_base64",
            [
                [{**attachment(), "content_base64": "!!!"}],
                [{**attachment(), "content_base64": "YQ"}],
                [{**attachment(), "content_base64": "YQ==\n"}],
                [{**attachment(), "content_base64": 5}],
                [{"name": "x.pdf"}],
            ],
        ),
        values(
            INVALID,
            "over_limit",
            [[attachment(content=b"x" * (LIMITS["max_attachment_bytes"] + 1))]],
        ),
        values(INVALID, "not_objects", [["x"], [None], [[attachment()]], "x", {"a": 1}]),
        values(
            INVALID,
            "bad_fields",
            [
                [{**attachment(), "content_type": None}],
                [{**attachment(), "size": 5}],
                [{**attachment(), "description": "\x1b"}],
            ],
        ),
    )


@dataclass(frozen=True)
class Sent:
    verdict: str
    transfer_id: str


def json_cases(dossiers: list[str]) -> list[Case]:
    cases = []
    drawn = draw(st.tuples(fields(), st.integers(0, DOSSIERS - 1)), N_JSON, salt=51)
    for n, ((name, value), d) in enumerate(drawn):
        body = transfer(n, dossiers[d])
        v = value.value
        if isinstance(v, str):
            v = v.replace("{n}", f"lt-{n}").replace("{dossier}", dossiers[d])
        if v is None and name not in ("subject", "code_number", "to"):
            body.pop(name, None)
        else:
            body[name] = v
        cases.append(
            Case(
                "transfer",
                f"json:{name}:{value.kind}",
                "POST",
                PATH,
                json.dumps(body).encode(),
                JSON_HEADERS,
                about=Sent(value.verdict, str(body.get("transfer_id"))),
            )
        )
    return cases


# -- multipart ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One part as bytes: its Content-Disposition parameters and type, and its content."""

    disposition: bytes
    content: bytes
    content_type: bytes = b"application/octet-stream"

    def encode(self) -> bytes:
        head = b"Content-Disposition: form-data" + self.disposition + b"\r\n"
        head += b"Content-Type: " + self.content_type + b"\r\n"
        return b"--" + BOUNDARY.encode() + b"\r\n" + head + b"\r\n" + self.content + b"\r\n"


def multipart(parts: list[Part]) -> bytes:
    return b"".join(p.encode() for p in parts) + b"--" + BOUNDARY.encode() + b"--\r\n"


def transfer_part(body: dict[str, Any]) -> Part:
    return Part(b'; name="transfer"', json.dumps(body).encode(), b"application/json")


FILE_NAMES: list[tuple[bytes, str, str]] = [
    (b'filename="to-khai.pdf"', VALID, "plain"),
    (b'filename="T\xe1\xbb\x9d khai.pdf"', VALID, "utf8"),
    (b"filename*=UTF-8''T%E1%BB%9D%20khai.pdf", VALID, "rfc5987"),
    (b'filename="../../etc/passwd"', VALID, "traversal"),
    (b'filename="..\\\\..\\\\boot.ini"', VALID, "traversal_windows"),
    (b'filename="/etc/passwd"', VALID, "absolute"),
    (b'filename="' + b"a" * 400 + b'.pdf"', VALID, "long"),
    (b'filename="' + b"a" * 600 + b'.pdf"', INVALID, "too_long"),
    (b'filename="\xff\xfe.pdf"', UNKNOWN, "invalid_utf8"),  # refused, or read as Latin-1
    (b'filename="\xed\xa0\x80.pdf"', UNKNOWN, "surrogate_bytes"),
    (b'filename="a\x1b.pdf"', INVALID, "control"),
    (b'filename="a\xe2\x80\xae.pdf"', INVALID, "bidi"),
    (b'filename=""', VALID, "empty"),
    (b"", VALID, "none"),
    (b'filename="a\\".pdf"', VALID, "escaped_quote"),
    (b"filename=a b.pdf", UNKNOWN, "unquoted"),
    (b'filename="a.pdf"; filename="b.pdf"', UNKNOWN, "twice"),
]


def part_plans() -> st.SearchStrategy[tuple[list[tuple[bytes, str, str]], str, int]]:
    """File parts (each a file name), an odd thing about the request, and a size."""
    return st.tuples(
        st.lists(st.sampled_from(FILE_NAMES), min_size=0, max_size=4),
        st.sampled_from(sorted(ODDITIES)),
        st.integers(0, 4 * KB),
    )


@dataclass
class Form:
    """A multipart transfer being built: its first part's JSON, its file parts, its verdict."""

    head: dict[str, Any]
    files: list[Part]
    verdict: str
    first: Part | None = None  # when not the transfer part of `head`


def _file(name: bytes, content: bytes, ctype: bytes = b"application/octet-stream") -> Part:
    return Part(b'; name="f"; filename="' + name + b'"', content, ctype)


def _set(form: Form, verdict: str, **changes: Any) -> None:
    form.verdict = verdict
    for name, value in changes.items():
        setattr(form, name, value)


def _described(form: Form, extra: int) -> None:
    """The JSON describes the file parts: their own names and types are not used then (a
    part header no parser takes still fails), only the count must agree."""
    form.head["attachments"] = [
        {"name": f"mo-ta-{i}.pdf", "content_type": "application/pdf"}
        for i in range(len(form.files) + extra)
    ]
    unreadable = any(b"\x1b" in p.disposition for p in form.files)
    form.verdict = VALID if not extra and not unreadable else INVALID


MAX_PART = LIMITS["max_attachment_bytes"]
ODDITIES: dict[str, Callable[[Form], None]] = {
    "plain": lambda f: None,
    "no_name": lambda f: f.files.append(Part(b'; filename="x.pdf"', b"x")),  # still a file
    "second_transfer": lambda f: _set(  # which one would be meant?
        f, INVALID, files=[*f.files, transfer_part(f.head)]
    ),
    "nested": lambda f: _set(
        f,
        UNKNOWN,
        files=[*f.files, Part(b'; name="f"', b"--in--\r\n", b"multipart/mixed; boundary=in")],
    ),
    "many": lambda f: _set(
        f, VALID, files=[_file(b"%d.txt" % i, b"%d" % i) for i in range(MAX_TRANSFER_ATTACHMENTS)]
    ),
    "too_many": lambda f: _set(
        f,
        INVALID,
        files=[_file(b"%d.txt" % i, b"%d" % i) for i in range(MAX_TRANSFER_ATTACHMENTS + 1)],
    ),
    "hostile_type": lambda f: _set(
        f,
        UNKNOWN if f.verdict == VALID else f.verdict,
        files=[*f.files, _file(b"x.html", b"<script>", b"text/html\x7f;\x01")],
    ),
    "first_not_transfer": lambda f: _set(
        f, INVALID, first=Part(b'; name="Transfer"', json.dumps(f.head).encode())
    ),
    "transfer_not_json": lambda f: _set(
        f, INVALID, first=Part(b'; name="transfer"', b"{not json", b"application/json")
    ),
    # No file system names it: the staging folder was once named after it.
    "hostile_id": lambda f: _set(f, INVALID, head={**f.head, "transfer_id": "lt-\ud800/../x"}),
    "described": lambda f: _described(f, 0),
    "described_wrong": lambda f: _described(f, 1),
    "big": lambda f: f.files.append(_file(b"big.bin", b"b" * MAX_PART)),
    "too_big": lambda f: _set(
        f, INVALID, files=[*f.files, _file(b"big.bin", b"b" * (MAX_PART + 1))]
    ),
    "together_too_big": lambda f: _set(
        f, INVALID, files=[_file(b"%d.bin" % i, b"b" * (190 * KB)) for i in range(4)]
    ),
}


def multipart_case(n: int, dossier: str, plan: tuple[list[Any], str, int]) -> Case:
    names, odd, size = plan
    verdicts = {v for _, v, _ in names}
    verdict = INVALID if INVALID in verdicts else UNKNOWN if UNKNOWN in verdicts else VALID
    files = [Part(b'; name="file"; ' + d, b"%PDF" + b"x" * size) for d, _, _ in names]
    form = Form(transfer(n, dossier), files, verdict)
    ODDITIES[odd](form)
    body = multipart([form.first or transfer_part(form.head), *form.files])
    headers = {**AUTH, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    kind = f"multipart:{odd}:" + "+".join(k for _, _, k in names)
    return Case("transfer", kind, "POST", PATH, body, headers, about=Sent(form.verdict, f"lt-{n}"))


END = b"--" + BOUNDARY.encode() + b"--\r\n"
TYPED = f"multipart/form-data; boundary={BOUNDARY}"


def framing_cases(dossier: str) -> list[Case]:
    """Multipart bodies whose framing is broken: refused, never taken, never a crash."""
    good = multipart([transfer_part(transfer(10**7, dossier)), Part(b'; name="f"', b"x")])
    bodies: list[tuple[str, bytes, str]] = [
        ("no_boundary", good, "multipart/form-data"),
        ("empty_boundary", good, "multipart/form-data; boundary="),
        ("wrong_boundary", good, "multipart/form-data; boundary=other"),
        ("long_boundary", good, "multipart/form-data; boundary=" + "b" * 200),
        ("boundary_invalid_chars", good, 'multipart/form-data; boundary="a\\"b"'),
        ("unclosed", good[: len(good) // 2], f"multipart/form-data; boundary={BOUNDARY}"),
        ("empty", b"", f"multipart/form-data; boundary={BOUNDARY}"),
        ("only_end", END, TYPED),
        ("no_headers", b"--" + BOUNDARY.encode() + b"\r\n\r\nx\r\n" + END, TYPED),
        ("garbage", b"\x00\xff" * 100, f"multipart/form-data; boundary={BOUNDARY}"),
        ("form_urlencoded", b"transfer=%7B%7D", "application/x-www-form-urlencoded"),
        ("mixed", good, f"multipart/mixed; boundary={BOUNDARY}"),
    ]  # fmt: skip
    cases = []
    for kind, body, ctype in bodies:  # hand-written: each once
        cases.append(
            Case(
                "transfer",
                f"framing:{kind}",
                "POST",
                PATH,
                body,
                {**AUTH, "Content-Type": ctype},
                about=Sent(INVALID, f"lt-{10**7}"),
            )
        )
    return cases


def other_cases(dossier: str) -> list[Case]:
    """Malformed JSON bodies, hostile credentials, requests no client library sends."""
    valid = json.dumps(transfer(2 * 10**7, dossier)).encode()
    cases = [
        Case(
            "transfer",
            f"malformed:{raw.kind}",
            "POST",
            PATH,
            raw.body,
            {**AUTH, **({"Content-Type": raw.content_type} if raw.content_type else {})},
            about=Sent(UNKNOWN, f"lt-{2 * 10**7}"),
        )
        for raw in draw(malformed(valid), N_MALFORMED, salt=54)
    ]
    credentials = [
        {},
        {"Authorization": ONESTOP_TOKEN},
        {"Authorization": f"Bearer {READER_TOKEN}"},  # may not send
        {"Authorization": f"Basic {ONESTOP_TOKEN}"},
        {"Authorization": f"Bearer {ONESTOP_TOKEN}x"},
    ]
    tokens = plain_text(300).filter(lambda v: sendable(v.value))
    credentials += [
        {"Authorization": f"Bearer {v.value}"} for v in draw(tokens, N_CREDENTIALS, salt=55)
    ]
    for n, headers in enumerate(credentials, start=3 * 10**7):
        cases.append(
            Case(
                "transfer",
                "credential:wrong",
                "POST",
                PATH,
                json.dumps(transfer(n, dossier)).encode(),
                {"Content-Type": "application/json", **headers},
                about=Sent(INVALID, f"lt-{n}"),
            )
        )
    auth = (b"Authorization", f"Bearer {ONESTOP_TOKEN}".encode())
    json_type = (b"Content-Type", b"application/json")
    part = multipart([transfer_part(transfer(4 * 10**7, dossier))])
    raws = {
        "token_invalid_utf8": ([json_type, (b"Authorization", b"Bearer \xff\xfe")], valid),
        "content_type_invalid_utf8": (
            [auth, (b"Content-Type", b"multipart/form-data; boundary=\xff")],
            part,
        ),
        "header_invalid_utf8": ([json_type, auth, (b"X-Note", b"\xff")], valid),
        "many_headers": ([json_type, auth, *((b"X-H%d" % i, b"v") for i in range(90))], valid),
    }
    for kind, (raw_headers, body) in raws.items():
        cases.append(
            Case(
                "transfer",
                f"raw:{kind}",
                "POST",
                PATH,
                raw=raw_request("POST", PATH, raw_headers, body),
                about=Sent(UNKNOWN, "lt-raw"),
            )
        )
    return cases


def sendable(value: object) -> bool:
    """Whether aiohttp sends it as a header value (the raw cases send the others)."""
    if not isinstance(value, str) or any(c in value for c in "\r\n\x00"):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


# -- judging --------------------------------------------------------------------------------------


def judge(taken: set[str]) -> Callable[[Answer], str | None]:
    def judge_one(a: Answer) -> str | None:
        sent: Sent = a.case.about
        if a.status is None or a.status >= 500:
            return f"HTTP {a.status}: {a.body[:300]!r}"
        if a.status in (200, 202):
            reply = a.json()
            if a.status == 202:
                taken.add(reply["transfer_id"])
            if sent.verdict == INVALID:
                return f"an invalid transfer taken: {reply}"
            return None
        if sent.verdict == VALID:
            return f"a valid transfer refused: HTTP {a.status} {a.body[:300]!r}"
        if a.body[:1] == b"{" and not (a.json().get("error") and a.json().get("message")):
            return f"a refusal without its error and message: {a.body[:300]!r}"
        return None

    return judge_one


@pytest.fixture
async def world(tmp_path: Path, rabbit_url: str, broker_prefix: str) -> AsyncIterator[AxisWorld]:
    # What the door reads, not how often it may be called (test_rate_limits.py does).
    unlimited = {"per_address_per_s": 0, "per_source_per_s": 0}
    async with axis_world(tmp_path, rabbit_url, broker_prefix, api_limits=unlimited, **LIMITS) as w:
        w.axis.responders = frozenset()  # no statuses back: only what was sent is counted
        yield w


def files_outside(world: AxisWorld, taken: set[str]) -> list[Path]:
    """Files under the spool but in a taken transfer's folder (its attachments and edXML)."""
    spool = world.hub.config.connectors.vdxp.spool_dir
    folders = {spool / transfer_folder(t) for t in taken}
    return [
        p
        for p in spool.rglob("*")
        if p.is_file()
        and not (p.parent in folders and (p.name == EDXML_FILE or p.name.startswith("attachment-")))
        and p.parent.parent.name != "in"  # documents received from the axis
    ]


async def test_every_transfer_is_answered_and_only_valid_ones_reach_the_axis(
    world: AxisWorld,
) -> None:
    w, clock = world, Stopwatch()
    dossiers = [await known_dossier(w, 300 + n) for n in range(DOSSIERS)]
    parts = draw(part_plans(), N_MULTIPART, salt=52)
    cases = [
        *json_cases(dossiers),
        *(multipart_case(10**5 + n, dossiers[n % DOSSIERS], p) for n, p in enumerate(parts)),
        *framing_cases(dossiers[0]),
        *other_cases(dossiers[0]),
    ]
    print(f"drawn in {clock}", flush=True)
    answers = await send_all(w.http, w.base, cases)
    answered(answers, "transfer", clock)

    taken: set[str] = set()
    judged(answers, judge(taken))
    assert taken, "no valid transfer was drawn"

    def on_axis() -> set[str]:
        return {s.document_id.rsplit(",", 1)[-1] for s in w.axis.sent if s.messagetype == "edoc"}

    await eventually(
        lambda: taken <= on_axis(),
        120,
        lambda: f"the transfers on the axis; missing {sorted(taken - on_axis())[:5]}",
    )
    await drained(w.hub)
    assert on_axis() == taken
    assert files_outside(w, taken) == []
