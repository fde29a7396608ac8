"""The portal's change feed, the operational endpoints and the dead-letter CLI, for real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import yaml

from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from sims.one_stop.simulator import OneStopTraffic
from tests.integration.status_world import FacadeCaller
from tests.support import (
    ONESTOP_PASSWORD,
    ONESTOP_TOKEN,
    ONESTOP_USER,
    PORTAL_PASSWORD,
    PORTAL_USER,
    UNIT,
    eventually,
    hub_cli,
    hub_overrides,
)
from tests.support.parking import in_place

AUTH = {"Authorization": f"Bearer {ONESTOP_TOKEN}"}


async def read_feed(
    http: aiohttp.ClientSession, base: str, after: str, limit: int
) -> dict[str, Any]:
    url = f"{base}/api/v1/portal/dossier-changes?after={after}&limit={limit}"
    async with http.get(url, headers=AUTH) as r:
        assert r.status == 200
        page: dict[str, Any] = await r.json()
        return page


async def test_feed_pages_newest_snapshots_in_commit_order_and_resumes(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim:
        config = load_config(None, hub_overrides(tmp_path, rabbit_url, broker_prefix, sim.url))
        async with Hub(config) as hub, aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{hub.port}"
            traffic = OneStopTraffic(f"{base}/dvcqg", ONESTOP_USER, ONESTOP_PASSWORD, UNIT, seed=2)
            scripts = traffic.plan(12)
            report = await traffic.run(scripts)
            newest = {
                c: str(r["TrangThaiHoSo"]) for c, r in report.expected_state().records.items()
            }

            seen: dict[str, int] = {}
            cursors: list[int] = []
            cursor = "0"
            while True:
                page = await read_feed(http, base, cursor, 5)
                if not page["items"]:
                    assert page["next_cursor"] == cursor
                    break
                for item in page["items"]:
                    cursors.append(int(item["cursor"]))
                    seen[item["dossier_code"]] = item["status"]
                cursor = page["next_cursor"]
            assert cursors == sorted(cursors)
            assert len(cursors) == len(set(cursors)) == 12  # each dossier once: its newest
            assert {c: str(s) for c, s in seen.items()} == newest

            # A new change shows up after the last cursor, and only it.
            caller = FacadeCaller(http, f"{base}/dvcqg")
            await caller.login()
            code = scripts[0].code
            step = dict(scripts[0].pairs[-1][1])
            step.update(
                ThoiDiemXuLy="20230101080000", NoiDungXuLy="Ghi chú bổ sung", TrangThai="10"
            )
            await caller.call("CapNhatTienDoHoSoMC", data=[step])
            page = await read_feed(http, base, cursor, 5)
            # A late step changes no snapshot unless it is newer; this one is newer only if
            # the dossier's last step was earlier. Either way at most this dossier appears.
            assert {i["dossier_code"] for i in page["items"]} <= {code}


async def test_health_readiness_metrics_and_openapi(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim:
        config = load_config(None, hub_overrides(tmp_path, rabbit_url, broker_prefix, sim.url))
        async with Hub(config) as hub, aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{hub.port}"
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 200
                assert (await r.json())["checks"] == {
                    "store": "ok",
                    "broker": "ok",
                    "consumer.national_portal": "ok",
                }
            caller = FacadeCaller(http, f"{base}/dvcqg")
            await caller.login()
            await caller.call("DongBoHoSoMC", isUpdating="False", data=[{"MaHoSo": "x"}])
            async with http.get(f"{base}/metrics") as r:
                text = await r.text()
            assert 'hub_inbound_items_total{door="facade",outcome="refused"}' in text
            async with http.get(f"{base}/api/v1/openapi.json") as r:
                doc = await r.json()
            assert set(doc["paths"]) >= {"/api/v1/dossier-events", "/api/v1/portal/dossier-changes"}
            assert "DossierEventIn" in doc["components"]["schemas"]
            # Readiness follows the broker: closing its connection makes the hub not ready.
            assert hub.broker is not None
            await hub.broker.connection.close()
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 503
                checks = (await r.json())["checks"]
                assert checks["broker"].startswith("failing")
                assert checks["consumer.national_portal"].startswith("failing")


async def test_dlq_cli_lists_shows_replays_and_discards_with_an_audit_trail(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim:
        overrides = hub_overrides(tmp_path, rabbit_url, broker_prefix, sim.url)
        config_path = tmp_path / "hub.yaml"
        config_path.write_text(yaml.safe_dump(overrides), encoding="utf-8")
        async with Hub(load_config(config_path)) as hub, aiohttp.ClientSession() as http:
            caller = FacadeCaller(http, f"http://127.0.0.1:{hub.port}/dvcqg")
            await caller.login()
            traffic = OneStopTraffic(caller.url, ONESTOP_USER, ONESTOP_PASSWORD, UNIT, seed=4)
            first, second = traffic.plan(2)
            sim.faults.reject = {first.code: "07", second.code: "07"}
            records = [first.pairs[0][0], second.pairs[0][0]]
            await caller.call("DongBoHoSoMC", isUpdating="False", data=records)

            async def parked_lines() -> list[str]:
                out = await hub_cli("dlq", "list", "national_portal", "-c", str(config_path))
                assert out.returncode == 0, out.stderr
                return [line for line in out.stdout.splitlines() if line]

            async def both_parked() -> list[str]:
                lines = await parked_lines()
                return lines if len(lines) >= 2 else []

            lines = await eventually(both_parked, 30, "both refused dossiers parked")
            ids = {line.split("\t")[1]: line.split("\t")[0] for line in lines}
            # Each command below reads or acts on the parking queue only once the previous one
            # put every message back (that happens asynchronously).
            portal = hub.connector("national_portal")
            assert portal is not None
            assert portal.queues is not None
            assert hub.broker is not None
            broker, queue = hub.broker, portal.queues.parking
            await in_place(broker, queue, 2)
            assert set(ids) == {first.code, second.code}
            assert all("07" in line for line in lines)

            shown = await hub_cli(
                "dlq", "show", "national_portal", ids[first.code], "-c", str(config_path)
            )
            assert shown.returncode == 0
            assert first.code in shown.stdout
            assert "07" in shown.stdout

            sim.faults.reject = {}
            await in_place(broker, queue, 2)
            replay = await hub_cli(
                "dlq",
                "replay",
                "national_portal",
                "--id",
                ids[first.code],
                "--actor",
                "operator-an",
                "-c",
                str(config_path),
            )
            assert replay.returncode == 0, replay.stderr
            assert "replayed 1 message" in replay.stdout
            await eventually(
                lambda: first.code in sim.dossiers, 30, "the replayed dossier at DVCQG"
            )

            await in_place(broker, queue, 1)
            discard = await hub_cli(
                "dlq",
                "discard",
                "national_portal",
                "--code",
                "07",
                "--actor",
                "operator-binh",
                "-c",
                str(config_path),
            )
            assert discard.returncode == 0, discard.stderr
            assert await parked_lines() == []
            assert second.code not in sim.dossiers

            missing = await hub_cli(
                "dlq", "replay", "national_portal", "--id", "no-such-id", "-c", str(config_path)
            )
            assert missing.returncode == 1
            assert "not found" in missing.stderr

            assert hub.store is not None
            audit = await hub.store.audit_entries(10)
            assert [(a.actor, a.action) for a in audit[:2]] == [
                ("operator-binh", "dlq.discard"),
                ("operator-an", "dlq.replay"),
            ]
            assert audit[1].target == f"national_portal:{ids[first.code]}"
