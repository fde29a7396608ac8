"""The alert rules' logic: episodes fire once after their time and resolve once, a figure that
could not be read changes nothing, an alert read back after a restart goes on and resolves
only on a reading that knows, dead letters count only their rises within the window, and
each rule's sentence reads in both languages."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.alerts import Alert, Alerting, Episodes, Growth, Reading, Rule, summary
from hub.config import AlertEmail, AlertsConfig, AlertWebhook, load_config
from hub.dashboard import i18n
from hub.errors import ConfigError
from hub.health import Watched
from hub.store.base import FiringAlert
from hub.store.dashboard import Completeness
from hub.synclag import bucket_of

DOWN = Rule.connector_down


def down(holding: bool, since: float | None = None, value: float | None = None) -> Reading:
    return Reading(DOWN, "national_portal", holding, value, 300.0, 300.0, since, "down: HTTP 503")


def test_an_episode_fires_once_after_its_time_and_resolves_once() -> None:
    episodes = Episodes()
    assert episodes.step([down(True)], 1000.0) == []  # pending
    assert episodes.step([down(True)], 1299.0) == []
    fired = episodes.step([down(True, value=300)], 1300.0)
    assert [(s, a.rule, a.since) for s, a in fired] == [("firing", DOWN, 1000.0)]
    for at in (1330.0, 1360.0, 5000.0):
        assert episodes.step([down(True, value=at - 1000)], at) == []
    resolved = episodes.step([down(False)], 5030.0)
    assert [(s, a.episode, a.resolved_at) for s, a in resolved] == [
        ("resolved", fired[0][1].episode, 5030.0)
    ]
    assert episodes.step([down(False)], 5060.0) == []
    assert episodes.firing == {}


def test_a_condition_that_clears_before_its_time_sends_nothing() -> None:
    episodes = Episodes()
    assert episodes.step([down(True)], 0.0) == []
    assert episodes.step([down(False)], 200.0) == []
    assert episodes.step([down(True)], 250.0) == []  # a new episode begins here
    assert episodes.step([down(True)], 500.0) == []
    assert [s for s, _ in episodes.step([down(True)], 550.0)] == ["firing"]


def test_the_sources_start_counts_and_a_new_episode_gets_a_new_id() -> None:
    episodes = Episodes()
    first = episodes.step([down(True, since=0.0)], 400.0)  # down since long before
    assert [(s, a.since) for s, a in first] == [("firing", 0.0)]
    episodes.step([down(False)], 500.0)
    second = episodes.step([down(True, since=600.0)], 900.0)
    assert second[0][1].episode != first[0][1].episode


def test_a_figure_not_read_neither_fires_nor_resolves() -> None:
    episodes = Episodes()
    episodes.step([down(True, since=0.0)], 400.0)
    assert episodes.step([], 500.0) == []  # the broker or the store did not answer
    assert list(episodes.firing) == [(DOWN, "national_portal")]


def restored_down() -> tuple[Episodes, Alert]:
    """Episodes after a restart, with the connector-down alert read back from the store."""
    kept = Alert(DOWN, "national_portal", 400.0, 300.0, 0.0, 300.0, "down: HTTP 503", "ep-1")
    episodes = Episodes()
    episodes.restore([kept])
    return episodes, kept


def unknown_up() -> Reading:
    """What a connector reads after a start, before any of its calls was answered."""
    return Reading(DOWN, "national_portal", False, None, 300.0, 300.0, known=False)


def test_a_restored_alert_goes_on_while_its_condition_holds_with_no_second_firing() -> None:
    episodes, kept = restored_down()
    assert episodes.step([unknown_up()], 1000.0) == []  # not yet known: still firing
    assert episodes.firing[(DOWN, "national_portal")] is kept
    assert episodes.step([down(True, since=990.0, value=10.0)], 1010.0) == []  # adopted
    resolved = episodes.step([down(False)], 2000.0)
    assert [(s, a.episode, a.since) for s, a in resolved] == [("resolved", "ep-1", 0.0)]


def test_a_restored_alert_resolves_on_a_reading_that_knows() -> None:
    episodes, _ = restored_down()
    assert episodes.step([unknown_up()], 1000.0) == []
    resolved = episodes.step([down(False)], 1030.0)  # a call answered: it is back
    assert [(s, a.episode) for s, a in resolved] == [("resolved", "ep-1")]
    assert episodes.firing == {}


def test_an_unknown_reading_still_resolves_an_alert_this_process_fired() -> None:
    episodes = Episodes()
    fired = episodes.step([down(True, since=0.0)], 400.0)
    resolved = episodes.step([unknown_up()], 500.0)
    assert [(s, a.episode) for s, a in resolved] == [("resolved", fired[0][1].episode)]


def test_connectors_and_rules_are_episodes_of_their_own() -> None:
    episodes = Episodes()
    other = Reading(DOWN, "ministry.tax", True, None, 300.0, 300.0, 0.0)
    lag = Reading(Rule.lag_high, None, True, 4000.0, 3600.0, 0.0)
    fired = episodes.step([down(True, since=0.0), other, lag], 300.0)
    assert sorted((a.rule, a.connector or "") for _, a in fired) == [
        (DOWN, "ministry.tax"),
        (DOWN, "national_portal"),
        (Rule.lag_high, ""),
    ]
    resolved = episodes.step([down(False)], 310.0)
    assert [(a.connector) for _, a in resolved] == ["national_portal"]
    assert len(episodes.firing) == 2


def test_new_dead_letters_are_the_rises_within_the_window() -> None:
    growth = Growth(900.0)
    assert growth.add("p", 0.0, 10) == 0  # the first count: nothing known to be new
    assert growth.add("p", 30.0, 13) == 3
    assert growth.add("p", 60.0, 0) == 3  # a replay empties it: the 3 still came
    assert growth.add("p", 90.0, 2) == 5
    assert growth.add("p", 931.0, 2) == 2  # the first rise left the window
    assert growth.add("p", 991.0, 2) == 0
    assert growth.add("other", 991.0, 50) == 0


def alert(rule: Rule, connector: str | None, value: float, threshold: float) -> Alert:
    return Alert(rule, connector, value, threshold, 1765000000.0, 1765000312.0, "d", "e1")


def test_every_rule_reads_in_both_languages_with_its_figures() -> None:
    config = AlertsConfig()
    for package in ("connectors.national_portal", "connectors.ministry"):
        i18n.add_words(package)  # the connectors' names, as the hub adds them at start
    cases = [
        (alert(Rule.connector_down, "national_portal", 312, 300), "Cổng DVCQG", "5,2 min"),
        (alert(Rule.dead_letters_growing, "national_portal", 1204, 0), "1.204", "15,0 min"),
        (alert(Rule.completeness_low, None, 0.9, 0.95), "90,0 %", "95,0 %"),
        (alert(Rule.lag_high, None, 7300, 3600), "2,0 h", "60,0 min"),
        (alert(Rule.consumer_missing, "ministry.tax", 130, 120), "“tax”", "12:46:40 (UTC+7)"),
    ]
    for a, *words in cases:
        for status in ("firing", "resolved"):
            vi = summary(a, status, "vi", config, {})
            en = summary(a, status, "en", config, {})
            assert not vi.startswith("alert."), vi
            assert vi != en
            assert "{" not in vi + en
        fired = summary(a, "firing", "vi", config, {})
        for word in words:
            assert word in fired, (word, fired)
    named = summary(cases[0][0], "firing", "vi", config, {"national_portal": "Cổng Quốc gia"})
    assert named.startswith("Cổng Quốc gia")
    assert "1,204" in summary(cases[1][0], "firing", "en", config, {})


ROOT = Path(__file__).resolve().parents[2]


def test_every_alerts_key_is_documented_and_in_the_example() -> None:
    reference = (ROOT / "docs" / "reference" / "configuration.md").read_text(encoding="utf-8")
    example = (ROOT / "config" / "hub.example.yaml").read_text(encoding="utf-8")
    blocks = ("webhooks", "email")  # documented key by key below
    keys = [f"alerts.{k}" for k in AlertsConfig.model_fields if k not in blocks]
    keys += [f"alerts.webhooks.<name>.{k}" for k in AlertWebhook.model_fields]
    keys += [f"alerts.email.{k}" for k in AlertEmail.model_fields]
    for key in keys:
        assert f"`{key}`" in reference, key
        assert f"{key.rsplit('.', 1)[1]}:" in example, key


def test_a_webhooks_token_comes_from_the_environment_and_is_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "hub.yaml"
    config_file.write_text(
        "alerts:\n  webhooks:\n    ops_chat:\n      url: https://chat.example/hooks/hub\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("HUB_ALERTS__WEBHOOKS__OPS_CHAT__TOKEN", "s3cret-token")
    config = load_config(config_file)
    token = config.alerts.webhooks["ops_chat"].token
    assert token is not None
    assert token.get_secret_value() == "s3cret-token"
    assert "s3cret-token" not in repr(config.alerts)
    with pytest.raises(ConfigError) as refused:
        load_config(None, {"alerts": {"webhooks": {"x": {"url": "chat.example/hooks"}}}})
    assert "alerts.webhooks.x.url" in str(refused.value.problems)


class Kept:
    """The store's firing alerts, in memory (pure logic)."""

    def __init__(self, *alerts: FiringAlert) -> None:
        self.rows = {(a.rule, a.connector): a for a in alerts}

    async def firing_alerts(self) -> list[FiringAlert]:
        return list(self.rows.values())

    async def alert_fired(self, alert: FiringAlert) -> None:
        self.rows[(alert.rule, alert.connector)] = alert

    async def alert_resolved(self, rule: str, connector: str, episode: str) -> None:
        if (found := self.rows.get((rule, connector))) and found.episode == episode:
            del self.rows[(rule, connector)]


