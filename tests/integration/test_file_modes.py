"""What a freshly started hub writes to disk is its user's alone: the store (and its -wal and
-shm files) 0600 in a 0700 folder, the axis spool 0700 (tightened if it was open), the
reconciliation reports 0600 in a 0700 folder; under the usual umask 022."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import aiohttp
import pytest

from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from sims.payment_platform.simulator import PaymentPlatformSimulator
from sims.vdxp.simulator import AxisSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.payments_world import PARTNER, SECRET, SUB_TOKEN, payment_overrides
from tests.integration.vdxp_world import AGENCIES, HUB_ORGAN, axis_section
from tests.integration.vdxp_world import SECRET as AXIS_SECRET
from tests.support import ONESTOP_TOKEN, PORTAL_PASSWORD, PORTAL_USER


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most services run with: what the hub must not rely on."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


@pytest.mark.usefixtures("usual_umask")
async def test_a_fresh_hubs_store_spool_and_reports_are_owner_only(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o755)  # made open by hand before the first start
    os.chmod(spool, 0o755)  # noqa: S103 - the open mode the hub must close
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as portal,
        WebhookReceiver(token=SUB_TOKEN) as receiver,
        PaymentPlatformSimulator(partner_code=PARTNER, secret=SECRET) as platform,
        AxisSimulator(systems={HUB_ORGAN: AXIS_SECRET}, agencies=AGENCIES) as axis,
    ):
        overrides = payment_overrides(
            tmp_path, rabbit_url, broker_prefix, portal.url, platform.base_url, receiver.url
        )
        overrides["store"]["path"] = str(tmp_path / "state" / "hub.db")
        overrides["connectors"]["vdxp"] = axis_section(axis.base_url, spool)
        overrides["subscribers"]["one_stop"]["events"].append("vdxp.#")
        reports = tmp_path / "reports" / "payments"
        overrides["connectors"]["payment_platform"]["reconciliation"]["output_dir"] = str(reports)
        async with Hub(load_config(None, overrides)) as hub, aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{hub.port}/api/v1/payments/reconciliation"
            headers = {"Authorization": f"Bearer {ONESTOP_TOKEN}"}
            day = date.today().isoformat()
            async with http.post(url, params={"date": day}, headers=headers) as reply:
                assert reply.status == 200, await reply.text()
            state = tmp_path / "state"
            files = sorted(p.name for p in state.iterdir())
            assert files == ["hub.db", "hub.db-shm", "hub.db-wal"]
            assert {name: mode(state / name) for name in files} == dict.fromkeys(files, 0o600)
            assert mode(state) == 0o700
            assert mode(spool) == 0o700
            written = sorted(reports.iterdir())
            assert [p.suffix for p in written] == [".csv", ".json"]
            assert [mode(p) for p in written] == [0o600, 0o600]
            assert (mode(reports), mode(reports.parent)) == (0o700, 0o700)


@pytest.mark.usefixtures("usual_umask")
async def test_a_store_left_open_by_an_older_version_is_tightened_when_opened(
    tmp_path: Path,
) -> None:
    from hub.store.sqlite import SqliteStore

    os.chmod(tmp_path, 0o750)  # noqa: S103 - an operator's folder: its mode is theirs
    path = tmp_path / "hub.db"
    async with SqliteStore.open(path):
        pass
    sidecars = [path.with_name("hub.db-wal"), path.with_name("hub.db-shm")]
    for file in (path, *sidecars):
        file.touch()
        os.chmod(file, 0o644)  # as an older version left them
    async with SqliteStore.open(path) as store:
        await store.ping()
        assert [mode(f) for f in (path, *sidecars)] == [0o600, 0o600, 0o600]
    assert mode(tmp_path) == 0o750
