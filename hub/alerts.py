"""The hub's own alerts, for installs without Prometheus.

The same five rules as `deploy/prometheus/hub-alerts.yml`, on the same figures, evaluated in
process every `alerts.check_interval_s`:

* `HubConnectorDown`: a connector down or refused its credentials for `connector_down_for_s`;
* `HubDeadLettersGrowing`: more than `dead_letters_new_max` new dead letters at a connector
  within the last `dead_letters_window_s` (counted from the broker's parking queue);
* `HubSyncCompletenessLow`: sync completeness to DVCQG under `completeness_min_ratio` for
  `completeness_low_for_s`;
* `HubSyncLagHigh`: the sync lag's p95 over the last `lag_window_s` above `lag_p95_max_s` for
  `lag_high_for_s`;
* `HubConsumerMissing`: a connector's consumer not subscribed to its queue for
  `consumer_missing_for_s`.

An alert's episode begins when its condition is first seen (or when its source says it
began: an outage's start) and fires once it has held for its time; it resolves at the first
check that finds the condition gone. Each episode sends one "firing" and one "resolved"
notification (`hub.notify`), never more; a figure that cannot be read (the broker or the store
away) changes nothing, neither firing nor resolving. Active alerts are shown on the
dashboard's overview and in `/readyz`. With several replicas the checks are a once-only duty:
the replica holding it checks and notifies, and shows the active alerts (decision 0091).

A firing alert is kept in the store until it resolves (`KeptAlerts`), and whoever begins the
checks (the hub after a restart, the replica the duty passed to) reads it back: its episode
goes on, with no second "firing". A restored alert resolves only on a reading that knows: a
connector's "up" counts once one of its calls was answered since the start (`Gate.answered`),
new dead letters once a whole window was watched. A change is kept before its notification
is queued: a process that dies between the two (microseconds; a queued notification dies
with its process anyway) loses that one notification, never sends it twice.

This module must never change what it reads, and never wait for a notification to be sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import structlog

from hub.config import AlertsConfig
from hub.dashboard import formats, i18n
from hub.dashboard.board import SYNC_DESTINATION
from hub.health import QueueProbe, Watched, condition_of, counts_of
from hub.masking import mask_text
from hub.outage import State
from hub.store.base import FiringAlert
from hub.store.dashboard import Completeness
from hub.synclag import percentiles

log = structlog.get_logger(__name__)

DOWN = frozenset({State.down, State.credentials_refused})


class Rule(StrEnum):
    """The rules, by the names the Prometheus rules give them."""

    connector_down = "HubConnectorDown"  # down or credentials refused, for long
    dead_letters_growing = "HubDeadLettersGrowing"  # new dead letters in a window
    completeness_low = "HubSyncCompletenessLow"  # DVCQG has not confirmed enough dossiers
    lag_high = "HubSyncLagHigh"  # DVCQG confirms changes late
    consumer_missing = "HubConsumerMissing"  # a consumer is not subscribed to its queue


# How each rule's value and threshold read in a sentence.
_KIND = {
    Rule.connector_down: "duration",
    Rule.dead_letters_growing: "number",
    Rule.completeness_low: "percent",
    Rule.lag_high: "duration",
    Rule.consumer_missing: "duration",
}


@dataclass(frozen=True)
class Reading:
    """One rule's condition for one connector (or for the hub) at one check."""

    rule: Rule
    connector: str | None
    holding: bool
    value: float | None
    threshold: float
    for_s: float
    since: float | None = None  # when the condition began, if its source knows
    detail: str = ""  # masked
    # False while the source cannot tell yet (after a start, a connector whose calls have not
    # been answered reads "up"): a restored alert is not resolved on such a reading.
    known: bool = True


@dataclass
class Alert:
    rule: Rule
    connector: str | None
    value: float | None
    threshold: float
    since: float  # when the condition began
    fired_at: float
    detail: str
    episode: str
    resolved_at: float | None = None
    # Read back from the store at a start or a hand-over, not yet seen holding by this process.
    restored: bool = False


Key = tuple[Rule, str | None]


