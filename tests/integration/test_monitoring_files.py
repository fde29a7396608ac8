"""The alerting rules and the Grafana dashboard under deploy/ use only what the hub exports.

The rules file is read as Prometheus reads it (groups of rules, each with an expression, a
`for` duration, a severity and a summary); every metric, label and label value each PromQL
expression selects is looked up in the `/metrics` output of a running hub that has done some
work (a dossier delivered to DVCQG's simulator, so that the histograms and counters have
samples). The same for every query of the Grafana dashboard. A metric renamed in hub/metrics.py,
or a label value that does not exist, fails here rather than leaving an alert that never fires.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.dashboard_world import DashboardWorld, record_event
from tests.support import eventually

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "hub-alerts.yml"
GRAFANA = ROOT / "deploy" / "grafana" / "hub-dashboard.json"
PROMETHEUS_OWN = {"up"}  # series Prometheus writes itself, not the hub
WANTED_ALERTS = {
    "HubConnectorDown",
    "HubDeadLettersGrowing",
    "HubSyncCompletenessLow",
    "HubSyncLagHigh",
    "HubConsumerMissing",
}

_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"|\[[^\]]*\]|\{[^}]*\}|[A-Za-z_:][A-Za-z0-9_:]*|[0-9.]+[a-z]*|\S'
)
_MATCHER = re.compile(
    r"""([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')"""
)
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = {"and", "or", "unless", "bool", "offset"}
_AGGREGATIONS = {"sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk"}


@dataclass
class Selected:
    """What an expression reads: metric names, and for each the label matchers it applies."""

    metrics: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    grouping_labels: set[str] = field(default_factory=set)


def selected(expr: str) -> Selected:
    """The metrics, label matchers and grouping labels of a PromQL expression."""
    tokens = _TOKEN.findall(expr)
    found = Selected()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token in _GROUPING and following == "(":
            i += 2
            while i < len(tokens) and tokens[i] != ")":
                if tokens[i] != ",":
                    found.grouping_labels.add(tokens[i])
                i += 1
        elif re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", token) and following != "(":
            aggregation = token in _AGGREGATIONS and following in ("by", "without")
            if token not in _KEYWORDS and token not in _GROUPING and not aggregation:
                matchers = _MATCHER.findall(following) if following.startswith("{") else []
                found.metrics.setdefault(token, []).extend(
                    (name, op, double or single) for name, op, double, single in matchers
                )
        i += 1
    return found


@dataclass
class Exported:
    """What a hub's /metrics says: each sample name with the values each label takes."""

    samples: dict[str, dict[str, set[str]]]

    @classmethod
    def parse(cls, text: str) -> Exported:
        samples: dict[str, dict[str, set[str]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = samples.setdefault(sample.name, {})
                for key, value in sample.labels.items():
                    labels.setdefault(key, set()).add(value)
        return cls(samples)


def problems_of(expr: str, exported: Exported, where: str) -> list[str]:
    found = selected(expr)
    problems = []
    if not found.metrics:
        problems.append(f"{where}: no metric in {expr!r}")
    labels_seen: set[str] = set()
    for metric, matchers in found.metrics.items():
        if metric in PROMETHEUS_OWN:
            continue
        if metric not in exported.samples:
            problems.append(f"{where}: {metric} is not in the hub's /metrics")
            continue
        labels = exported.samples[metric]
        labels_seen |= set(labels)
        problems += [
            f"{where}: {p}" for m in matchers for p in _matcher_problems(metric, labels, m)
        ]
    for label in found.grouping_labels - {"le", "instance", "job"}:
        if label not in labels_seen:
            problems.append(f"{where}: grouped by {label!r}, which no selected metric has")
    return problems


def _matcher_problems(
    metric: str, labels: dict[str, set[str]], matcher: tuple[str, str, str]
) -> list[str]:
    name, op, value = matcher
    if name not in labels:
        return [f"{metric} has no label {name!r}"]
    if "$" in value or op in ("!=", "!~"):
        return []  # a Grafana variable, or a negation: any value is fine
    if op == "=":
        return [] if value in labels[name] else [f"{metric}{{{name}={value!r}}} is never exported"]
    missing = [v for v in value.split("|") if v not in labels[name]]
    return [f"{metric}{{{name}}} never takes {missing}"] if missing else []


async def scraped(world: DashboardWorld) -> Exported:
    """The hub's /metrics once it has delivered a dossier to DVCQG (samples everywhere)."""
    code = "000.00.41.H41-261206-0001"
    at = datetime.now(UTC)
    await world.post_events([record_event(code, "metrics-1", "accepted", at)])
    await eventually(lambda: code in world.sim.dossiers, 30, "the dossier at DVCQG")
    async with aiohttp.ClientSession() as http:

        async def with_lag() -> str | None:
            async with http.get(f"{world.base}/metrics") as r:
                assert r.status == 200
                text = await r.text()
            lag = 'hub_delivery_lag_seconds_count{connector="national_portal"}'
            return text if lag in text and "hub_sync_completeness_ratio " in text else None

        text = await eventually(with_lag, 30, "DVCQG's confirmation in the lag histogram")
    return Exported.parse(text)


def test_the_rules_file_is_what_prometheus_reads() -> None:
    data = yaml.safe_load(RULES.read_text("utf-8"))
    rules = [r for g in data["groups"] for r in g["rules"]]
    assert {g["name"] for g in data["groups"]} == {"hub"}
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), names
    assert set(names) >= WANTED_ALERTS
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert re.fullmatch(r"\d+[smhd]", rule["for"]), rule
        assert rule["labels"]["severity"] in ("warning", "critical"), rule
        assert rule["annotations"]["summary"], rule
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule


def test_the_expression_reader_finds_metrics_labels_and_groupings() -> None:
    found = selected(
        "histogram_quantile(0.95, sum by (instance, le) (rate(hub_delivery_lag_seconds_bucket"
        '{connector="national_portal"}[1h]))) > 3600 and on(connector) hub_consumer_ready == 0'
    )
    assert found.metrics == {
        "hub_delivery_lag_seconds_bucket": [("connector", "=", "national_portal")],
        "hub_consumer_ready": [],
    }
    assert found.grouping_labels == {"instance", "le", "connector"}
    exported = Exported({"hub_consumer_ready": {"connector": {"vdxp"}}})
    assert problems_of("hub_consumer_ready{connecter='x'} == 0", exported, "t") == [
        "t: hub_consumer_ready has no label 'connecter'"
    ]
    assert problems_of("3600 > 1", exported, "t") == ["t: no metric in '3600 > 1'"]
    assert problems_of('hub_consumer_ready{connecter="x"}', exported, "t") == [
        "t: hub_consumer_ready has no label 'connecter'"
    ]
    assert problems_of('hub_consumer_ready{connector="nobody"}', exported, "t") == [
        "t: hub_consumer_ready{connector='nobody'} is never exported"
    ]
    assert problems_of("hub_made_up_total", exported, "t") == [
        "t: hub_made_up_total is not in the hub's /metrics"
    ]


async def test_every_rule_and_panel_reads_what_a_running_hub_exports(
    dash: DashboardWorld,
) -> None:
    exported = await scraped(dash)
    problems: list[str] = []
    rules = yaml.safe_load(RULES.read_text("utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            problems += problems_of(rule["expr"], exported, rule["alert"])
    board: dict[str, Any] = json.loads(GRAFANA.read_text("utf-8"))
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            problems += problems_of(target["expr"], exported, f"panel {panel['title']!r}")
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", query).groups()  # type: ignore[union-attr]
            assert label in exported.samples[metric], query
    assert problems == []


def _gauge(text: str, name: str) -> float | None:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


async def test_the_sync_gauges_are_read_from_the_store_at_each_scrape(
    dash: DashboardWorld,
) -> None:
    """A dossier DVCQG has not confirmed counts in `hub_sync_unconfirmed_dossiers` while it
    is away, and leaves it when delivered (the gauges come from the hub's read-only store
    connection at each scrape, which sees what the writer commits)."""
    dash.sim.faults.update({"mode": "http_503"})
    code = "000.00.41.H41-261206-0002"
    await dash.post_events([record_event(code, "metrics-2", "accepted", datetime.now(UTC))])
    async with aiohttp.ClientSession() as http:

        async def gauges() -> tuple[float | None, float | None]:
            async with http.get(f"{dash.base}/metrics") as r:
                assert r.status == 200
                text = await r.text()
            return (
                _gauge(text, "hub_sync_unconfirmed_dossiers"),
                _gauge(text, "hub_sync_completeness_ratio"),
            )

        async def reads(wanted: tuple[float, float]) -> bool:
            return await gauges() == wanted

        await eventually(lambda: reads((1.0, 0.0)), 30, "one unconfirmed dossier of one")
        dash.sim.faults.update({"mode": "ok"})
        await eventually(lambda: code in dash.sim.dossiers, 60, "the dossier at DVCQG")
        await eventually(lambda: reads((0.0, 1.0)), 30, "every dossier confirmed")
