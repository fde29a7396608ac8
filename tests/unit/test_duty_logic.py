"""The once-only duties' pure logic (`hub.duties`, `duties:` in the configuration): how long a
replica without a duty waits before trying again, the replica's name as a lease holder, and
the settings (checked, documented). The runner itself is tested on a real store
(`tests/integration/test_duties.py`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub.cli_status import render
from hub.config import DutiesConfig, load_config
from hub.duties import EXPIRY_MARGIN_S, Duties, replica_id, standby_wait_s
from hub.errors import ConfigError
from hub.store.base import Lease

ROOT = Path(__file__).resolve().parents[2]


def lease(expires_in_s: float, holder: str = "hub-b") -> Lease:
    now = 1_800_000_000.0
    return Lease("alerts", holder, now - 5, now - 1, now + expires_in_s, now)


def test_a_standby_tries_at_its_interval_or_just_after_the_holders_lease_lapses() -> None:
    assert standby_wait_s(None, 10.0) == 10.0  # nothing read (the store did not answer)
    assert standby_wait_s(lease(25.0), 10.0) == 10.0  # the holder will renew before
    assert standby_wait_s(lease(2.0), 10.0) == pytest.approx(2.0 + EXPIRY_MARGIN_S)
    assert standby_wait_s(lease(-3.0), 10.0) == 10.0  # lapsed already: taken at the next try


def test_a_lease_tells_what_is_left_of_it_on_the_stores_clock() -> None:
    assert lease(2.5).live
    assert lease(2.5).remaining_s == pytest.approx(2.5)
    assert not lease(0.0).live
    assert lease(-1.0).remaining_s == 0.0


def test_two_processes_from_one_configuration_are_two_holders() -> None:
    first, second = replica_id("hub-tinh-mau"), replica_id("hub-tinh-mau")
    assert first != second
    assert re.fullmatch(r"hub-tinh-mau-[0-9a-f]{8}", first)


def test_a_lease_must_be_renewed_more_often_than_it_lasts() -> None:
    with pytest.raises(ValueError, match="renewed more often"):
        Duties(object(), "hub-a", lease_s=3.0, renew_every_s=3.0)  # type: ignore[arg-type]
    assert DutiesConfig().renew_s == pytest.approx(10.0)
    assert DutiesConfig(lease_s=6).renew_s == pytest.approx(2.0)
    assert DutiesConfig(lease_s=6, renew_every_s=1.5).renew_s == 1.5
    with pytest.raises(ConfigError) as refused:
        load_config(None, {"duties": {"lease_s": 5, "renew_every_s": 5}})
    assert "duties.renew_every_s must be shorter than duties.lease_s" in str(refused.value.problems)


def test_every_duties_key_is_documented_and_in_the_example() -> None:
    reference = (ROOT / "docs" / "reference" / "configuration.md").read_text(encoding="utf-8")
    example = (ROOT / "config" / "hub.example.yaml").read_text(encoding="utf-8")
    for key in DutiesConfig.model_fields:
        assert f"`duties.{key}`" in reference, key
        assert f"{key}:" in example, key


def test_hub_status_names_the_replica_and_the_duties_it_runs() -> None:
    body = {
        "ready": True,
        "checks": {},
        "replica": "hub-a-0badcafe",
        "duties": ["alerts", "vdxp-poll"],
    }
    assert "  replica: hub-a-0badcafe, running the duties: alerts, vdxp-poll" in render("u", body)
    standby = {**body, "duties": []}
    assert "  replica: hub-a-0badcafe, running the duties: none" in render("u", standby)
