"""Every JSON door refuses a body over its size with a clear error (413, or the protocol's own
code), never a 500, whether the body announces its length or arrives chunked without one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from sims.payment_platform.simulator import PaymentPlatformSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.payments_world import PARTNER, SECRET, SUB_TOKEN, payment_overrides
from tests.support import ONESTOP_TOKEN, PORTAL_PASSWORD, PORTAL_USER

LIMIT = 100_000
OVER = b'{"pad": "' + b"x" * (LIMIT + 10) + b'"}'


@pytest.fixture
async def hub(tmp_path: Path, rabbit_url: str, broker_prefix: str) -> AsyncIterator[Hub]:
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal,
        WebhookReceiver(token=SUB_TOKEN) as receiver,
        PaymentPlatformSimulator(partner_code=PARTNER, secret=SECRET) as platform,
    ):
        overrides = payment_overrides(
            tmp_path, rabbit_url, broker_prefix, portal.url, platform.base_url, receiver.url
        )
        overrides["http"]["max_body_bytes"] = LIMIT
        async with Hub(load_config(None, overrides)) as running:
            yield running


async def chunked(body: bytes) -> AsyncIterator[bytes]:
    """The body in pieces, sent without Content-Length (Transfer-Encoding: chunked)."""
    for i in range(0, len(body), 8192):
        yield body[i : i + 8192]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_an_oversized_body_is_refused_clearly_at_every_door(hub: Hub, framing: str) -> None:
    base = f"http://127.0.0.1:{hub.port}"
    callback = hub.config.connectors.payment_platform.callback_path
    token = {"Authorization": f"Bearer {ONESTOP_TOKEN}"}
    doors = [
        ("/dvcqg", {}, 413),
        ("/api/v1/dossier-events", token, 413),
        ("/api/v1/admin/session", {}, 413),
        (callback, {}, 200),  # the protocol's reply: MaLoi 99, too large
    ]
    async with aiohttp.ClientSession() as http:
        for path, headers, expected in doors:
            data: Any = OVER if framing == "content-length" else chunked(OVER)
            sent = {**headers, "Content-Type": "application/json"}
            async with http.post(base + path, data=data, headers=sent) as r:
                text = await r.text()
                assert r.status == expected, (path, r.status, text[:300])
                if path == callback:
                    assert (await r.json())["MaLoi"] == "99", text
                assert "larger than" in text or "too large" in text.lower(), (path, text[:300])
