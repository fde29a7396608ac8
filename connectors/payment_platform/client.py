"""Calls to the payment platform: the status check and the day's listing (PROTOCOL.md §2–3).

Every request is signed (`MaXacThuc`) and every reply's signature is verified before it is
read; an unsigned or wrongly signed reply is a `DestinationRejected`, never trusted. Calls go
through the connector's `hub.resilience.Guard` (retries, breaker, rate limit).

This module must never store or deliver: the flow (`checks`, `reconcile`) decides what a
reply changes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from functools import partial
from typing import Any

import aiohttp

from connectors.payment_platform.config import PaymentPlatformConfig
from connectors.payment_platform.mapping import wire_time
from connectors.payment_platform.signing import signed, verify
from hub.errors import DestinationRejected, DestinationUnavailable, HubError
from hub.httputil import dumps, read_reply
from hub.resilience import Guard, translate_http_error
from hub.tls import client_context
from schemas.payment import PaymentResult

CONNECTOR = "payment_platform"
SYSTEM = "the payment platform"
NOT_FOUND = "01"


class PlatformClient:
    def __init__(self, config: PaymentPlatformConfig, http: aiohttp.ClientSession) -> None:
        self.config = config
        self.http = http
        self.ssl = client_context(config.tls)  # its CA, our client certificate
        self.guard = Guard(CONNECTOR, config.retry, config.breaker, config.rate_limit_per_s)
        self._secret = config.secret_key.get_secret_value()

    async def status(self, held: PaymentResult) -> dict[str, Any] | None:
        """The platform's verified reply about one transaction; None if it does not know it."""
        sig = self.config.signatures
        body = {
            "LoaiBanTin": "TruyVanGiaoDich",
            "MaDoiTac": self.config.partner_code,
            "MaThamChieu": held.reference,
            "MaGiaoDich": held.transaction_id,
            "ThoiGianGD": wire_time(held.paid_at),
        }
        reply = await self._call(self.config.status_path, body, sig.status_request)
        if reply.get("MaLoi") == NOT_FOUND:
            return None
        self._check(reply, sig.status_reply)
        return reply

    async def listing(self, day: date) -> list[dict[str, Any]]:
        """What the platform confirmed on `day` (local), verified against its count and total."""
        sig = self.config.signatures
        body = {
            "LoaiBanTin": "DoiSoat",
            "MaDoiTac": self.config.partner_code,
            "NgayGD": day.strftime("%Y%m%d"),
        }
        reply = await self._call(self.config.reconciliation_path, body, sig.listing_request)
        self._check(reply, sig.listing_reply)
        items = reply.get("DanhSachGD")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise self._rejected("the listing has no DanhSachGD list")
        if str(reply.get("SoGD")) != str(len(items)):
            raise self._rejected(
                f"the listing says SoGD={reply.get('SoGD')} but holds {len(items)}"
            )
        return items

    async def _call(self, path: str, body: dict[str, Any], order: Sequence[str]) -> dict[str, Any]:
        payload = signed(body, order, self._secret)
        return await self.guard.call(partial(self._post, path, payload))

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        async with self.guard.limiter:
            try:
                timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
                async with self.http.post(
                    self.config.base_url.rstrip("/") + path,
                    data=dumps(payload),
                    headers={"Content-Type": "application/json"},
                    timeout=timeout,
                    ssl=self.ssl,
                ) as response:
                    if response.status >= 500 or response.status in (408, 429):
                        raise DestinationUnavailable(
                            f"HTTP {response.status} from {SYSTEM}",
                            connector=CONNECTOR,
                            http_status=response.status,
                        )
                    if response.status >= 400:
                        raise self._rejected(f"HTTP {response.status}")
                    raw = await read_reply(
                        response, self.config.max_reply_bytes, connector=CONNECTOR, system=SYSTEM
                    )
                reply = json.loads(raw)
            except HubError:
                raise
            except Exception as exc:
                raise translate_http_error(exc, CONNECTOR, SYSTEM) from exc
        if not isinstance(reply, dict):
            raise self._rejected("the reply is not a JSON object")
        return reply

    def _check(self, reply: dict[str, Any], order: Sequence[str]) -> None:
        if reply.get("MaLoi") != "00":
            raise self._rejected(f"MaLoi {reply.get('MaLoi')!r}: {reply.get('MoTaLoi', '')}")
        if not verify(reply, order, self._secret):
            raise self._rejected("the reply's MaXacThuc does not match (not trusted)")

    def _rejected(self, why: str) -> DestinationRejected:
        return DestinationRejected(f"{SYSTEM} reply refused: {why}", connector=CONNECTOR)
