"""The ministry test world: a real RabbitMQ, the hub in process, the DVCQG simulator, a
loopback one-stop system, and the ministry simulators (SOAP business registration, REST
civil status, and a third system built from test data only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from hub.runtime import Hub
from hub.store.sqlite import SqliteStore
from hub.validation import VN_TZ
from sims.ministry import examples
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.support import ONESTOP_TOKEN, UNIT, hub_overrides

ROOT = Path(__file__).resolve().parents[2]
LAND_DIR = ROOT / "tests" / "data" / "ministry_land"
SUB_TOKEN = "sub-token"
WSSE_USER, WSSE_PASSWORD = "hub-tinh", "mat-khau-wsse"
BUSINESS_PROCEDURE = examples.BUSINESS_PROCEDURE
CIVIL_PROCEDURE = examples.CIVIL_PROCEDURE
LAND_PROCEDURE = "1.004227"
FAST = {
    "timeout_s": 2,
    "retry": {"attempts": 2, "initial_backoff_s": 0.05, "max_backoff_s": 0.1},
    "breaker": {"failure_threshold": 50, "recovery_s": 1},
    "delay_tiers_s": [0.3, 0.6],
    "linger_ms": 10,
}


def code(n: int, day: str = "261123") -> str:
    return f"{UNIT}-{day}-{n:04d}"


def base_overrides(
    tmp_path: Path, rabbit_url: str, prefix: str, portal: DvcqgSimulator, one_stop: WebhookReceiver
) -> dict[str, Any]:
    overrides = hub_overrides(tmp_path, rabbit_url, prefix, portal.url)
    overrides["subscribers"] = {
        "one_stop": {
            "url": one_stop.url,
            "token": SUB_TOKEN,
            "events": ["ministry.#"],
            **FAST,
        }
    }
    overrides["ministries"] = {}
    return overrides


def business_section(sim_url: str, **extra: Any) -> dict[str, Any]:
    section = examples.business_registration(
        sim_url, WSSE_USER, WSSE_PASSWORD, poll_interval_s=0.3, **(FAST | extra)
    )
    section["poll"]["page_size"] = 50
    return section


@dataclass
class World:
    hub: Hub
    portal: DvcqgSimulator
    one_stop: WebhookReceiver
    http: aiohttp.ClientSession

    @property
    def store(self) -> SqliteStore:
        assert self.hub.store is not None
        return self.hub.store

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.hub.port}"

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str = ONESTOP_TOKEN,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        sent = {"Authorization": f"Bearer {token}", **(headers or {})}
        async with self.http.request(method, self.base + path, json=body, headers=sent) as r:
            ctype = r.headers.get("Content-Type", "")
            return r.status, await (r.json() if "json" in ctype else r.text())

    async def dossiers(self, codes: list[str], procedure: str, status: str = "accepted") -> None:
        """The one-stop system tells the hub about dossiers of `procedure`."""
        at = datetime.now(VN_TZ) - timedelta(hours=1)
        events = [
            {
                "event_id": f"ev-{c}-{status}",
                "dossier_code": c,
                "kind": "record",
                "status": status,
                "occurred_at": at.isoformat(),
                "record": {
                    "procedure_code": procedure,
                    "procedure_name": "Đăng ký",
                    "owner_name": "Nguyễn Văn An",
                    "applicant_id": "001099012345",
                    "summary": "Công ty TNHH Ánh Dương",
                    "received_at": at.isoformat(),
                },
            }
            for c in codes
        ]
        for start in range(0, len(events), 100):
            status_code, reply = await self.call(
                "POST", "/api/v1/dossier-events", {"events": events[start : start + 100]}
            )
            assert status_code == 200, reply
            assert all(r["outcome"] == "accepted" for r in reply["results"]), reply

    def results_at_one_stop(self, system: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.one_stop.events
            if e["type"] == "ministry.result" and (system is None or e["system"] == system)
        ]

    def portal_steps(self, dossier: str, status: int) -> list[dict[str, Any]]:
        """The processing steps DVCQG holds for `dossier` with status `status`."""
        steps = self.portal.steps.get(dossier, [])
        return [s for s in steps if str(s.get("TrangThai")) == str(status)]


PUSH_TOKEN = "day-la-token-day-ket-qua"
CLIENT_ID, CLIENT_SECRET = "hub-hotich", "bí mật:hộ+tịch/2026"  # characters Basic must encode
HMAC_KEY, HMAC_SECRET = "hub-key", "bi-mat-hmac"


def civil_section(base_url: str, auth: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return examples.civil_status(base_url, auth, **(FAST | extra))


def oauth2(base_url: str, client_auth: str = "basic") -> dict[str, Any]:
    return examples.oauth2(base_url, CLIENT_ID, CLIENT_SECRET, client_auth)


HMAC_AUTH = {"kind": "hmac", "key_id": HMAC_KEY, "secret": HMAC_SECRET}
REST_POLL = {
    "operation": "GET /api/hotich/v1/ket-qua",
    "params": {"sau": "$cursor", "soLuong": "$limit"},
    "interval_s": 0.3,
    "page_size": 20,
}
