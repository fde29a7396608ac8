"""The document-axis test world: a real RabbitMQ, the hub in process with the axis connector
on, the DVCQG simulator, a loopback one-stop system and the axis simulator."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from connectors.vdxp.edxml import EdxmlCodec
from hub.config import load_config
from hub.runtime import Hub
from hub.store.sqlite import SqliteStore
from hub.validation import VN_TZ
from sims.national_portal.simulator import DvcqgSimulator
from sims.vdxp.simulator import AxisSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.ministry_world import FAST, SUB_TOKEN, World
from tests.support import PORTAL_PASSWORD, PORTAL_USER, UNIT, hub_overrides

HUB_ORGAN = UNIT  # the hub's agency, and its system id on the axis
SECRET = "bi-mat-truc"
MINISTRY = "000.00.00.G12"  # Bộ Tư pháp: answers documents with statuses
DEPARTMENT = "000.00.42.H41"  # Sở Tư pháp: sends documents to the hub
STRANGER = "000.00.00.Z99"  # on no agency list
AGENCIES = [
    {"organId": MINISTRY, "organName": "Bộ Tư pháp"},
    {"organId": DEPARTMENT, "organName": "Sở Tư pháp tỉnh Nghệ An"},
]
PROCEDURE = "1.000894"
MiB = 1024 * 1024


def axis_section(base_url: str, spool: Path, **extra: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "base_url": base_url,
        "system_id": HUB_ORGAN,
        "secret": SECRET,
        "organ_id": HUB_ORGAN,
        "organ_name": "UBND tỉnh thử nghiệm",
        "spool_dir": str(spool),
        "poll": {"interval_s": 0.2, "backoff_initial_s": 0.2, "backoff_max_s": 0.5, "limit": 20},
        **FAST,
        **extra,
    }


@dataclass
class AxisWorld(World):
    axis: AxisSimulator
    codec: EdxmlCodec

    async def transfer(
        self, transfer_id: str, dossier: str, attachments: dict[str, bytes], **extra: Any
    ) -> tuple[int, Any]:
        body = {
            "transfer_id": transfer_id,
            "dossier_code": dossier,
            "to": [MINISTRY],
            "subject": f"Chuyển hồ sơ {dossier} để xác minh",
            "code_number": transfer_id[-4:],
            "code_notation": "UBND-VP",
            "attachments": [
                {
                    "name": name,
                    "content_type": "application/pdf",
                    "content_base64": base64.b64encode(content).decode(),
                }
                for name, content in attachments.items()
            ],
            **extra,
        }
        return await self.call("POST", "/api/v1/vdxp/transfers", body)

    def at_one_stop(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.one_stop.events if e["type"] == kind]

    async def poll(self) -> dict[str, Any]:
        status, report = await self.call("POST", "/api/v1/vdxp/poll")
        assert status == 200, report
        assert isinstance(report, dict)
        return report

    def acks(self, status: str | None = None) -> list[Any]:
        return [a for a in self.axis.acks if status is None or a.status == status]

    @property
    def db(self) -> SqliteStore:
        return self.store


@asynccontextmanager
async def axis_world(
    tmp_path: Path,
    rabbit_url: str,
    prefix: str,
    *,
    api_limits: Any = None,  # http.api_limits (Any: callers pass **LIMITS beside it)
    **axis_extra: Any,
) -> AsyncIterator[AxisWorld]:
    async with AsyncExitStack() as stack:
        portal = await stack.enter_async_context(
            DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD)
        )
        one_stop = await stack.enter_async_context(WebhookReceiver(token=SUB_TOKEN))
        axis = await stack.enter_async_context(
            AxisSimulator(
                systems={HUB_ORGAN: SECRET},
                agencies=AGENCIES,
                max_document_bytes=16 * MiB,
                max_attachment_bytes=12 * MiB,
            )
        )
        overrides = hub_overrides(tmp_path, rabbit_url, prefix, portal.url)
        overrides["subscribers"] = {
            "one_stop": {"url": one_stop.url, "token": SUB_TOKEN, "events": ["vdxp.#"], **FAST}
        }
        if api_limits is not None:
            overrides["http"]["api_limits"] = dict(api_limits)
        overrides["connectors"]["vdxp"] = axis_section(
            axis.base_url, tmp_path / "spool", **axis_extra
        )
        config = load_config(None, overrides)
        hub = await stack.enter_async_context(Hub(config))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        codec = EdxmlCodec(config.connectors.vdxp.namespace, 64 * MiB, 32 * MiB)
        yield AxisWorld(hub, portal, one_stop, http, axis, codec)


def dossier_event(n: int) -> tuple[str, dict[str, Any]]:
    """Dossier number `n` as the one-stop system's canonical event (status processing)."""
    code = f"{UNIT}-261123-{n:04d}"
    at = datetime.now(VN_TZ) - timedelta(hours=1)
    return code, {
        "event_id": f"ev-{code}",
        "dossier_code": code,
        "kind": "record",
        "status": "processing",
        "occurred_at": at.isoformat(),
        "record": {
            "procedure_code": PROCEDURE,
            "procedure_name": "Đăng ký khai sinh",
            "owner_name": "Nguyễn Văn An",
            "received_at": at.isoformat(),
        },
    }


async def known_dossier(world: World, n: int) -> str:
    """A dossier the one-stop system has told the hub about."""
    code, event = dossier_event(n)
    status, reply = await world.call("POST", "/api/v1/dossier-events", {"events": [event]})
    assert status == 200, reply
    assert reply["results"][0]["outcome"] == "accepted", reply
    return code


__all__ = ["AxisWorld", "axis_world", "dossier_event", "known_dossier"]
