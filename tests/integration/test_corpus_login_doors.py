"""The bad-input corpus at the dashboard's log-in doors: the admin API's JSON log-in
(`POST /api/v1/admin/session`, application/json only) and the log-in form
(`POST /dashboard/login`, a nonce cookie and the same nonce in the form).

A password check costs a quarter second of a core here (argon2), so most cases never reach
it: a password that is no string or is missing, a body too large, another content type, a
body that is no JSON object, a form that is not UTF-8 or a multipart body without boundary, a
nonce missing or not the cookie's, requests no client library sends. A few dozen reach the
check (unknown names, known names with wrong passwords, at most 8 at a time: below the
log-in queue's 16), and a deliberate flood of 24 at once, where the designed answer to the
ones past the queue is 503 `busy`. The deliberately valid log-ins (some with a hostile `next`)
are the only ones that log in: each gets its session and nobody else does, the audit log
counts exactly them, and every redirect stays inside the dashboard.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from hypothesis import strategies as st

from hub.runtime import Hub
from tests.integration.corpus_world import (  # noqa: F401  (product_logging: a fixture)
    INVALID,
    QUOTAS,
    VALID,
    WRONG_TYPES,
    Answer,
    Case,
    Stopwatch,
    Value,
    assert_answered,
    draw,
    judged,
    malformed,
    product_logging,
    raw_request,
    send_all,
    text_values,
)
from tests.integration.dashboard_world import PASSWORDS, USERS, dashboard_world

pytestmark = [pytest.mark.slow, pytest.mark.broker, pytest.mark.usefixtures("product_logging")]

SESSION, FORM = "/api/v1/admin/session", "/dashboard/login"
JSON_TYPE = {"Content-Type": "application/json"}
FORM_TYPE = "application/x-www-form-urlencoded"
NONCE = "n0nce-Abc_123"
NONCE_COOKIE = {"Cookie": f"hub_login={NONCE}"}
VALID_USER = USERS["admin"]  # used by the valid log-ins only: never locked by the others
DECOY = USERS["operator"]  # a known name the wrong passwords go with
N_JSON_CHEAP, N_JSON_MALFORMED, N_FORM_CHEAP, N_FORM_NONCES = 420, 120, 320, 120
N_JSON_HASHED, N_FORM_HASHED, N_FLOOD = 16, 10, 24
FLOOD_DOOR = "admin_login flood (503 busy by design)"  # its own line in the summary
LOGIN_CONCURRENCY = 8  # below the log-in queue's 16 (hub.auth.Checks)
HOSTILE_NEXT = [
    None,
    "/dashboard/dossiers?q=1",
    "//evil.example/dashboard/",
    "https://evil.example/",
    "/dashboard/..//evil.example",
    "/dashboard/\\evil",
    "/dashboard/x\r\nSet-Cookie: hub_session=stolen",
    "/dashboard/x\nLocation: https://evil.example/",
    "/dashboard/\x00",
    "/dashboard/Đơn vị ?q=Trần",
    "javascript:alert(1)",
]


@dataclass(frozen=True)
class Attempt:
    """What a log-in case is: `VALID` must log in, anything else must not."""

    verdict: str
    hashed: bool = False  # reaches the password check


INVALID_TRY = Attempt(INVALID)


@dataclass
class LoginWorld:
    hub: Hub
    base: str
    http: aiohttp.ClientSession


@pytest.fixture
async def world(tmp_path: Path, rabbit_url: str, broker_prefix: str) -> AsyncIterator[LoginWorld]:
    # No delay after a failure here (it only slows guessing down; test_logins.py has it).
    async with (
        dashboard_world(tmp_path, rabbit_url, broker_prefix, failed_login_delay_s=0) as dash,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        yield LoginWorld(dash.hub, dash.base, http)


# -- the JSON log-in ------------------------------------------------------------------------------


def names() -> st.SearchStrategy[Value]:
    """User names: unknown, a known one spelled otherwise, a known one, no string at all."""
    return st.one_of(
        text_values(64, numbers_coerced=False),
        st.builds(
            lambda v: Value(v, INVALID, "known"),
            st.sampled_from(sorted(set(USERS.values()) - {VALID_USER})),
        ),
        st.builds(
            lambda v: Value(v, INVALID, "spelled_otherwise"),
            st.sampled_from([VALID_USER.upper(), f" {VALID_USER}", f"{VALID_USER}\x00", ""]),
        ),
        WRONG_TYPES,
    )


def cheap_passwords() -> st.SearchStrategy[Value]:
    """What stands in `password` and never reaches the check: no string, or left out."""
    return st.one_of(
        WRONG_TYPES,
        st.builds(lambda v: Value(v, INVALID, "number"), st.integers() | st.floats()),
        st.just(Value(None, INVALID, "null")),
        st.just(Value(..., INVALID, "missing")),
        st.booleans().map(lambda v: Value(v, INVALID, "boolean")),
    )


def json_body(user: Any, password: Any, **extra: Any) -> bytes:
    body = {"username": user, **extra}
    if password is not ...:
        body["password"] = password
    return json.dumps(body).encode()


def json_cases() -> list[Case]:
    cases = []
    for user, password, extra in draw(
        st.tuples(names(), cheap_passwords(), st.booleans()), N_JSON_CHEAP, salt=41
    ):
        body = json_body(user.value, password.value, **({"next": "//evil"} if extra else {}))
        cases.append(
            Case(
                "admin_login",
                f"json:{user.kind}:{password.kind}",
                "POST",
                SESSION,
                body,
                JSON_TYPE,
                about=INVALID_TRY,
            )
        )
    valid = json_body(VALID_USER, PASSWORDS["admin"])
    # Around a wrong password: the few that are JSON after all (under a charset the door
    # ignores) cost a check, and none logs in.
    for raw in draw(malformed(json_body(DECOY, "sai")), N_JSON_MALFORMED, salt=42):
        headers = {"Content-Type": raw.content_type} if raw.content_type else {}
        cases.append(
            Case(
                "admin_login",
                f"malformed:{raw.kind}",
                "POST",
                SESSION,
                raw.body,
                headers,
                about=INVALID_TRY,
            )
        )
    wrong = json_body(DECOY, "sai-mat-khau")
    for kind, body, ctype in [
        ("oversized_password", json_body(VALID_USER, "x" * 10_001), "application/json"),
        (
            "oversized",
            json_body(VALID_USER, PASSWORDS["admin"], pad="x" * 10_000),
            "application/json",
        ),
        ("form_type", urlencode({"username": DECOY, "password": "x"}).encode(), FORM_TYPE),
        ("text_type", valid, "text/plain"),
        ("json_suffix", valid, "application/json-patch+json"),
        ("multipart_type", valid, "multipart/form-data; boundary=x"),
    ]:
        headers = {"Content-Type": ctype}
        cases.append(
            Case(
                "admin_login", f"hostile:{kind}", "POST", SESSION, body, headers, about=INVALID_TRY
            )
        )
    typed = [(b"Content-Type", b"application/json")]
    return cases + raw_cases("admin_login", SESSION, wrong, typed)


def raw_cases(door: str, path: str, body: bytes, typed: list[tuple[bytes, bytes]]) -> list[Case]:
    """Requests no client library sends, around a body that would log in otherwise (a wrong
    password, so none of them does)."""
    raws = {
        "header_invalid_utf8": [*typed, (b"X-Note", b"\xff\xfe\xc3(")],
        "content_type_invalid_utf8": [(b"Content-Type", b"application/json; charset=\xff")],
        "cookie_invalid_utf8": [*typed, (b"Cookie", b"hub_login=\xff\xfe; hub_session=\xff")],
        "cookie_nul": [*typed, (b"Cookie", b"hub_login=a\x00b")],
        "many_headers": [*typed, *((b"X-H%d" % i, b"v") for i in range(90))],
        "long_cookie": [*typed, (b"Cookie", b"hub_login=" + b"a" * 7000)],
    }
    cases = [
        Case(door, f"raw:{kind}", "POST", path, raw=raw_request("POST", path, hs, body))
        for kind, hs in raws.items()
    ]
    cases.append(
        Case(
            door,
            "raw:path_invalid_utf8",
            "POST",
            path,
            raw=raw_request("POST", path.encode() + b"?next=\xff\xfe", typed, body),
        )
    )
    for kind, framing in {
        "chunked_garbage": b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        "both_lengths": b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n",
    }.items():
        head = b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        cases.append(Case(door, f"raw:{kind}", "POST", path, raw=head + framing))
    return [Case(c.door, c.kind, c.method, c.path, raw=c.raw, about=INVALID_TRY) for c in cases]


# -- the log-in form ------------------------------------------------------------------------------


def form_cases() -> list[Case]:
    """Forms that never reach the check: a nonce missing or not the cookie's, a password
    missing (a form's fields are all text: with one, the check runs), bodies that are no form."""
    cheap = st.tuples(
        st.sampled_from(["none", "mismatch", "no_cookie", "no_field", "right"]),
        text_values(64, numbers_coerced=True),
        st.booleans(),
    )
    cases = []
    for nonce_kind, user, multipart in draw(cheap, N_FORM_CHEAP, salt=43):
        fields: dict[str, Any] = {"username": user.value, "password": "sai-mat-khau"}
        cookie = dict(NONCE_COOKIE)
        if nonce_kind == "right":
            fields.pop("password")  # …and so no check
            fields["login_nonce"] = NONCE
        elif nonce_kind == "mismatch":
            fields["login_nonce"] = NONCE + "x"
        elif nonce_kind == "no_cookie":
            fields["login_nonce"] = NONCE
            cookie = {}
        elif nonce_kind == "no_field":
            pass
        else:
            cookie = {}
        body, ctype = encode_form(fields, multipart)
        cases.append(
            Case(
                "dashboard_login",
                f"form:{nonce_kind}:{user.kind}",
                "POST",
                FORM,
                body,
                {"Content-Type": ctype, **cookie},
                about=INVALID_TRY,
            )
        )
    nonces = st.one_of(
        text_values(200, numbers_coerced=True).map(lambda v: Value(v.value, INVALID, v.kind)),
        st.just(Value("", INVALID, "empty")),
    )
    for nonce in draw(nonces, N_FORM_NONCES, salt=44):
        fields = {
            "username": VALID_USER,
            "password": PASSWORDS["admin"],
            "login_nonce": nonce.value,
        }
        body, ctype = encode_form(fields, multipart=False)
        cases.append(
            Case(
                "dashboard_login",
                f"nonce:{nonce.kind}",
                "POST",
                FORM,
                body,
                {"Content-Type": ctype, **NONCE_COOKIE},  # the cookie is NONCE: never this one
                about=INVALID_TRY,
            )
        )
    return cases + hostile_forms()


def encode_form(fields: dict[str, Any], multipart: bool) -> tuple[bytes, str]:
    """A form as a browser (or a forger) sends it; values that are no text as their JSON."""
    text = {
        k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items() if v is not None
    }
    if not multipart:
        return urlencode(text, encoding="utf-8", errors="surrogatepass").encode(), FORM_TYPE
    boundary = "----corpus7MA4YWxkTrZu0gW"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
        + v.encode("utf-8", "surrogatepass")
        + b"\r\n"
        for k, v in text.items()
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def hostile_forms() -> list[Case]:
    nonce = b"login_nonce=" + NONCE.encode()
    cookie = f"hub_login={NONCE}"
    bodies: dict[str, tuple[bytes, str]] = {
        "form_invalid_utf8": (nonce + b"&username=\xff\xfe&password=x", FORM_TYPE),
        "form_surrogate_escape": (nonce + b"&username=%ED%A0%80", FORM_TYPE),
        "form_percent_garbage": (nonce + b"&username=%zz%&password", FORM_TYPE),
        "multipart_no_boundary": (b"--x\r\n\r\n", "multipart/form-data"),
        "multipart_empty_boundary": (b"--x\r\n", "multipart/form-data; boundary="),
        "multipart_bad_boundary": (b"--y\r\ngarbage", "multipart/form-data; boundary=x"),
        "multipart_unclosed": (
            b'--x\r\nContent-Disposition: form-data; name="login_nonce"\r\n\r\n' + NONCE.encode(),
            "multipart/form-data; boundary=x",
        ),
        "multipart_password_file": (
            b'--x\r\nContent-Disposition: form-data; name="login_nonce"\r\n\r\n'
            + NONCE.encode()
            + b'\r\n--x\r\nContent-Disposition: form-data; name="username"\r\n\r\n'
            + DECOY.encode()
            + b'\r\n--x\r\nContent-Disposition: form-data; name="password"; filename="p.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\n" + PASSWORDS["admin"].encode() + b"\r\n--x--\r\n",
            "multipart/form-data; boundary=x",
        ),
        "multipart_header_control": (
            b'--x\r\nContent-Disposition: form-data; name="login_nonce\x1b"\r\n\r\n'
            + NONCE.encode()
            + b"\r\n--x--\r\n",
            "multipart/form-data; boundary=x",
        ),
        "multipart_header_invalid_utf8": (
            b'--x\r\nContent-Disposition: form-data; name="\xff\xfe"\r\n\r\nx\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
        ),
        "json_body": (json_body(DECOY, "x", login_nonce=NONCE), "application/json"),
        "huge_form": (nonce + b"&username=" + b"a" * 3_000_000, FORM_TYPE),
        "many_fields": (nonce + b"&" + b"&".join(b"f%d=v" % i for i in range(20_000)), FORM_TYPE),
    }
    cases = [
        Case(
            "dashboard_login",
            f"hostile:{kind}",
            "POST",
            FORM,
            body,
            {"Content-Type": ctype, "Cookie": cookie},
            about=INVALID_TRY,
        )
        for kind, (body, ctype) in bodies.items()
    ]
    wrong = nonce + b"&username=" + DECOY.encode() + b"&password=sai"
    typed = [(b"Content-Type", FORM_TYPE.encode()), (b"Cookie", cookie.encode())]
    return cases + raw_cases("dashboard_login", FORM, wrong, typed)


# -- the checks that cost a hash ------------------------------------------------------------------


def hashed_cases() -> list[Case]:
    """Log-ins that reach the password check: wrong ones, and the deliberately valid ones."""
    wrong = st.tuples(
        st.sampled_from(["nobody", "admin", USERS["viewer"], USERS["operator"], "Đức"]),
        text_values(1000, numbers_coerced=False).filter(lambda v: isinstance(v.value, str)),
    )
    cases = []
    for n, (user, password) in enumerate(draw(wrong, N_JSON_HASHED + N_FORM_HASHED, salt=45)):
        if n < N_JSON_HASHED:
            body, path, headers = json_body(user, password.value), SESSION, JSON_TYPE
            door = "admin_login"
        else:
            fields = {"username": user, "password": password.value, "login_nonce": NONCE}
            body, ctype = encode_form(fields, multipart=n % 2 == 0)
            path, headers, door = FORM, {"Content-Type": ctype, **NONCE_COOKIE}, "dashboard_login"
        kind = f"hashed:{password.kind}"
        hashed = Attempt(INVALID, hashed=True)
        cases.append(Case(door, kind, "POST", path, body, headers, about=hashed))
    right = Attempt(VALID, hashed=True)
    for n in range(4):
        body = json_body(VALID_USER, PASSWORDS["admin"], **({"extra": n} if n else {}))
        cases.append(
            Case("admin_login", "valid:json", "POST", SESSION, body, JSON_TYPE, about=right)
        )
    for n, nxt in enumerate(HOSTILE_NEXT):
        fields = {"username": VALID_USER, "password": PASSWORDS["admin"], "login_nonce": NONCE}
        if nxt is not None:
            fields["next"] = nxt
        body, ctype = encode_form(fields, multipart=n % 2 == 1)
        headers = {"Content-Type": ctype, **NONCE_COOKIE}
        cases.append(
            Case("dashboard_login", "valid:form", "POST", FORM, body, headers, about=right)
        )
    return cases


def flood_cases() -> list[Case]:
    """More log-ins at once than the queue holds: the ones past it are turned away (503)."""
    return [
        Case(
            FLOOD_DOOR,
            "flood:wrong",
            "POST",
            SESSION,
            json_body(f"flood{n}", "sai"),
            JSON_TYPE,
            about=Attempt(INVALID, hashed=True),
        )
        for n in range(N_FLOOD)
    ]


# -- judging --------------------------------------------------------------------------------------


def judge(logged_in: list[Answer]) -> Callable[[Answer], str | None]:
    def judge_one(a: Answer) -> str | None:
        attempt: Attempt = a.case.about
        status = a.status
        if status is None or (status >= 500 and not (status == 503 and flood(a))):
            return f"HTTP {status}: {a.body[:200]!r}"
        success = (a.case.path == SESSION and status == 200) or (
            a.case.path == FORM and status == 303
        )
        if success:
            logged_in.append(a)
        if attempt.verdict == VALID and not success:
            return f"a valid log-in refused: HTTP {status} {a.body[:200]!r}"
        if attempt.verdict != VALID and success:
            return f"logged in: HTTP {status} {a.headers}"
        if success and a.case.path == FORM:
            return unsafe_redirect(a.headers.get("Location", ""))
        if not success and a.case.path == SESSION and a.body[:1] == b"{":
            reply = a.json()
            if not (reply.get("error") and reply.get("message")):
                return f"a refusal without its error and message: {reply}"
        return None

    return judge_one


def flood(a: Answer) -> bool:
    return a.case.kind.startswith("flood:") and b"busy" in a.body


def unsafe_redirect(location: str) -> str | None:
    ok = location.startswith("/dashboard/") and "//" not in location and "\\" not in location
    return None if ok and location.isprintable() else f"redirected to {location!r}"


async def logins_audited(hub: Hub) -> int:
    assert hub.store is not None
    return sum(1 for e in await hub.store.audit_entries(10_000) if e.action == "login")


async def test_only_the_valid_log_ins_log_in_and_every_case_is_answered(
    world: LoginWorld,
) -> None:
    w, clock = world, Stopwatch()
    cheap = [*json_cases(), *form_cases()]
    hashed = hashed_cases()
    print(f"drawn in {clock}", flush=True)
    answers = await send_all(w.http, w.base, cheap, concurrency=16)
    answers += await send_all(w.http, w.base, hashed, concurrency=LOGIN_CONCURRENCY)
    answers += await send_all(w.http, w.base, flood_cases(), concurrency=N_FLOOD)  # on purpose
    print(f"log-ins: {len(answers)} cases answered in {clock}")
    assert_answered([a for a in answers if not flood(a)])
    for door in ("admin_login", "dashboard_login"):
        assert sum(a.case.door == door for a in answers) >= QUOTAS[door]

    logged_in: list[Answer] = []
    judged(answers, judge(logged_in))
    valid = [a for a in answers if a.case.about.verdict == VALID]
    assert len(logged_in) == len(valid) == 4 + len(HOSTILE_NEXT)
    assert sum(a.status == 503 for a in answers if flood(a)) >= 1, "the flood met the queue"
    # Each of them, and nobody else, logged in: the audit log counts exactly them.
    assert await logins_audited(w.hub) == len(valid)
    # The doors still take a valid log-in after all that.
    async with w.http.post(
        w.base + SESSION, json={"username": VALID_USER, "password": PASSWORDS["admin"]}
    ) as r:
        assert r.status == 200, await r.text()