@dataclass
class Episodes:
    """Which conditions are pending (holding, not yet for long enough) and which are firing.
    `step` returns the notifications a check calls for: ("firing", alert) once an episode has
    held for its time, ("resolved", alert) when it ends; nothing else. Pure logic."""

    pending: dict[Key, float] = field(default_factory=dict)
    firing: dict[Key, Alert] = field(default_factory=dict)

    def restore(self, alerts: Iterable[Alert]) -> None:
        """Alerts that fired before this process held the checks (a restart, a hand-over):
        firing again without a notification; one resolves only on a reading that knows."""
        for alert in alerts:
            alert.restored = True
            self.firing[(alert.rule, alert.connector)] = alert

    def step(self, readings: Iterable[Reading], now: float) -> list[tuple[str, Alert]]:
        changes: list[tuple[str, Alert]] = []
        for r in readings:
            key = (r.rule, r.connector)
            alert = self.firing.get(key)
            if not r.holding:
                self.pending.pop(key, None)
                if alert is not None and (r.known or not alert.restored):
                    del self.firing[key]
                    alert.value, alert.detail, alert.resolved_at = r.value, r.detail, now
                    changes.append(("resolved", alert))
                continue
            if alert is not None:  # still firing: the figures move, nothing is sent
                alert.value, alert.detail, alert.restored = r.value, r.detail, False
                continue
            began = self.pending.setdefault(key, now if r.since is None else min(r.since, now))
            if now - began >= r.for_s:
                del self.pending[key]
                alert = Alert(
                    r.rule, r.connector, r.value, r.threshold, began, now, r.detail, _episode()
                )
                self.firing[key] = alert
                changes.append(("firing", alert))
        return changes


def _alert_of(kept: FiringAlert) -> Alert | None:
    """A kept alert as the checks hold it; None for a rule this version no longer has."""
    try:
        rule = Rule(kept.rule)
    except ValueError:
        return None
    return Alert(
        rule, kept.connector or None, kept.value, kept.threshold, kept.since, kept.fired_at,
        kept.detail, kept.episode,
    )  # fmt: skip


def _episode() -> str:
    return secrets.token_hex(8)


class Growth:
    """New dead letters per connector within a window, from its parking queue's successive
    counts: each rise counts, a fall (a replay, a discard) does not undo what came before."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._last: dict[str, int] = {}
        self._rises: dict[str, deque[tuple[float, int]]] = {}

    def add(self, name: str, at: float, count: int) -> int:
        """Note `count` at `at`; the new ones within the window."""
        last = self._last.get(name)
        self._last[name] = count
        rises = self._rises.setdefault(name, deque())
        if last is not None and count > last:
            rises.append((at, count - last))
        while rises and rises[0][0] <= at - self.window_s:
            rises.popleft()
        return sum(n for _, n in rises)


class SyncFigures(Protocol):
    """The store's sync figures (its read-only connection)."""

    async def completeness(self, destination: str) -> Completeness: ...

    async def lag_histogram(self, destination: str, since: float) -> dict[int, int]: ...


class KeptAlerts(Protocol):
    """Where the firing alerts are kept until they resolve (the store), so that a restart or
    a hand-over of the checks continues their episodes."""

    async def firing_alerts(self) -> list[FiringAlert]: ...

    async def alert_fired(self, alert: FiringAlert) -> None: ...

    async def alert_resolved(self, rule: str, connector: str, episode: str) -> None: ...


class Publisher(Protocol):
    """Where notifications go (`hub.notify.Notifier`): `publish` never waits."""

    def publish(self, notice: dict[str, Any]) -> None: ...


