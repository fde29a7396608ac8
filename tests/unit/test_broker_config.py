"""`broker.url` or `broker.urls`: the addresses of one broker or of one cluster's nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.cli_status import render
from hub.config import load_config
from hub.errors import ConfigError
from hub.failover import addresses_of

CLUSTER = """\
broker:
  urls:
    - amqp://hub:s3cret@rabbit-1:5672/prov
    - amqp://hub:s3cret@rabbit-2:5672/prov
    - amqp://hub:s3cret@rabbit-3/prov
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_a_cluster_is_a_list_of_urls(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CLUSTER))
    assert config.broker.url is None
    assert config.broker.addresses() == [
        "amqp://hub:s3cret@rabbit-1:5672/prov",
        "amqp://hub:s3cret@rabbit-2:5672/prov",
        "amqp://hub:s3cret@rabbit-3/prov",
    ]
    assert addresses_of(config.broker.addresses()) == [
        ("rabbit-1", 5672),
        ("rabbit-2", 5672),
        ("rabbit-3", 5672),
    ]
    assert "s3cret" not in repr(config)


def test_one_url_still_works(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "broker:\n  url: amqps://hub:pw@rabbit:5671/\n"))
    assert config.broker.addresses() == ["amqps://hub:pw@rabbit:5671/"]
    assert addresses_of(["amqps://hub:pw@rabbit/"]) == [("rabbit", 5671)]
    assert load_config(None).broker.addresses() == []


def test_the_environment_gives_the_list_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_BROKER__URLS", '["amqp://u:p@a:5672/", "amqp://u:p@b:5673/"]')
    assert load_config(None).broker.addresses() == ["amqp://u:p@a:5672/", "amqp://u:p@b:5673/"]


def test_url_and_urls_together_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, CLUSTER + "  url: amqp://hub:s3cret@rabbit-1:5672/prov\n")
    (problem,) = problems_of(path)
    assert "broker.url (one node) or broker.urls (a cluster), not both" in problem


@pytest.mark.parametrize(
    ("third", "part"),
    [
        ("amqp://hub:other-pw@rabbit-3/prov", "password"),
        ("amqp://ops:s3cret@rabbit-3/prov", "user"),
        ("amqp://hub:s3cret@rabbit-3/other", "virtual host"),
        ("amqps://hub:s3cret@rabbit-3/prov", "scheme"),
        ("amqp://hub:s3cret@rabbit-3/prov?heartbeat=5", "options"),
    ],
)
def test_nodes_of_one_cluster_differ_only_in_host_and_port(
    tmp_path: Path, third: str, part: str
) -> None:
    text = CLUSTER.replace("amqp://hub:s3cret@rabbit-3/prov", third)
    (problem,) = problems_of(write(tmp_path, text))
    assert f"broker.urls[2] differs from broker.urls[0] in its {part}" in problem
    assert "s3cret" not in problem
    assert "other-pw" not in problem


@pytest.mark.parametrize("bad", ["http://rabbit-2/", "rabbit-2:5672", "amqp:///"])
def test_a_url_that_is_not_amqp_is_named(tmp_path: Path, bad: str) -> None:
    text = CLUSTER.replace("amqp://hub:s3cret@rabbit-2:5672/prov", bad)
    problems = problems_of(write(tmp_path, text))
    assert any(
        "broker.urls[1] is not an amqp:// or amqps:// URL with a host" in p for p in problems
    )


def test_tls_needs_every_url_amqps(tmp_path: Path) -> None:
    text = CLUSTER.replace("amqp://", "amqps://") + "  tls: {verify: true}\n"
    assert load_config(write(tmp_path, text)).broker.tls is not None
    mixed = text.replace("amqps://hub:s3cret@rabbit-3", "amqp://hub:s3cret@rabbit-3")
    problems = problems_of(write(tmp_path, mixed))
    assert any("broker.tls is used only with an amqps:// URL" in p for p in problems)


def test_quorum_replicas_default_to_the_brokers_choice(tmp_path: Path) -> None:
    assert load_config(None).broker.quorum_replicas is None
    config = load_config(write(tmp_path, CLUSTER + "  quorum_replicas: 3\n"))
    assert config.broker.quorum_replicas == 3
    problems = problems_of(write(tmp_path, CLUSTER + "  quorum_replicas: 0\n"))
    assert any("broker.quorum_replicas" in p for p in problems)


def test_hub_status_names_the_broker_node() -> None:
    body = {"ready": True, "checks": {"broker": "ok"}, "broker_node": "rabbit-2:5672"}
    assert "  broker node: rabbit-2:5672" in render("http://hub:8080", body)
    moving = {"ready": False, "checks": {"broker": "failing: not connected"}, "broker_node": None}
    assert not any("broker node" in line for line in render("http://hub:8080", moving))
