"""The hub's alerts by e-mail, through a loopback SMTP relay (aiosmtpd) that speaks STARTTLS
with a certificate of a test CA and wants a login: DVCQG's simulator goes down past the
threshold and comes back; the relay first answers "try later" (451), then takes exactly one
"firing" and one "resolved" message, each with both sentences and the figures."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from hub.config import deep_merge, load_config
from hub.runtime import Hub
from hub.validation import VN_TZ
from sims.national_portal.simulator import DvcqgSimulator
from tests.support import (
    ONESTOP_TOKEN,
    PORTAL_PASSWORD,
    PORTAL_USER,
    UNIT,
    eventually,
    hub_overrides,
)
from tests.support.tls import Authority, server_context

SMTP_USER, SMTP_PASSWORD = "hub-alerts", "mat-khau-smtp"
SENDER, TO = "hub@tinh.example", ["vanhanh@tinh.example", "truongca@tinh.example"]


@dataclass
class Relay:
    """What the loopback relay took, and how many messages it should first put off."""

    put_off: int = 1
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refused: int = 0
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.put_off > 0:
            self.put_off -= 1
            self.refused += 1
            return "451 4.3.0 try again later"
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            self.logins.append(SMTP_USER)
        return AuthResult(success=ok)

    def of(self, status: str) -> list[EmailMessage]:
        return [m for m in self.messages if status in str(m["Subject"])]


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[tuple[Relay, int, Path]]:
    ca = Authority("SMTP relay CA")
    ca_file = ca.write(tmp_path / "smtp-ca.pem")
    context = server_context(ca.issue("smtp", server=True).write(tmp_path, "smtp"))
    state = Relay()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            state,
            hostname="smtp.tinh.example",
            tls_context=context,
            require_starttls=True,
            authenticator=state.authenticate,
            auth_required=True,
        ),
        "127.0.0.1",
        0,
    )
    port = int(server.sockets[0].getsockname()[1])
    try:
        yield state, port, ca_file
    finally:
        server.close()
        await server.wait_closed()


async def test_an_outage_sends_one_firing_and_one_resolved_e_mail_through_a_relay(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, relay: tuple[Relay, int, Path]
) -> None:
    state, port, ca_file = relay
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal:
        overrides = hub_overrides(tmp_path, rabbit_url, broker_prefix, portal.url)
        alerts = {
            "check_interval_s": 0.2,
            "connector_down_for_s": 1,
            "retry_initial_s": 0.1,
            "retry_max_s": 0.4,
            "email": {
                "host": "127.0.0.1",
                "port": port,
                "security": "starttls",
                "username": SMTP_USER,
                "password": SMTP_PASSWORD,
                "sender": SENDER,
                "to": TO,
                "timeout_s": 5,
                "tls": {"ca_file": str(ca_file)},
            },
        }
        config = load_config(None, deep_merge(overrides, {"alerts": alerts}))
        async with Hub(config) as hub:
            alerting = hub.alerting
            assert alerting is not None
            portal.faults.mode = "http_503"
            dossier = f"{UNIT}-261206-0201"
            await post_dossier(hub.port, dossier)
            await eventually(lambda: state.of("FIRING"), 60, "the firing e-mail")
            assert state.refused == 1  # put off once, then sent again

            portal.faults.mode = "ok"
            await eventually(lambda: state.of("RESOLVED"), 60, "the resolved e-mail")
            target = alerting.checks + 5
            await eventually(lambda: alerting.checks >= target, 30, "five more checks")

    assert [len(state.of("FIRING")), len(state.of("RESOLVED"))] == [1, 1]
    assert state.envelopes == [(SENDER, TO), (SENDER, TO)]
    assert state.logins == [SMTP_USER] * 3  # the put-off try logged in too
    fired, resolved = state.of("FIRING")[0], state.of("RESOLVED")[0]
    assert fired["Subject"] == "[hub] CẢNH BÁO / FIRING: HubConnectorDown – national_portal"
    assert str(fired["From"]) == SENDER
    body = fired.get_content()
    assert "Cổng DVCQG gián đoạn từ" in body
    assert "has been down since" in body
    assert "threshold: 1.0" in body
    assert "HTTP 503" in body
    assert "hoạt động trở lại" in resolved.get_content()
    assert SMTP_PASSWORD not in body


async def post_dossier(port: int, code: str) -> None:
    at = (datetime.now(VN_TZ) - timedelta(minutes=5)).isoformat()
    event = {
        "event_id": f"ev-{code}",
        "dossier_code": code,
        "kind": "record",
        "status": "accepted",
        "occurred_at": at,
        "record": {"procedure_code": "1.000894", "received_at": at},
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"http://127.0.0.1:{port}/api/v1/dossier-events",
            json={"events": [event]},
            headers={"Authorization": f"Bearer {ONESTOP_TOKEN}"},
        ) as r,
    ):
        assert r.status == 200, await r.text()