class Quiet:
    def publish(self, notice: dict[str, object]) -> None:
        raise AssertionError(f"nothing is sent at a restore: {notice}")


async def test_a_kept_alert_this_hub_no_longer_checks_is_forgotten_not_restored() -> None:
    gone = FiringAlert("HubConnectorDown", "a_removed_connector", "ep-1", 0, 300, 400, 300, "")
    renamed = FiringAlert("HubSomethingOld", "", "ep-2", 0, 300, 1, 1, "")
    lag = FiringAlert("HubSyncLagHigh", "", "ep-3", 0, 300, 900, 600, "")
    kept = Kept(gone, renamed, lag)
    portal = Watched("national_portal", None)
    alerting = Alerting(AlertsConfig(), "test", [portal], None, Lag(), Quiet(), kept=kept)

    await alerting._restore()

    assert list(alerting.episodes.firing) == [(Rule.lag_high, None)]
    assert alerting.episodes.firing[(Rule.lag_high, None)].episode == "ep-3"
    assert list(kept.rows) == [("HubSyncLagHigh", "")]  # the other two are forgotten


async def test_the_hubs_own_kept_alerts_are_forgotten_without_dvcqg_to_read() -> None:
    lag = FiringAlert("HubSyncLagHigh", "", "ep-3", 0, 300, 900, 600, "")
    kept = Kept(lag)
    ministry = Watched("civil_status", None)
    alerting = Alerting(AlertsConfig(), "test", [ministry], None, Lag(), Quiet(), kept=kept)

    await alerting._restore()

    assert alerting.episodes.firing == {}
    assert kept.rows == {}


