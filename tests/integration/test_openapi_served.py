"""The OpenAPI document against the hub that serves it, every connector on with its simulator.

Both directions: every route the HTTP application serves under `/api/` (and `/healthz`,
`/readyz`, `/metrics`) is documented with its method, and every documented path and method is
served. Then real calls with valid credentials, at least one success of every documented
operation that answers JSON (the core, each connector's API and doors, the admin API), each
reply validated against its schema in the served document (`jsonschema`), and a few errors
against `ErrorOut`.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from jsonschema import Draft202012Validator

from hub.auth import sha256_hex
from hub.config import load_config
from hub.runtime import Hub
from hub.validation import VN_TZ
from sims.ministry.examples import BUSINESS_PROCEDURE, CIVIL_PROCEDURE
from sims.ministry.rest_simulator import CivilStatusSimulator
from sims.ministry.soap_simulator import BusinessRegistrationSimulator
from sims.national_portal.simulator import DvcqgSimulator
from sims.payment_platform.simulator import PaymentPlatformSimulator
from sims.vdxp.simulator import AxisSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.dashboard_world import PASSWORDS, USERS, dashboard_overrides
from tests.integration.ministry_world import (
    CLIENT_ID,
    CLIENT_SECRET,
    PUSH_TOKEN,
    WSSE_PASSWORD,
    WSSE_USER,
    business_section,
    civil_section,
    oauth2,
)
from tests.integration.payments_world import FEE, PARTNER, SECRET, payment_overrides
from tests.integration.vdxp_world import AGENCIES, HUB_ORGAN, MINISTRY, axis_section
from tests.integration.vdxp_world import SECRET as AXIS_SECRET
from tests.support import ONESTOP_TOKEN, PORTAL_PASSWORD, PORTAL_USER, UNIT

PROBES = ("/healthz", "/readyz", "/metrics")
METHODS = ("get", "post", "put", "patch", "delete")
BEARER = {"Authorization": f"Bearer {ONESTOP_TOKEN}"}


@dataclass
class Served:
    """The hub with every connector on, its document, and what the calls validated."""

    hub: Hub
    portal: DvcqgSimulator
    platform: PaymentPlatformSimulator
    civil: CivilStatusSimulator
    http: aiohttp.ClientSession
    admin: aiohttp.ClientSession
    doc: dict[str, Any] = field(default_factory=dict)
    validated: set[tuple[str, str, int]] = field(default_factory=set)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.hub.port}"

    async def call(
        self,
        method: str,
        template: str,
        path: str | None = None,
        status: int = 200,
        *,
        http: aiohttp.ClientSession | None = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> Any:
        """Call `path` (the documented `template` by default), expect `status`, and validate
        the reply against what the document says of that status; the JSON reply, or bytes."""
        client = http or self.http
        sent = {**(BEARER if client is self.http else {}), **(headers or {})}
        async with client.request(method, self.base + (path or template), headers=sent, **kw) as r:
            raw = await r.read()
            assert r.status == status, (method, path or template, r.status, raw[:600])
            media = r.content_type
        replies = self.doc["paths"][template][method.lower()]["responses"]
        assert str(status) in replies, f"{method} {template} answered {status}, not documented"
        documented = replies[str(status)].get("content", {})
        if not raw and status == 204:
            assert not documented, f"{method} {template} documents a body for 204"
            return None
        if media not in documented and "*/*" in documented:
            return raw  # a file, in its own type
        assert media in documented, f"{method} {template} {status} sent {media}"
        if media != "application/json":
            return raw
        body = json.loads(raw)
        schema = documented[media]["schema"]
        validator = Draft202012Validator({"components": self.doc["components"], **schema})
        problems = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(body)
        ]
        assert not problems, f"{method} {template} {status}: {problems[:5]}"
        self.validated.add((method.lower(), template, status))
        return body


@pytest.fixture
async def served(tmp_path: Path, rabbit_url: str, broker_prefix: str) -> AsyncIterator[Served]:
    async with AsyncExitStack() as stack:
        portal = await stack.enter_async_context(
            DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD, procedures=4)
        )
        receiver = await stack.enter_async_context(WebhookReceiver(token="sub-token"))
        platform = await stack.enter_async_context(
            PaymentPlatformSimulator(partner_code=PARTNER, secret=SECRET)
        )
        business = await stack.enter_async_context(
            BusinessRegistrationSimulator(username=WSSE_USER, password=WSSE_PASSWORD)
        )
        civil = await stack.enter_async_context(
            CivilStatusSimulator(
                client_id=CLIENT_ID, client_secret=CLIENT_SECRET, push_token=PUSH_TOKEN
            )
        )
        axis = await stack.enter_async_context(
            AxisSimulator(systems={HUB_ORGAN: AXIS_SECRET}, agencies=AGENCIES)
        )
        overrides = payment_overrides(
            tmp_path, rabbit_url, broker_prefix, portal.url, platform.base_url, receiver.url
        )
        overrides["subscribers"]["one_stop"]["events"] = [
            "procedure.#",
            "payment.#",
            "ministry.#",
            "vdxp.#",
        ]
        overrides["connectors"]["national_portal"]["catalogue"] = {
            "enabled": True,
            "interval_s": 0,
            "rate_limit_per_s": 500,
        }
        overrides["connectors"]["vdxp"] = axis_section(axis.base_url, tmp_path / "spool")
        overrides["ministries"] = {
            "business_registration": business_section(business.url),
            "civil_status": civil_section(
                civil.base_url,
                oauth2(civil.base_url),
                push={"token_sha256": sha256_hex(PUSH_TOKEN)},
            ),
        }
        overrides["dashboard"] = dashboard_overrides()
        config = load_config(None, overrides)
        hub = await stack.enter_async_context(Hub(config))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        base = f"http://127.0.0.1:{hub.port}"  # the session cookie is Secure: trust it here
        jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[base])
        admin = await stack.enter_async_context(aiohttp.ClientSession(cookie_jar=jar))
        world = Served(hub, portal, platform, civil, http, admin)
        platform.callback_url = world.base + config.connectors.payment_platform.callback_path
        civil.push_url = f"{world.base}/api/v1/ministries/civil_status/results"
        async with http.get(f"{world.base}/api/v1/openapi.json") as r:
            assert r.status == 200
            world.doc = await r.json()
        yield world


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every API and probe route the application serves (HEAD aside)."""
    out = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method == "HEAD" or not (path.startswith("/api/") or path in PROBES):
            continue
        out.add((route.method.lower(), path))
    return out


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m, path) for path, item in doc["paths"].items() for m in item if m in METHODS}


