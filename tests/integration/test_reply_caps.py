"""Every reply the hub reads from a destination has a size cap: an oversized reply is a clear
error of that call (an outage where the endpoint is broken, a refusal of the item where the
reply is about it), never a crash and never read whole. Each client talks to a real loopback
server that answers an otherwise valid reply padded past the cap."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from connectors.ministry.auth import MAX_TOKEN_REPLY_BYTES, OAuth2ClientCredentials
from connectors.ministry.config import OAuth2Auth
from connectors.national_portal.client import PortalClient
from connectors.national_portal.config import NationalPortalConfig
from connectors.national_portal.mapping import PortalCodes
from connectors.payment_platform.client import PlatformClient
from connectors.payment_platform.config import PaymentPlatformConfig
from connectors.webhook.client import MAX_DETAIL_BYTES, WebhookClient
from hub.errors import DestinationRejected, DestinationUnavailable, UnreadableReply
from hub.subscribers import SubscriberConfig
from schemas.payment import PaymentOutcome, PaymentResult, PaymentSource

ROOT = Path(__file__).resolve().parents[2]
CAP = 256 * 1024
PAD = "x" * (4 * 1024 * 1024)  # 4 MiB: past every cap below
FAST = {"retry": {"attempts": 1}}


def padded(reply: dict[str, Any]) -> web.Response:
    return web.json_response({**reply, "pad": PAD})


class Upstream:
    """One loopback server playing every destination, each reply padded past its cap; it
    counts the requests it answered."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.app = web.Application()
        self.app.add_routes(
            [
                web.post("/token", self.token),
                web.post("/portal", self.portal),
                web.post("/payments/status", self.payment),
                web.post("/webhook", self.webhook),
            ]
        )

    def count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    async def token(self, _: web.Request) -> web.Response:
        self.count("token")
        return padded({"access_token": "token-from-a-broken-endpoint", "expires_in": 300})

    async def portal(self, request: web.Request) -> web.Response:
        self.count("portal")
        body = await request.json()
        if "username" in body:
            return web.json_response({"error_code": 0, "session": "s-1"})
        return padded({"error_code": "00", "data": {"MaHoSo": body.get("mahoso")}})

    async def payment(self, _: web.Request) -> web.Response:
        self.count("payment")
        return padded({"MaLoi": "00"})

    async def webhook(self, _: web.Request) -> web.Response:
        self.count("webhook")
        return web.Response(status=422, text="refused: " + PAD)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[str, Upstream, aiohttp.ClientSession]]:
    server = Upstream()
    runner = web.AppRunner(server.app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            yield f"http://127.0.0.1:{port}", server, http
    finally:
        await runner.cleanup()


async def test_an_oversized_oauth2_token_reply_is_an_outage_not_a_token(
    upstream: tuple[str, Upstream, aiohttp.ClientSession],
) -> None:
    base, server, http = upstream
    config = OAuth2Auth(
        kind="oauth2", token_url=f"{base}/token", client_id="hub", client_secret=SecretStr("s")
    )
    auth = OAuth2ClientCredentials(config, http, "ministry.civil", timeout_s=5)
    with pytest.raises(DestinationUnavailable) as caught:
        await auth.headers("POST", "/x", b"")
    assert f"more than {MAX_TOKEN_REPLY_BYTES} bytes" in caught.value.message
    assert caught.value.connector == "ministry.civil"
    assert server.calls["token"] == 1


async def test_an_oversized_portal_reply_is_an_outage_of_dvcqg(
    upstream: tuple[str, Upstream, aiohttp.ClientSession],
) -> None:
    base, server, http = upstream
    config = NationalPortalConfig.model_validate(
        {"base_url": f"{base}/portal", "max_reply_bytes": CAP, **FAST}
    )
    codes = PortalCodes.load(ROOT / "mappings" / "national_portal.yaml")
    client = PortalClient(config, codes, http)
    with pytest.raises(DestinationUnavailable) as caught:
        await client.lookup("000.00.41.H41-221005-0001")
    assert f"more than {CAP} bytes" in caught.value.message
    assert "max_reply_bytes" in caught.value.message
    assert server.calls["portal"] == 2  # the log-in, and the one call refused unread


async def test_an_oversized_payment_platform_reply_is_refused_unread(
    upstream: tuple[str, Upstream, aiohttp.ClientSession],
) -> None:
    base, server, http = upstream
    config = PaymentPlatformConfig.model_validate(
        {
            "base_url": base,
            "status_path": "/payments/status",
            "max_reply_bytes": CAP,
            "secret_key": "k",
            **FAST,
        }
    )
    client = PlatformClient(config, http)
    held = PaymentResult(
        transaction_id="GD-1",
        reference="000.00.41.H41-221005-0001",
        dossier_code="000.00.41.H41-221005-0001",
        outcome=PaymentOutcome.PENDING,
        source=PaymentSource.CALLBACK,
        amount_vnd=150_000,
        paid_at=datetime.now(UTC),
    )
    with pytest.raises(UnreadableReply) as caught:
        await client.status(held)
    assert caught.value.code == "oversized"
    assert f"more than {CAP} bytes" in caught.value.message
    assert server.calls["payment"] == 1


async def test_a_subscribers_oversized_refusal_is_read_only_for_its_first_words(
    upstream: tuple[str, Upstream, aiohttp.ClientSession],
) -> None:
    base, server, http = upstream
    config = SubscriberConfig.model_validate({"url": f"{base}/webhook", **FAST})
    client = WebhookClient("one_stop", config, http)
    with pytest.raises(DestinationRejected) as caught:
        await client.post({"event_id": "e-1", "type": "payment.paid"})
    assert "(a larger body, unread)" in caught.value.message
    assert len(caught.value.message) < MAX_DETAIL_BYTES
    assert json.dumps(caught.value.message).count("x") < 400
    assert server.calls["webhook"] == 1