class Alerting:
    """The rules over this hub's connectors and store, checked every `check_interval_s`."""

    def __init__(
        self,
        config: AlertsConfig,
        instance: str,
        watched: list[Watched],
        probe: QueueProbe | None,
        figures: SyncFigures,
        publisher: Publisher,
        names: Mapping[str, str] | None = None,
        kept: KeptAlerts | None = None,
    ) -> None:
        self.config = config
        self.instance = instance
        self.watched = watched
        self.probe = probe
        self.figures = figures
        self.publisher = publisher
        self.names = dict(names or {})
        self.kept = kept
        self.episodes = Episodes()
        self._began = time.time()  # when this process began the checks
        self.growth = Growth(config.dead_letters_window_s)
        self._missing_since: dict[str, float] = {}
        self.checks = 0  # evaluations done, for whoever waits for the next one

    # -- what others read -----------------------------------------------------------------------

    def active(self) -> list[dict[str, Any]]:
        """The firing alerts, oldest first, as `/readyz` and the overview show them."""
        alerts = sorted(self.episodes.firing.values(), key=lambda a: a.since)
        now = time.time()
        return [self.as_json(a, "firing", now) for a in alerts]

    def as_json(self, alert: Alert, status: str, now: float | None = None) -> dict[str, Any]:
        """The alert as notifications, `/readyz` and the overview carry it; its sentences
        count its duration to `now` (by default to when it fired, or resolved)."""
        return {
            "rule": str(alert.rule),
            "status": status,
            "connector": alert.connector,
            "value": alert.value,
            "threshold": alert.threshold,
            "since": _iso(alert.since),
            "fired_at": _iso(alert.fired_at),
            "resolved_at": _iso(alert.resolved_at) if alert.resolved_at else None,
            "detail": alert.detail,
            "episode": alert.episode,
            "summary": {
                lang: summary(alert, status, lang, self.config, self.names, now)
                for lang in i18n.LANGUAGES
            },
        }

    # -- checking -------------------------------------------------------------------------------

    async def duty(self) -> None:
        """The checks, a once-only duty (`hub.duties`): only the replica holding it checks and
        notifies. A first check at once gives the counts later ones rise from (what was parked
        before is not new), then one every `check_interval_s`. When the duty leaves this
        replica, its episodes are forgotten here; the holder reads the firing ones back from
        the store (`kept`) when it begins, so a restart or a hand-over continues them."""
        self._began = time.time()
        try:
            await self._restore()
            await self._check_safely()
            while True:
                await asyncio.sleep(self.config.check_interval_s)
                await self._check_safely()
        finally:
            self.episodes = Episodes()
            self.growth = Growth(self.config.dead_letters_window_s)
            self._missing_since.clear()

    async def _restore(self) -> None:
        """The alerts kept firing, read back. One this hub no longer checks (its connector
        left the configuration, DVCQG's sync figures for the hub's own rules, its rule this
        version) would never resolve: it is forgotten, without a notification, and logged."""
        if self.kept is None:
            return
        try:
            found = await self.kept.firing_alerts()
        except Exception as exc:  # the store away: this holder begins afresh, as before
            log.warning("alerts_restore_failed", error=repr(exc))
            return
        checked = {w.name for w in self.watched}
        if SYNC_DESTINATION in checked:  # the hub's own rules read DVCQG's sync figures
            checked.add("")
        restored: list[Alert] = []
        for kept in found:
            alert = _alert_of(kept) if kept.connector in checked else None
            if alert is not None:
                restored.append(alert)
                continue
            log.warning("alert_forgotten", rule=kept.rule, connector=kept.connector)
            with contextlib.suppress(Exception):
                await self.kept.alert_resolved(kept.rule, kept.connector, kept.episode)
        self.episodes.restore(restored)
        if restored:
            log.info("alerts_restored", count=len(restored))

    async def _keep(self, status: str, alert: Alert) -> None:
        """The change in the store: a firing alert kept, a resolved one forgotten. A failure
        costs only the continuity of that episode across a restart."""
        if self.kept is None:
            return
        connector = alert.connector or ""
        try:
            if status == "firing":
                await self.kept.alert_fired(
                    FiringAlert(
                        str(alert.rule), connector, alert.episode, alert.since,
                        alert.fired_at, alert.value, alert.threshold, alert.detail,
                    )
                )  # fmt: skip
            else:
                await self.kept.alert_resolved(str(alert.rule), connector, alert.episode)
        except Exception as exc:
            log.warning("alerts_keep_failed", rule=str(alert.rule), error=repr(exc))

    async def _check_safely(self) -> None:
        try:
            await self.check()
        except Exception as exc:  # a check that failed is a check missed, nothing more
            log.warning("alerts_check_failed", error=repr(exc))

    async def check(self, now: float | None = None) -> list[tuple[str, Alert]]:
        """One evaluation of every rule; the notifications it called for, already queued."""
        now = time.time() if now is None else now
        changes = self.episodes.step(await self.readings(now), now)
        self.checks += 1
        for status, alert in changes:
            # Kept first, then queued: once a receiver has the notification, the change is in
            # the store, and a stop that cancels this check cannot leave the two apart.
            await self._keep(status, alert)
            notice = {
                "event_id": secrets.token_hex(16),
                "type": f"alert.{status}",
                "instance": self.instance,
                **self.as_json(alert, status),
            }
            log.warning(
                f"alert_{status}",
                rule=str(alert.rule),
                connector=alert.connector,
                value=alert.value,
                threshold=alert.threshold,
                episode=alert.episode,
            )
            self.publisher.publish(notice)
        return changes

    async def readings(self, now: float) -> list[Reading]:
        found: list[Reading] = []
        for w in self.watched:
            found += self._connector_readings(w, now)
            found += await self._dead_letters(w, now)
        if any(w.name == SYNC_DESTINATION for w in self.watched):
            found += await self._sync_readings(now)
        return found

    def _connector_readings(self, w: Watched, now: float) -> list[Reading]:
        cfg = self.config
        c = condition_of(w, now)
        down = c.state in DOWN
        since = (c.since or now) if down else None
        gate = w.guard.gate if w.guard else None
        # "up" is news only once a call was answered since this process began.
        known = down or gate is None or gate.answered
        out = [
            Reading(
                Rule.connector_down,
                w.name,
                down,
                round(now - since, 1) if since is not None else None,
                cfg.connector_down_for_s,
                cfg.connector_down_for_s,
                since,
                f"{c.state}: {mask_text(c.reason)}" if down else "",
                known,
            )
        ]
        if w.consumer is not None:
            missing = not w.consumer.is_ready()
            began = self._missing_since.setdefault(w.name, now) if missing else None
            if not missing:
                self._missing_since.pop(w.name, None)
            out.append(
                Reading(
                    Rule.consumer_missing,
                    w.name,
                    missing,
                    round(now - began, 1) if began is not None else None,
                    cfg.consumer_missing_for_s,
                    cfg.consumer_missing_for_s,
                    began,
                )
            )
        return out

    async def _dead_letters(self, w: Watched, now: float) -> list[Reading]:
        if w.parking is None or w.queues is None or self.probe is None:
            return []
        parked = (await counts_of(w, self.probe)).parked
        if parked is None:
            return []  # the broker did not say: unknown, nothing changes
        new = self.growth.add(w.name, now, parked)
        limit = self.config.dead_letters_new_max
        return [
            Reading(
                Rule.dead_letters_growing,
                w.name,
                new > limit,
                new,
                limit,
                0.0,
                detail=f"{parked} parked",
                # The window's rises are known once a whole window was watched.
                known=now - self._began >= self.growth.window_s,
            )
        ]

    async def _sync_readings(self, now: float) -> list[Reading]:
        cfg = self.config
        out: list[Reading] = []
        try:
            found = await self.figures.completeness(SYNC_DESTINATION)
            counts = await self.figures.lag_histogram(SYNC_DESTINATION, now - cfg.lag_window_s)
        except Exception as exc:  # the store away: unknown, nothing changes
            log.warning("alerts_sync_figures_unread", error=repr(exc))
            return out
        ratio = found.ratio
        out.append(
            Reading(
                Rule.completeness_low,
                None,
                ratio is not None and ratio < cfg.completeness_min_ratio,
                ratio,
                cfg.completeness_min_ratio,
                cfg.completeness_low_for_s,
                detail=f"{found.unconfirmed} of {found.dossiers} dossiers unconfirmed",
            )
        )
        p95 = percentiles(counts, (0.95,))[0.95]
        out.append(
            Reading(
                Rule.lag_high,
                None,
                p95 is not None and p95 > cfg.lag_p95_max_s,
                p95,
                cfg.lag_p95_max_s,
                cfg.lag_high_for_s,
                detail=f"{sum(counts.values())} changes confirmed",
            )
        )
        return out


