"""A new system is added by one package and a configuration section: the `echo` connector of
`tests/plugins/echo.py`, which nothing under `hub/` names, is found by its dotted name, its
section validated with file, line and key, and it runs on the core's consumer: it gets every
dossier change, waits out an outage of its destination without parking, shows its state in
`/readyz` and serves a route of its own."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from hub.config import load_config
from hub.dashboard import i18n
from hub.errors import ConfigError
from hub.outage import State
from hub.plugins import Connector
from hub.runtime import Hub
from sims.loopback import LoopbackServer
from sims.national_portal.simulator import DvcqgSimulator
from sims.one_stop.simulator import OneStopTraffic
from tests.plugins.echo import EchoConfig, EchoStore
from tests.plugins.echo import connector as echo
from tests.support import (
    ONESTOP_PASSWORD,
    ONESTOP_USER,
    PORTAL_PASSWORD,
    PORTAL_USER,
    UNIT,
    eventually,
    hub_overrides,
)
from tests.support.stores import open_test_store

PLUGIN = "tests.plugins.echo:connector"


class EchoReceiver(LoopbackServer):
    """The system the `echo` connector delivers to: records codes, or answers 503."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0)
        self.codes: list[str] = []
        self.down = False

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/echo", self._receive)

    async def _receive(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503)
        self.codes += (await request.json())["codes"]
        return web.json_response({"ok": True})


@pytest.fixture
async def receiver() -> AsyncIterator[EchoReceiver]:
    async with EchoReceiver() as server:
        yield server


def overrides(
    tmp_path: Path, rabbit_url: str, prefix: str, portal: str, url: str
) -> dict[str, Any]:
    tree = hub_overrides(tmp_path, rabbit_url, prefix, portal)
    tree["plugins"] = [PLUGIN]
    tree["connectors"]["echo"] = {"url": url}
    return tree


async def test_a_connector_from_outside_the_product_runs_on_the_core(
    tmp_path: Path, rabbit_url: str, broker_prefix: str, receiver: EchoReceiver
) -> None:
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal:
        tree = overrides(
            tmp_path, rabbit_url, broker_prefix, portal.url, f"{receiver.base_url}/echo"
        )
        async with Hub(load_config(None, tree)) as hub, aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{hub.port}"
            traffic = OneStopTraffic(f"{base}/dvcqg", ONESTOP_USER, ONESTOP_PASSWORD, UNIT, seed=31)
            first = (await traffic.run(traffic.plan(4))).expected_state().records
            await eventually(
                lambda: set(first) <= set(receiver.codes), 30, "the first dossiers echoed"
            )

            async with http.get(f"{base}/readyz") as r:
                ready = await r.json()
            assert ready["checks"]["consumer.echo"] == "ok"
            assert ready["connectors"]["echo"]["state"] == "up"
            async with http.get(f"{base}/api/v1/echo") as r:
                assert (await r.json())["sent"] >= len(first)
            # Its own table (its migration), its OpenAPI fragment and its dashboard page.
            assert hub.store is not None
            held = {row["code"] for row in await hub.store.slice("echo", EchoStore).sent()}
            assert set(first) <= held
            async with http.get(f"{base}/api/v1/openapi.json") as r:
                assert "/api/v1/echo" in (await r.json())["paths"]
            assert hub.board is not None
            page = await hub.board.flow("echo")
            assert page["enabled"] is True
            assert set(first) <= {row["code"] for row in page["tables"][0]["rows"]}
            assert i18n.translate("vi", "flow.echo") == "Kết nối thử Echo"

            # Its destination away: it waits like every connector, parks nothing, then delivers.
            receiver.down = True
            traffic = OneStopTraffic(f"{base}/dvcqg", ONESTOP_USER, ONESTOP_PASSWORD, UNIT, seed=32)
            second = (await traffic.run(traffic.plan(3))).expected_state().records
            echo = hub.connector("echo")
            assert echo is not None
            assert echo.guard is not None
            assert echo.queues is not None
            gate = echo.guard.gate
            await eventually(
                lambda: gate.outage is not None and time.time() - gate.outage.started_at > 1.0,
                30,
                "the echo destination down for a second",
            )
            assert gate.state() is State.down
            assert hub.probe is not None
            assert await hub.probe.count(echo.queues.parking) == 0
            receiver.down = False
            await eventually(
                lambda: set(second) <= set(receiver.codes), 30, "the second dossiers echoed"
            )
            assert await hub.probe.count(echo.queues.parking) == 0


def test_its_section_is_validated_with_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "hub.yaml"
    path.write_text(
        yaml.safe_dump(
            {"plugins": [PLUGIN], "connectors": {"echo": {"url": "ftp://x", "batch_sise": 3}}}
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    problems = "\n".join(refused.value.problems)
    assert f"{path}:" in problems
    assert "connectors.echo.url" in problems
    assert "connectors.echo.batch_sise: unknown key" in problems


def test_a_section_nobody_claims_and_a_name_that_is_not_a_connector_are_refused() -> None:
    with pytest.raises(ConfigError) as unclaimed:
        load_config(None, {"connectors": {"echo": {"url": "http://x"}}})
    assert "connectors.echo: unknown key" in "\n".join(unclaimed.value.problems)
    for dotted in ("tests.plugins.echo", "tests.plugins.echo:nothing", "tests.plugins.nope:x"):
        with pytest.raises(ConfigError, match="plugins"):
            load_config(None, {"plugins": [dotted]})
    with pytest.raises(ConfigError, match="is not a connector"):
        load_config(None, {"plugins": ["tests.plugins.echo:EchoConfig"]})


async def test_migrations_numbered_twice_are_refused(tmp_path: Path) -> None:
    """Two plug-ins whose migration numbers clash cannot open the store."""

    class Clashing(Connector):
        name = "clashing"
        config_model = EchoConfig
        migrations = "tests.plugins"  # the echo connector's folder: its numbers taken twice

    with pytest.raises(ValueError, match=r"two migrations numbered 5001"):
        async with open_test_store(tmp_path, (echo, Clashing())):
            pass


async def test_a_plug_in_numbers_its_migrations_from_5000(tmp_path: Path) -> None:
    """Below 5000 the numbers are the core's and the built-in connectors': a plug-in there
    could clash with a migration a later release adds, so it is refused, named."""

    class Early(Connector):
        name = "early"
        config_model = EchoConfig
        migrations = "tests.plugins.early"  # 1500_early.sql

    with pytest.raises(ValueError, match=r"numbered 1500: a plug-in's migrations are numbered"):
        async with open_test_store(tmp_path, (Early(),)):
            pass