async def test_every_served_route_is_documented_and_every_documented_one_served(
    served: Served,
) -> None:
    assert served.hub.app is not None
    routes = served_routes(served.hub.app)
    doc = documented(served.doc)
    assert len(routes) > 40
    assert routes - doc == set(), "served but not in the OpenAPI document"
    assert doc - routes == set(), "in the OpenAPI document but not served"
    for schema in served.doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    # The doors that speak another system's protocol are served, and named in the document.
    paths = {r.resource.canonical for r in served.hub.app.router.routes() if r.resource}
    assert {"/dvcqg", "/payment-platform/callback"} <= paths
    description = served.doc["info"]["description"]
    assert "national_portal/PROTOCOL.md" in description
    assert "payment_platform/PROTOCOL.md" in description


def dossier_event(code: str, procedure: str, event_id: str | None = None) -> dict[str, Any]:
    at = datetime.now(VN_TZ) - timedelta(hours=1)
    return {
        "event_id": event_id or f"ev-{code}",
        "dossier_code": code,
        "kind": "record",
        "status": "processing",
        "occurred_at": at.isoformat(),
        "record": {
            "procedure_code": procedure,
            "procedure_name": "Đăng ký",
            "owner_name": "Nguyễn Văn An",
            "applicant_id": "001099012345",
            "phone": "0912345678",
            "received_at": at.isoformat(),
            "fees": [{"name": "Lệ phí", "amount_vnd": FEE}],
        },
    }


