"""The admin API for every action and every role, and the pages behind it, against a real hub
(RabbitMQ, DVCQG's simulator): log-in and lock-out, CSRF, roles, dead letters replayed,
discarded and gone, dossier search and timeline, bad and malicious input, the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.dashboard_world import (
    PASSWORDS,
    USERS,
    DashboardWorld,
    Session,
    record_event,
)
from tests.support import eventually
from tests.support.parking import in_place

CODE = "000.00.41.H41-261123-{:04d}"


async def audit_actions(dash: DashboardWorld) -> list[tuple[str, str]]:
    admin = await dash.operator("admin")
    status, reply = await admin.call("GET", "/api/v1/admin/audit?limit=500")
    assert status == 200
    return [(e["actor"], e["action"]) for e in reply["items"]]


async def test_log_in_lock_out_unlock_and_log_out(dash: DashboardWorld) -> None:
    anon = await dash.client()
    assert (await anon.call("GET", "/api/v1/admin/overview"))[0] == 401
    assert (await anon.call("GET", "/dashboard/"))[0] == 200  # the log-in page, after redirect

    wrong = {"username": USERS["operator"], "password": "not-it"}
    for _ in range(2):
        status, reply = await anon.call("POST", "/api/v1/admin/session", wrong)
        assert (status, reply["error"]) == (401, "bad_credentials")
    status, reply = await anon.call("POST", "/api/v1/admin/session", wrong)  # the third locks
    assert (status, reply["error"]) == (429, "locked")
    right = {"username": USERS["operator"], "password": PASSWORDS["operator"]}
    status, reply = await anon.call("POST", "/api/v1/admin/session", right)
    assert (status, reply["error"]) == (429, "locked")  # even the right password
    status, reply = await anon.call("POST", "/api/v1/admin/session", {"username": "nobody"})
    assert (status, reply["error"]) == (401, "bad_credentials")
    status, _ = await anon.call("POST", "/api/v1/admin/session", {"username": ["x"], "password": 1})
    assert status == 401

    viewer = await dash.operator("viewer")
    status, reply = await viewer.call("POST", f"/api/v1/admin/users/{USERS['operator']}/unlock")
    assert (status, reply["error"]) == (403, "forbidden")
    admin = await dash.operator("admin")
    status, users = await admin.call("GET", "/api/v1/admin/users")
    assert {u["name"]: u["locked"] for u in users["items"]}[USERS["operator"]] is True
    assert (await admin.call("POST", "/api/v1/admin/users/ghost/unlock"))[0] == 404
    status, _ = await admin.call("POST", f"/api/v1/admin/users/{USERS['operator']}/unlock")
    assert status == 200
    operator = await dash.operator("operator")  # unlocked: logs in again
    assert (await operator.call("GET", "/api/v1/admin/overview"))[0] == 200

    assert (await operator.call("DELETE", "/api/v1/admin/session", csrf="forged"))[0] == 403
    assert (await operator.call("DELETE", "/api/v1/admin/session"))[0] == 204
    assert (await operator.call("GET", "/api/v1/admin/overview"))[0] == 401

    actions = await audit_actions(dash)
    assert actions.count((USERS["operator"], "login.failed")) == 3
    assert (USERS["operator"], "login.refused") in actions
    assert ("nobody", "login.failed") in actions
    assert (USERS["viewer"], "denied") in actions
    assert (USERS["admin"], "user.unlock") in actions
    assert (USERS["operator"], "logout") in actions


async def parked_in_place(dash: DashboardWorld, count: int) -> None:
    """Wait until DVCQG's parking queue holds `count` messages again: the dead-letter routes
    browse and act on it by taking its messages, and what they put back returns
    asynchronously, so the next call could find fewer."""
    portal = dash.hub.connector("national_portal")
    assert portal is not None
    assert portal.queues is not None
    assert dash.hub.broker is not None
    await in_place(dash.hub.broker, portal.queues.parking, count)


async def park_two(dash: DashboardWorld, operator: Session) -> list[dict[str, Any]]:
    """Two dossiers DVCQG refuses for good: parked in the national_portal parking queue."""
    codes = [CODE.format(1), CODE.format(2)]
    dash.sim.faults.reject = dict.fromkeys(codes, "05")
    now = datetime.now(UTC) - timedelta(minutes=1)
    await dash.post_events([record_event(c, f"ev-{c}", "accepted", now) for c in codes])
    found: list[dict[str, Any]] = []

    async def parked() -> bool:
        status, reply = await operator.call(
            "GET", "/api/v1/admin/dead-letters?connector=national_portal"
        )
        found[:] = reply["items"] if status == 200 else []
        return len(found) == 2

    await eventually(parked, 30, lambda: f"two dossiers parked, found {found}")
    await parked_in_place(dash, 2)
    return found


async def test_dead_letters_replayed_discarded_and_gone_by_role(dash: DashboardWorld) -> None:
    operator = await dash.operator("operator")
    viewer = await dash.operator("viewer")
    parked = await park_two(dash, operator)
    first, second = parked
    assert {p["dossier_code"] for p in parked} == {CODE.format(1), CODE.format(2)}

    # Inspect: the body is shown with personal data masked. (Each call below that reads or
    # acts on the parking queue waits until the previous one put every message back.)
    status, message = await viewer.call(
        "GET", f"/api/v1/admin/dead-letters/national_portal/{first['message_id']}"
    )
    assert status == 200
    assert message["body"]["dossier_code"] == first["dossier_code"]
    await parked_in_place(dash, 2)
    assert (await viewer.call("GET", "/api/v1/admin/dead-letters/national_portal/nope"))[0] == 404
    assert (await viewer.call("GET", "/api/v1/admin/dead-letters?connector=nope"))[0] == 404

    # Filters: by reason and by time; a bad time is a 400.
    path = "/api/v1/admin/dead-letters?connector=national_portal"
    assert len((await viewer.call("GET", f"{path}&reason=no-such-reason"))[1]["items"]) == 0
    reason = first["reason"].split()[0]
    await parked_in_place(dash, 2)
    assert len((await viewer.call("GET", f"{path}&reason={reason}"))[1]["items"]) == 2
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    await parked_in_place(dash, 2)
    assert (await viewer.call("GET", f"{path}&since={future}"))[1]["items"] == []
    await parked_in_place(dash, 2)
    assert (await viewer.call("GET", f"{path}&until={future}"))[1]["items"] != []
    assert (await viewer.call("GET", f"{path}&since=yesterday"))[0] == 400

    ids = {"message_ids": [first["message_id"]]}
    replay = "/api/v1/admin/dead-letters/national_portal/replay"
    # A viewer is refused; so is an operator without or with a forged CSRF token.
    status, reply = await viewer.call("POST", replay, ids)
    assert (status, reply["error"]) == (403, "forbidden")
    status, reply = await operator.call("POST", replay, ids, csrf="")
    assert (status, reply["error"]) == (403, "csrf")
    status, reply = await operator.call("POST", replay, ids, csrf=viewer.csrf)
    assert (status, reply["error"]) == (403, "csrf")
    assert (await operator.call("POST", replay, {"message_ids": "x"}))[0] == 400
    assert (await operator.call("POST", replay, {"message_ids": ["\x00"]}))[0] == 400
    await parked_in_place(dash, 2)
    assert len((await viewer.call("GET", path))[1]["items"]) == 2  # nothing was done

    # The operator replays the first once DVCQG accepts it: it is delivered.
    dash.sim.faults.reject = {second["dossier_code"]: "05"}
    await parked_in_place(dash, 2)
    status, reply = await operator.call(
        "POST", replay, {"message_ids": [first["message_id"], "gone-id"]}
    )
    assert status == 200
    assert reply == {"done": [first["message_id"]], "missing": ["gone-id"]}
    await eventually(
        lambda: first["dossier_code"] in dash.sim.dossiers, 30, "the replayed dossier at DVCQG"
    )

    # Discard the second; replaying it afterwards finds nothing: 404 gone, audited.
    discard = "/api/v1/admin/dead-letters/national_portal/discard"
    await parked_in_place(dash, 1)
    status, reply = await operator.call("POST", discard, {"message_ids": [second["message_id"]]})
    assert status == 200
    assert reply["done"] == [second["message_id"]]
    status, reply = await operator.call("POST", replay, {"message_ids": [second["message_id"]]})
    assert (status, reply["error"]) == (404, "gone")
    assert (await operator.call("POST", "/api/v1/admin/dead-letters/national_portal/eat", ids))[
        0
    ] == 404
    assert (await viewer.call("GET", path))[1]["items"] == []
    assert second["dossier_code"] not in dash.sim.dossiers

    # The first dossier's timeline: received, mapped, queued, parked, replayed, delivered.
    status, dossier = await viewer.call("GET", f"/api/v1/admin/dossiers/{first['dossier_code']}")
    kinds = [h["kind"] for h in dossier["timeline"]]
    for kind in ("received", "mapped", "queued", "refused", "parked", "replayed", "delivered"):
        assert kind in kinds, kinds
    # Newest first.
    assert kinds.index("delivered") < kinds.index("replayed") < kinds.index("parked")
    assert dossier["portal_confirmed"] is True
    received = next(h for h in dossier["timeline"] if h["kind"] == "received")
    shown = str(received["payload"])
    assert "0912345678" not in shown
    assert "Nguyễn Văn An" not in shown

    actions = await audit_actions(dash)
    op = USERS["operator"]
    assert (op, "dlq.replay") in actions
    assert (op, "dlq.discard") in actions
    assert (op, "dlq.replay.missing") in actions
    assert actions.count((op, "denied")) == 2  # the two CSRF refusals
    assert (USERS["viewer"], "denied") in actions


async def test_search_timeline_and_malicious_input(dash: DashboardWorld) -> None:
    viewer = await dash.operator("viewer")
    at = datetime.now(UTC) - timedelta(minutes=5)
    codes = [CODE.format(i) for i in range(10, 14)]
    await dash.post_events([record_event(c, f"ev-{c}", "accepted", at) for c in codes])
    await eventually(
        lambda: all(c in dash.sim.dossiers for c in codes), 30, "the four dossiers at DVCQG"
    )

    status, reply = await viewer.call("GET", "/api/v1/admin/dossiers?q=000.00.41.H41-261123-001")
    assert status == 200
    assert [i["code"] for i in reply["items"]] == codes
    for nasty in ("<script>alert(1)</script>", "' OR 1=1 --", "%' OR '1'='1", "000.00.41.H41-26%"):
        status, reply = await viewer.call("GET", "/api/v1/admin/dossiers?" + _q(nasty))
        assert (status, reply["items"]) == (200, [])
    for bad in ("", "x" * 65, "\x00abc"):
        status, reply = await viewer.call("GET", "/api/v1/admin/dossiers?" + _q(bad))
        assert (status, reply["error"]) == (400, "bad_query")
    status, reply = await viewer.call("GET", "/api/v1/admin/dossiers/000.00.41.H41-000000-9999")
    assert (status, reply["error"]) == (404, "unknown_dossier")

    # The pages escape what was typed, and say so clearly.
    status, html = await viewer.call(
        "GET", "/dashboard/dossiers?" + _q("<script>alert(1)</script>")
    )
    assert status == 200
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;" in html
    status, html = await viewer.call("GET", "/dashboard/dossiers/000.00.41.H41-000000-9999")
    assert status == 404
    assert 'data-testid="not-found"' in html
    status, html = await viewer.call("GET", "/dashboard/dossiers?" + _q(codes[0]))
    assert status == 200
    assert 'data-testid="timeline"' in html
    assert "0912345678" not in html

    # The timeline speaks the page's language: no English label or detail under Vietnamese.
    status, html = await viewer.call("GET", f"/dashboard/dossiers/{codes[0]}?lang=vi")
    assert status == 200
    assert "Sự kiện hồ sơ" in html
    assert "Được tiếp nhận" in html  # the mapped status in words
    assert f"Mã sự kiện ev-{codes[0]}" in html
    assert "Trục tích hợp" in html  # the hub as an actor, by name
    for english in ("record event", "happened", "queued for delivery", "accepted<"):
        assert english not in html, english

    async def delivery_in_words() -> str | None:
        _, page = await viewer.call("GET", f"/dashboard/dossiers/{codes[0]}?lang=vi")
        return str(page) if "phiên bản 1" in page else None

    html = await eventually(delivery_in_words, 30, "DVCQG's delivery on the timeline, in words")
    assert "version 1" not in html.replace("<code>version 1</code>", "")  # only in the details
    status, html = await viewer.call("GET", f"/dashboard/dossiers/{codes[0]}?lang=en")
    assert "record event" in html
    assert "Integration hub" in html


def _q(text: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"q": text})


async def test_every_page_and_route_by_role(dash: DashboardWorld) -> None:
    at = datetime.now(UTC) - timedelta(minutes=1)
    await dash.post_events([record_event(CODE.format(20), "ev-p", "accepted", at)])
    await eventually(lambda: CODE.format(20) in dash.sim.dossiers, 30, "the dossier at DVCQG")
    sessions = {role: await dash.operator(role) for role in PASSWORDS}
    pages = [
        "/dashboard/",
        "/dashboard/connectors/national_portal",
        "/dashboard/dossiers",
        "/dashboard/dead-letters",
        "/dashboard/procedures",
        "/dashboard/payments",
        "/dashboard/ministries",
        "/dashboard/vdxp",
    ]
    api = [
        "/api/v1/admin/overview",
        "/api/v1/admin/connectors/national_portal",
        "/api/v1/admin/dead-letters",
        "/api/v1/admin/procedures",
        "/api/v1/admin/payments",
        "/api/v1/admin/ministries",
        "/api/v1/admin/vdxp",
    ]
    for role, session in sessions.items():
        for path in pages + api:
            status, _ = await session.call("GET", path)
            assert status == 200, (role, path, status)
        audit_ok = role != "viewer"
        assert (await session.call("GET", "/dashboard/audit"))[0] == (200 if audit_ok else 403)
        assert (await session.call("GET", "/api/v1/admin/audit"))[0] == (200 if audit_ok else 403)
        users_ok = role == "admin"
        assert (await session.call("GET", "/dashboard/users"))[0] == (200 if users_ok else 403)
        assert (await session.call("GET", "/api/v1/admin/users"))[0] == (200 if users_ok else 403)
    viewer = sessions["viewer"]
    assert (await viewer.call("GET", "/api/v1/admin/connectors/nope"))[0] == 404
    assert (await viewer.call("GET", "/api/v1/admin/connectors/national_portal?hours=x"))[0] == 400
    status, overview = await viewer.call("GET", "/api/v1/admin/overview")
    card = next(c for c in overview["connectors"] if c["name"] == "national_portal")
    assert card["state"] == "up"
    assert card["queue_depth"] == 0
    assert card["dead_letters"] == 0
    assert card["last_success_at"] is not None
    assert card["throughput_per_min"] > 0
    assert overview["completeness"] == {
        "dossiers": 1,
        "confirmed": 1,
        "unconfirmed": 0,
        "ratio": 1.0,
        "min_ratio": 0.95,  # alerts.completeness_min_ratio's default
        "below_min": False,
    }

    # Vietnamese by default, English on request (and remembered).
    status, html = await viewer.call("GET", "/dashboard/")
    assert '<html lang="vi">' in html
    assert "Tổng quan" in html
    status, html = await viewer.call("GET", "/dashboard/?lang=en")
    assert '<html lang="en">' in html
    assert "Overview" in html
    status, html = await viewer.call("GET", "/dashboard/payments")
    assert '<html lang="en">' in html
    assert 'data-testid="flow-off"' in html


# -- connector states, outages and pauses --------------------------------------------------------

OVERVIEW = "/api/v1/admin/overview"
PAUSE = "/api/v1/admin/connectors/national_portal/pause"
RESUME = "/api/v1/admin/connectors/national_portal/resume"


async def portal_card(session: Session) -> dict[str, Any]:
    status, overview = await session.call("GET", OVERVIEW)
    assert status == 200, overview
    card: dict[str, Any] = next(c for c in overview["connectors"] if c["name"] == "national_portal")
    return card


async def page_form(session: Session, path: str, form: dict[str, str]) -> tuple[int, str]:
    """POST a dashboard form as a browser does (redirects followed): status and page."""
    async with session.http.post(f"{session.base}{path}", data=form) as r:
        return r.status, await r.text()


async def test_an_operator_pauses_and_resumes_a_connector(dash: DashboardWorld) -> None:
    operator = await dash.operator("operator")
    viewer = await dash.operator("viewer")
    assert (await portal_card(viewer))["state"] == "up"

    # Refused before anything is done: a viewer (by role), an operator without the CSRF
    # token; an unknown connector and a reason that is not one short line are bad input.
    status, reply = await viewer.call("POST", PAUSE, {"reason": "viewer tries"})
    assert (status, reply["error"]) == (403, "forbidden")
    status, reply = await operator.call("POST", PAUSE, {"reason": "no token"}, csrf="")
    assert (status, reply["error"]) == (403, "csrf")
    status, reply = await operator.call("POST", "/api/v1/admin/connectors/nope/pause")
    assert (status, reply["error"]) == (404, "unknown_connector")
    for bad in ({"reason": "x" * 201}, {"reason": "a\x00b"}, {"reason": 7}):
        status, reply = await operator.call("POST", PAUSE, bad)
        assert (status, reply["error"]) == (400, "bad_body"), bad
    status, html = await page_form(
        viewer,
        "/dashboard/connectors/national_portal/pause",
        {"csrf_token": viewer.csrf, "reason": "viewer tries the form"},
    )
    assert status == 403
    assert (await portal_card(viewer))["state"] == "up"
    status, html = await viewer.call("GET", "/dashboard/connectors/national_portal")
    assert 'data-testid="pause-form"' not in html  # viewers see no buttons
    status, html = await operator.call("GET", "/dashboard/connectors/national_portal")
    assert 'data-testid="pause"' in html

    # Paused: the state says by whom and why, since when; a dossier waits, not delivered.
    status, reply = await operator.call("POST", PAUSE, {"reason": "bảo trì theo lịch"})
    assert (status, reply) == (
        200,
        {"connector": "national_portal", "state": "paused", "changed": True},
    )
    card = await portal_card(viewer)
    assert card["state"] == "paused"
    assert card["reason"] == f"paused by {USERS['operator']}: bảo trì theo lịch"
    assert card["since"] is not None
    code = CODE.format(40)
    at = datetime.now(UTC) - timedelta(minutes=1)
    await dash.post_events([record_event(code, f"ev-{code}", "accepted", at)])

    async def waiting() -> bool:
        return ((await portal_card(viewer))["queue_depth"] or 0) >= 1

    await eventually(waiting, 30, "a dossier waiting in the paused queue")
    assert code not in dash.sim.dossiers
    status, html = await operator.call("GET", "/dashboard/connectors/national_portal")
    assert 'class="badge state-paused"' in html
    assert "bảo trì theo lịch" in html
    assert 'data-testid="resume"' in html
    status, reply = await operator.call("POST", PAUSE)  # no body: again, nothing changes
    assert (status, reply["changed"], reply["state"]) == (200, False, "paused")

    # Resumed from the connector page's form: the dossier goes on to DVCQG.
    status, html = await page_form(
        operator,
        "/dashboard/connectors/national_portal/resume",
        {"csrf_token": operator.csrf, "reason": "xong"},
    )
    assert status == 200
    assert 'data-testid="flash"' in html
    assert 'class="badge state-up"' in html
    await eventually(lambda: code in dash.sim.dossiers, 30, "the dossier at DVCQG once resumed")
    assert (await portal_card(viewer))["state"] == "up"
    status, reply = await operator.call("POST", RESUME, {})
    assert (status, reply["changed"], reply["state"]) == (200, False, "up")

    actions = await audit_actions(dash)
    op = USERS["operator"]
    assert actions.count((op, "connector.pause")) == 1
    assert actions.count((op, "connector.resume")) == 1
    assert actions.count((USERS["viewer"], "denied")) == 2  # the API and the form
    assert actions.count((op, "denied")) == 1  # the missing CSRF token


async def test_a_dvcqg_outage_is_down_with_its_reason_then_an_ended_outage(
    dash: DashboardWorld,
) -> None:
    viewer = await dash.operator("viewer")
    dash.sim.faults.mode = "http_503"
    at = datetime.now(UTC) - timedelta(minutes=1)
    codes = [CODE.format(i) for i in range(50, 54)]
    await dash.post_events([record_event(c, f"ev-{c}", "accepted", at) for c in codes])
    card: dict[str, Any] = {}

    async def state_is(state: str) -> bool:
        card.update(await portal_card(viewer))
        return bool(card["state"] == state)

    await eventually(lambda: state_is("down"), 30, lambda: f"DVCQG down on its card: {card}")
    assert "HTTP 503" in card["reason"]
    assert card["since"] is not None
    assert card["outage"] is not None
    assert card["outage"]["ended_at"] is None
    assert card["dead_letters"] == 0  # an outage parks nothing
    status, html = await viewer.call("GET", "/dashboard/connectors/national_portal")
    assert 'class="badge state-down"' in html
    assert 'data-testid="outage" data-ended="no"' in html

    dash.sim.faults.mode = "ok"
    await eventually(lambda: state_is("up"), 30, lambda: f"DVCQG up on its card: {card}")
    await eventually(
        lambda: all(c in dash.sim.dossiers for c in codes), 30, "the four dossiers at DVCQG"
    )
    assert (await portal_card(viewer))["dead_letters"] == 0
    status, connector = await viewer.call("GET", "/api/v1/admin/connectors/national_portal")
    assert status == 200
    [outage] = connector["outages"]
    assert outage["ended_at"] is not None
    assert outage["duration_s"] >= 0
    assert "HTTP 503" in outage["cause"]
    assert outage["held_max"] >= 1
    status, html = await viewer.call("GET", "/dashboard/connectors/national_portal?lang=en")
    assert html.count('data-testid="outage" data-ended="yes"') == 1
    assert 'data-testid="no-outages"' not in html