def summary(
    alert: Alert,
    status: str,
    lang: str,
    config: AlertsConfig,
    names: Mapping[str, str],
    now: float | None = None,
) -> str:
    """The alert as one sentence in `lang` (`alert.<rule>.<status>` in the catalogues), its
    duration counted to when it resolved, else to `now`, else to when it fired."""
    kind = _KIND[alert.rule]
    end = alert.resolved_at or now or alert.fired_at
    window = (
        config.dead_letters_window_s
        if alert.rule is Rule.dead_letters_growing
        else config.lag_window_s
    )
    return i18n.translate(
        lang,
        f"alert.{alert.rule}.{status}",
        connector=formats.connector_name(alert.connector or "", lang, names),
        value=_written(kind, alert.value, lang),
        threshold=_written(kind, alert.threshold, lang),
        since=f"{formats.when(_iso(alert.since))} (UTC+7)",
        at=f"{formats.when(_iso(end))} (UTC+7)",
        duration=formats.duration(end - alert.since, lang),
        window=formats.duration(window, lang),
        detail=alert.detail,
    )


def _written(kind: str, value: float | None, lang: str) -> str:
    if kind == "duration":
        return formats.duration(value, lang)
    if kind == "percent":
        return formats.percent(value, lang)
    return formats.number(value, lang)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