async def test_real_replies_match_their_schemas(served: Served) -> None:
    s = served
    codes = [f"{UNIT}-261123-{n:04d}" for n in range(1, 6)]
    business, civil, axis, paid, parked = codes
    s.portal.faults.reject = {parked: "05"}  # DVCQG refuses it: parked, a dead letter

    # -- core -----------------------------------------------------------------------------------
    events = [
        dossier_event(business, BUSINESS_PROCEDURE),
        dossier_event(civil, CIVIL_PROCEDURE),
        dossier_event(axis, "2.000001"),
        dossier_event(paid, "2.000001"),
        dossier_event(parked, "2.000001"),
        {"event_id": "bad", "dossier_code": "nope", "kind": "step"},  # rejected, in results
    ]
    reply = await s.call("POST", "/api/v1/dossier-events", json={"events": events})
    assert [r["outcome"] for r in reply["results"]] == [*["accepted"] * 5, "rejected"]
    page = await s.call("GET", "/api/v1/portal/dossier-changes", "/api/v1/portal/dossier-changes")
    assert {i["dossier_code"] for i in page["items"]} == set(codes)
    await s.call("GET", "/healthz")
    await s.call("GET", "/readyz")
    ready = await s.call("GET", "/readyz", "/readyz?counts=1")
    assert "waiting" in ready["connectors"]["national_portal"]
    await s.call("GET", "/metrics")
    assert (await s.call("GET", "/api/v1/openapi.json")) == s.doc
    # Errors have the one shape.
    await s.call("GET", "/api/v1/ministries", status=401, headers={"Authorization": "Bearer x"})
    await s.call("GET", "/api/v1/procedures/{code}", "/api/v1/procedures/9.999999", status=404)

    # -- national portal: the catalogue ------------------------------------------------------------
    started = await s.call("POST", "/api/v1/procedure-sync-runs", status=202, json={})
    assert started["status"] == "started"

    async def synced() -> bool:
        runs = await s.call("GET", "/api/v1/procedure-sync-runs")
        return bool(runs["items"]) and runs["items"][0]["state"] in ("done", "partial")

    await until(synced, "the catalogue sync")
    procedures = await s.call("GET", "/api/v1/procedures")
    assert procedures["items"]
    code = procedures["items"][0]["code"]
    await s.call("GET", "/api/v1/procedures/{code}", f"/api/v1/procedures/{code}")
    one = "/api/v1/procedures/{code}/versions/{version}"
    await s.call("GET", one, f"/api/v1/procedures/{code}/versions/1")
    await s.call(
        "GET", "/api/v1/procedure-quarantine", "/api/v1/procedure-quarantine?include_resolved=true"
    )
    await s.call("GET", "/api/v1/catalogue-lists/{kind}", "/api/v1/catalogue-lists/fields")

    # -- ministries -------------------------------------------------------------------------------
    await s.call("GET", "/api/v1/ministries")
    handoffs = "/api/v1/ministries/{system}/handoffs"

    async def handed_off() -> bool:
        found = await s.call("GET", handoffs, "/api/v1/ministries/business_registration/handoffs")
        return bool(found["handoffs"])

    await until(handed_off, "the hand-off to business registration")
    poll = "/api/v1/ministries/{system}/poll"
    await s.call("POST", poll, "/api/v1/ministries/business_registration/poll")

    async def civil_result() -> bool:
        return bool(s.civil.results)

    await until(civil_result, "civil status's result")
    push = "/api/v1/ministries/{system}/results"
    pushed = await s.call(
        "POST",
        push,
        "/api/v1/ministries/civil_status/results",
        headers={"Authorization": f"Bearer {PUSH_TOKEN}"},
        json={"ketQua": [*s.civil.results[:1], {"id": "r-x", "maHoSo": f"{UNIT}-261123-9999"}]},
    )
    assert [i["verdict"] for i in pushed["items"]][1] == "quarantined"
    quarantine = await s.call("GET", "/api/v1/ministries/quarantine")
    assert quarantine["quarantine"]

    # -- the document axis -----------------------------------------------------------------------
    await s.call("GET", "/api/v1/vdxp")
    transfer = {
        "transfer_id": "lt-0001",
        "dossier_code": axis,
        "to": [MINISTRY],
        "subject": f"Chuyển hồ sơ {axis}",
        "code_number": "0001",
        "attachments": [
            {
                "name": "to-khai.pdf",
                "content_type": "application/pdf",
                "content_base64": base64.b64encode(b"%PDF-1.7 test").decode(),
            }
        ],
    }
    sent = await s.call("POST", "/api/v1/vdxp/transfers", status=202, json=transfer)
    again = await s.call("POST", "/api/v1/vdxp/transfers", status=200, json=transfer)
    assert again["created"] is False
    one_transfer = "/api/v1/vdxp/transfers/{transfer_id}"

    async def statuses_back() -> bool:
        await s.call("POST", "/api/v1/vdxp/poll")
        shown = await s.call("GET", one_transfer, "/api/v1/vdxp/transfers/lt-0001")
        return bool(shown["statuses"])

    await until(statuses_back, "the axis's statuses of the transfer")
    document_id = sent["document_id"]
    attachment_id = sent["attachments"][0]["attachment_id"]
    await s.call("GET", "/api/v1/vdxp/document", params={"document_id": document_id})
    await s.call("GET", "/api/v1/vdxp/documents", params={"direction": "out"})
    await s.call(
        "GET",
        "/api/v1/vdxp/attachment",
        params={"document_id": document_id, "attachment_id": attachment_id},
    )
    intake = await s.call("GET", "/api/v1/vdxp/intake")
    assert intake["items"]

    # -- payments ---------------------------------------------------------------------------------
    tx = s.platform.new_transaction(paid, FEE)
    await s.platform.send_callback(tx)
    payments = await s.call("GET", "/api/v1/payments", params={"dossier_code": paid})
    assert payments["payments"][0]["result"]["transaction_id"] == tx.transaction_id
    await s.call("GET", "/api/v1/payments/callbacks")
    await s.call("POST", "/api/v1/payments/status-checks")
    day = {"date": tx.at.astimezone(VN_TZ).date().isoformat()}
    report = await s.call("POST", "/api/v1/payments/reconciliation", params=day)
    assert report["summary"]["platform_confirmed"] == 1
    await s.call("GET", "/api/v1/payments/reconciliation", params=day)
    csv = await s.call("GET", "/api/v1/payments/reconciliation", params={**day, "format": "csv"})
    assert csv.startswith(b"kind,")

    # -- the admin API ----------------------------------------------------------------------------
    login = await s.call(
        "POST",
        "/api/v1/admin/session",
        http=s.admin,
        json={"username": USERS["admin"], "password": PASSWORDS["admin"]},
    )
    act = {"X-CSRF-Token": login["csrf_token"]}

    async def admin(method: str, template: str, path: str | None = None, **kw: Any) -> Any:
        return await s.call(method, template, path, http=s.admin, **kw)

    overview = await admin("GET", "/api/v1/admin/overview")
    assert {c["name"] for c in overview["connectors"]} >= {"national_portal", "vdxp"}
    one_connector = "/api/v1/admin/connectors/{name}"
    await admin("GET", one_connector, "/api/v1/admin/connectors/national_portal")
    for action in ("pause", "resume"):
        await admin(
            "POST",
            f"/api/v1/admin/connectors/{{name}}/{action}",
            f"/api/v1/admin/connectors/payment_platform/{action}",
            headers=act,
            json={"reason": "maintenance"},
        )
    await admin("GET", "/api/v1/admin/dossiers", "/api/v1/admin/dossiers?q=000.00")
    await admin("GET", "/api/v1/admin/dossiers/{code}", f"/api/v1/admin/dossiers/{axis}")
    letters = "/api/v1/admin/dead-letters"

    async def parked_one() -> bool:
        return bool((await admin("GET", letters))["items"])

    await until(parked_one, "the refused dossier parked")
    [letter] = (await admin("GET", letters))["items"]
    one_letter = f"/api/v1/admin/dead-letters/national_portal/{letter['message_id']}"
    await admin("GET", "/api/v1/admin/dead-letters/{connector}/{message_id}", one_letter)
    acted = await admin(
        "POST",
        "/api/v1/admin/dead-letters/{connector}/{action}",
        "/api/v1/admin/dead-letters/national_portal/discard",
        headers=act,
        json={"message_ids": [letter["message_id"], "gone-already"]},
    )
    assert acted == {"done": [letter["message_id"]], "missing": ["gone-already"]}
    await admin("GET", "/api/v1/admin/stuck")
    summary = "/api/v1/admin/dead-letters/summary"
    await admin("GET", summary, f"{summary}?connector=national_portal")
    job = await admin(
        "POST",
        "/api/v1/admin/dead-letter-actions",
        headers=act,
        json={"action": "replay", "filter": {"connector": "national_portal"}},
        status=202,
    )
    jobs = "/api/v1/admin/dead-letter-actions"
    await admin("GET", jobs + "/{job}", f"{jobs}/{job['id']}")
    await admin("GET", "/api/v1/admin/audit")
    await admin("GET", "/api/v1/admin/users")
    unlock = "/api/v1/admin/users/{name}/unlock"
    await admin("POST", unlock, f"/api/v1/admin/users/{USERS['viewer']}/unlock", headers=act)
    revoke = "/api/v1/admin/users/{name}/revoke-sessions"
    ended = await admin(
        "POST", revoke, f"/api/v1/admin/users/{USERS['viewer']}/revoke-sessions", headers=act
    )
    assert ended == {"user": USERS["viewer"], "sessions_ended": 0}
    for flow in ("procedures", "ministries", "vdxp", "payments"):
        page = await admin("GET", f"/api/v1/admin/{flow}")
        assert page["enabled"] is True, flow
    await admin("DELETE", "/api/v1/admin/session", status=204, headers=act)
    await admin("GET", "/api/v1/admin/overview", status=401)

    # Every documented operation that answers JSON was seen answering, and validated.
    json_ops = {
        (method, path)
        for path, item in served.doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
        and any(
            code.startswith("2") and "application/json" in reply.get("content", {})
            for code, reply in op["responses"].items()
        )
    }
    seen = {(m, p) for m, p, status in s.validated if 200 <= status < 300}
    assert json_ops - seen == set(), "documented JSON replies never validated"
