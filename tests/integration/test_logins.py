"""Log-ins as an attacker tries them (issue 18): concurrent guesses cannot slip past a lock,
nobody can lock an administrator out from elsewhere, a refusal tells nothing about which
names exist, and the facade's log-in is locked the same way."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from hub.auth import Checks, LoginsBusy, hash_password
from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from tests.integration.dashboard_world import PASSWORDS, USERS, DashboardWorld
from tests.support import (
    ONESTOP_PASSWORD,
    ONESTOP_USER,
    PORTAL_PASSWORD,
    PORTAL_USER,
    hub_overrides,
)
from tests.support.serving import post_from

SESSION = "/api/v1/admin/session"


async def test_concurrent_guesses_leave_the_name_locked_for_that_client(
    dash: DashboardWorld,
) -> None:
    url = f"{dash.base}{SESSION}"
    wrong = {"username": USERS["admin"], "password": "doan-mo"}
    right = {"username": USERS["admin"], "password": PASSWORDS["admin"]}
    replies = await asyncio.gather(
        *(post_from("127.0.0.3", url, wrong) for _ in range(39)),
        post_from("127.0.0.3", url, right),
    )
    statuses = [s for s, _ in replies]
    assert set(statuses) <= {200, 401, 429}, statuses
    assert statuses.count(200) <= 1
    # Whatever the order, 39 wrong guesses leave it locked for this client: even the password.
    status, reply = await post_from("127.0.0.3", url, right)
    assert (status, reply["error"]) == (429, "locked")
    # The administrator, elsewhere, is not locked out by it.
    status, reply = await post_from("127.0.0.4", url, right)
    assert status == 200, reply


async def test_a_log_in_posted_as_text_or_a_form_is_refused_without_a_session(
    dash: DashboardWorld,
) -> None:
    """A page on another site can post text/plain or a form without a CORS preflight: such a
    log-in would put the victim's browser in the attacker's session (login CSRF)."""
    url = f"{dash.base}{SESSION}"
    right = {"username": USERS["admin"], "password": PASSWORDS["admin"]}
    as_text = json.dumps(right)
    async with aiohttp.ClientSession() as http:
        for data, ctype in (
            (as_text, "text/plain"),
            (as_text, "text/plain; charset=utf-8"),
            ("username=admin1&password=x", "application/x-www-form-urlencoded"),
        ):
            async with http.post(url, data=data, headers={"Content-Type": ctype}) as r:
                assert (r.status, (await r.json())["error"]) == (415, "bad_content_type"), ctype
                assert "Set-Cookie" not in r.headers
        async with http.post(url, json=right) as r:
            assert r.status == 200
            assert "Set-Cookie" in r.headers


async def test_an_unknown_name_is_locked_like_a_known_one(dash: DashboardWorld) -> None:
    url = f"{dash.base}{SESSION}"
    seen: dict[str, list[int]] = {}
    for name in (USERS["viewer"], "khong-co-ai"):
        body = {"username": name, "password": "sai"}
        seen[name] = [(await post_from("127.0.0.5", url, body))[0] for _ in range(4)]
    assert seen[USERS["viewer"]] == seen["khong-co-ai"] == [401, 401, 429, 429]


async def test_the_facade_login_is_locked_per_name_and_client(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim:
        tree = hub_overrides(tmp_path, rabbit_url, broker_prefix, sim.url)
        async with Hub(load_config(None, tree)) as hub:
            url = f"http://127.0.0.1:{hub.port}/dvcqg"
            wrong = {"username": ONESTOP_USER, "password": "sai"}
            codes = [await post_from("127.0.0.6", url, wrong) for _ in range(6)]
            assert [s for s, _ in codes] == [401, 401, 401, 401, 429, 429]
            assert {r["error_code"] for _, r in codes} == {-1}
            right = {"username": ONESTOP_USER, "password": ONESTOP_PASSWORD}
            assert (await post_from("127.0.0.6", url, right))[0] == 429
            status, reply = await post_from("127.0.0.7", url, right)  # another address
            assert (status, reply["error_code"]) == (200, 0)
            # An unknown name: refused alike, and locked alike.
            ghost = {"username": "khong-co-ai", "password": "sai"}
            ghosts = [(await post_from("127.0.0.8", url, ghost))[0] for _ in range(6)]
            assert ghosts == [401, 401, 401, 401, 429, 429]


async def test_a_flood_of_log_ins_is_turned_away_before_it_is_hashed() -> None:
    """At most `parallel` checks run; past `max_waiting` waiting, a log-in is refused at once."""
    checks = Checks(parallel=1, max_waiting=4)
    stored = hash_password("mat-khau")
    outcomes = await asyncio.gather(
        *(checks.verify(stored, "sai") for _ in range(12)), return_exceptions=True
    )
    busy = [o for o in outcomes if isinstance(o, LoginsBusy)]
    assert len(busy) == 12 - 4
    assert [o for o in outcomes if not isinstance(o, LoginsBusy)] == [False] * 4
    assert await checks.verify(stored, "mat-khau") is True  # the queue drained
    assert checks.waiting == 0


async def test_hostile_log_in_requests_are_refused_never_a_500(dash: DashboardWorld) -> None:
    """What a log-in door got from no browser: a name no UTF-8 store can keep, a form that is
    not UTF-8 or a multipart body without its boundary, a log-in cookie that is not UTF-8."""
    form = "application/x-www-form-urlencoded"
    page, json_type = "/dashboard/login", {"Content-Type": "application/json"}
    nonce = {"Cookie": "hub_login=n"}
    multipart = {"Content-Type": "multipart/form-data", **nonce}
    calls: list[tuple[str, bytes, dict[str, str], int]] = [
        (SESSION, b'{"username": "a\\ud800", "password": "x"}', json_type, 401),
        (page, b"garbage", multipart, 400),
        (page, b"--x\r\n", {**multipart, "Content-Type": "multipart/form-data; boundary="}, 400),
        (  # a part's header no parser takes (found by test_corpus_login_doors.py)
            page,
            b'--x\r\nContent-Disposition: form-data; name="a\x1b"\r\n\r\nx\r\n--x--\r\n',
            {**multipart, "Content-Type": "multipart/form-data; boundary=x"},
            400,
        ),
        (page, b"login_nonce=n&username=\xff&password=x", {"Content-Type": form, **nonce}, 400),
        (
            page,
            b"login_nonce=n&username=%ED%A0%80&password=x",
            {"Content-Type": form, **nonce},
            401,
        ),
    ]
    async with aiohttp.ClientSession() as http:
        for path, body, headers, status in calls:
            async with http.post(dash.base + path, data=body, headers=headers) as r:
                assert r.status == status, (path, body, await r.text())
    # A log-in cookie that is not UTF-8 (aiohttp will not send one: a socket of its own).
    host, port = dash.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = b"login_nonce=%C3%BF&username=a&password=b"
    writer.write(
        b"POST /dashboard/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: " + form.encode() + b"\r\nCookie: hub_login=\xff\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    reply = await reader.read()
    writer.close()
    assert reply.startswith(b"HTTP/1.1 403"), reply[:200]
    assert (await (await dash.operator("viewer")).call("GET", "/api/v1/admin/overview"))[0] == 200


async def test_an_unreadable_form_from_a_logged_in_operator_is_refused_never_a_500(
    dash: DashboardWorld,
) -> None:
    """Every dashboard form, not only the log-in: a body no parser reads has no CSRF token."""
    admin = await dash.operator("admin")
    bodies: list[tuple[bytes, str]] = [
        (b"garbage", "multipart/form-data"),
        (b"--x\r\n", "multipart/form-data; boundary="),
        (
            b'--x\r\nContent-Disposition: form-data; name="a\x1b"\r\n\r\nx\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
        ),
        (b"csrf_token=\xff", "application/x-www-form-urlencoded"),
    ]
    for path in ("/dashboard/connectors/national_portal/pause", "/dashboard/bulk-actions"):
        for body, ctype in bodies:
            async with admin.http.post(
                dash.base + path, data=body, headers={"Content-Type": ctype}
            ) as r:
                assert r.status == 403, (path, body, await r.text())