class Seeing:
    """A publisher that notes, for each notification, what the store kept at that moment."""

    def __init__(self, kept: Kept) -> None:
        self.kept = kept
        self.saw: list[tuple[str, list[str]]] = []

    def publish(self, notice: dict[str, object]) -> None:
        self.saw.append((str(notice["type"]), [a.episode for a in self.kept.rows.values()]))


class Lag:
    """Sync figures with a lag p95 far over the bound, then none."""

    def __init__(self) -> None:
        self.high = True

    async def completeness(self, destination: str) -> Completeness:
        return Completeness(dossiers=0, unconfirmed=0)

    async def lag_histogram(self, destination: str, since: float) -> dict[int, int]:
        return {bucket_of(7200.0): 5} if self.high else {}  # two hours late, then nothing


async def test_a_change_is_kept_before_its_notification_is_queued() -> None:
    """A stop may cancel a check at any await: keeping first means a notification a receiver
    got is always in the store, so a restart never fires that episode again."""
    kept = Kept()
    seeing, lag = Seeing(kept), Lag()
    portal = Watched("national_portal", None)  # no guard, no queues: only the sync rules
    config = AlertsConfig(lag_high_for_s=0)
    alerting = Alerting(config, "test", [portal], None, lag, seeing, kept=kept)

    fired = await alerting.check(now=1000.0)
    lag.high = False
    await alerting.check(now=1060.0)

    episode = next(a.episode for s, a in fired if a.rule is Rule.lag_high)
    assert ("alert.firing", [episode]) in seeing.saw  # kept when it was queued
    assert seeing.saw[-1] == ("alert.resolved", [])  # forgotten when it was queued
