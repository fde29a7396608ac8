"""`hub procedures sync|show|quarantine` as an operator runs them: a real process against the
configured store, broker and DVCQG; its events reach the subscriber once the hub runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from hub.config import deep_merge, load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from sims.webhook.simulator import WebhookReceiver
from tests.integration.procedure_world import SUB_TOKEN, catalogue_overrides
from tests.support import PORTAL_PASSWORD, PORTAL_USER, hub_cli

SIZE = 40


async def test_an_operator_syncs_shows_and_lists_quarantine(
    tmp_path: Path, rabbit_url: str, broker_prefix: str
) -> None:
    async with (
        DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD, procedures=SIZE) as sim,
        WebhookReceiver(token=SUB_TOKEN) as receiver,
    ):
        overrides = catalogue_overrides(tmp_path, rabbit_url, broker_prefix, sim, receiver)
        config_path = tmp_path / "hub.yaml"
        config_path.write_text(yaml.safe_dump(overrides, allow_unicode=True))
        codes = sorted(sim.catalogue.records)
        bad = codes[0]
        sim.catalogue.set_raw(bad, "not json at all")

        status, out, err = await hub_cli("procedures", "sync", "-c", str(config_path))
        assert status == 0, err
        assert f"run 1: done: created {SIZE - 1}, quarantined 1" in out

        sim.catalogue.set_fee(codes[1], "777000")
        status, out, err = await hub_cli(
            "procedures", "sync", "-c", str(config_path), "--code", codes[1]
        )
        assert status == 0, err
        assert "run 2: done: substantive 1" in out

        status, out, err = await hub_cli("procedures", "show", "-c", str(config_path), codes[1])
        assert status == 0, err
        shown = json.loads(out)
        assert [v["version"] for v in shown["versions"]] == [1, 2]

        status, out, _ = await hub_cli("procedures", "quarantine", "-c", str(config_path))
        assert status == 0
        assert out.startswith(f"{bad}\t")
        assert "not JSON" in out

        status, _, err = await hub_cli("procedures", "show", "-c", str(config_path), "9.999999")
        assert status == 1
        assert "no procedure 9.999999" in err

        # A sync that fails says why on the line that says it failed.
        refused = tmp_path / "refused.yaml"
        wrong = {"connectors": {"national_portal": {"password": "not-the-password"}}}
        refused.write_text(yaml.safe_dump(deep_merge(overrides, wrong), allow_unicode=True))
        status, out, _ = await hub_cli("procedures", "sync", "-c", str(refused))
        assert status == 1
        failed = next(line for line in out.splitlines() if ": failed: " in line)
        assert "nothing" not in failed
        assert "credentials" in failed.lower() or "log" in failed.lower(), failed

        # No subscriber queue existed while the CLI ran: its events waited in the outbox, and
        # the hub delivers them when it starts.
        async with Hub(load_config(None, overrides)):
            assert await receiver.wait_for(SIZE, 30), len(receiver.events)
        assert sorted(e["event_id"] for e in receiver.events) == sorted(
            [f"{c}/v1r0/created" for c in codes[1:]] + [f"{codes[1]}/v2r0/updated"]
        )
