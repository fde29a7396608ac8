"""The deployment files of issue 21 (`deploy/compose/`, `deploy/kubernetes/`), checked offline:
the Kubernetes manifests against the Kubernetes schemas (`kubernetes-validate`), the compose file
against the Compose Specification's schema (`tests/data/compose-spec.json`), and both against
the hub itself: their hub configurations load with `load_config` given the secrets the way the
docs give them (environment variables), and the ports, images and replicas agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from hub.config import HubConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
KUBE_DIR = ROOT / "deploy" / "kubernetes"
KUBE_VERSION = "1.33.0"  # one the installed kubernetes-validate ships schemas for
MANIFESTS = sorted(KUBE_DIR.glob("*.yaml"))


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _resources() -> list[dict[str, Any]]:
    return [d for path in MANIFESTS for d in _documents(path)]


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [r for r in _resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text("utf-8"))
    return loaded


def _env_file(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {k: v for k, v in pairs}


def _load(path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> HubConfig:
    """The file as a replica reads it, the secrets in its environment; the mapping files from
    the checkout (the image bakes the same ones in at /app/mappings)."""
    for key, value in env.items():
        if key.startswith("HUB_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("HUB_MAPPINGS_DIR", str(ROOT / "mappings"))
    config = load_config(path)
    config.load_assets()
    return config


def _hub_layout(config: HubConfig) -> None:
    assert config.store.backend == "postgresql"
    assert config.store.url is not None
    # Two replicas on one store keep each dossier in order only with one active consumer.
    assert config.broker.single_active_consumer
    urls = config.broker.addresses()
    assert len(urls) == 3
    assert len({u.split("@", 1)[1].split("/", 1)[0] for u in urls}) == 3, "three distinct nodes"
    assert config.http.host == "0.0.0.0"  # noqa: S104 (a container's port, reached from outside)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_validates_against_the_kubernetes_schemas(path: Path) -> None:
    for doc in _documents(path):
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        assert doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == "hub"


def test_the_compose_file_validates_against_the_compose_specification() -> None:
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text("utf-8"))
    jsonschema.Draft201909Validator(schema).validate(_compose())


def test_a_broken_manifest_is_refused() -> None:
    """The validation would notice a mistake (a probe's port as a list, say)."""
    deployment = _one("Deployment", "hub")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = [
        8080
    ]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBE_VERSION, strict=True)


def test_the_compose_hub_configuration_loads_with_its_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _load(
        COMPOSE_DIR / "hub.yaml", _env_file(COMPOSE_DIR / "hub.env.example"), monkeypatch
    )
    _hub_layout(config)
    compose = _compose()
    nodes = {n for n in compose["services"] if n.startswith("rabbitmq-")}
    hosts = {u.split("@", 1)[1].split(":", 1)[0] for u in config.broker.addresses()}
    assert hosts == nodes
    assert config.store.url is not None
    assert "@postgres:5432/" in config.store.url.get_secret_value()
    # nginx's fixed address is the one proxy the hub believes.
    proxy = compose["services"]["nginx"]["networks"]["hub-net"]["ipv4_address"]
    assert [str(n) for n in config.http.trusted_proxies] == [f"{proxy}/32"]


def test_the_configmap_hub_configuration_loads_with_the_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "hub.yaml"
    path.write_text(_one("ConfigMap", "hub-config")["data"]["hub.yaml"], encoding="utf-8")
    secret = _one("Secret", "hub-secrets")["stringData"]
    config = _load(path, secret, monkeypatch)
    _hub_layout(config)
    # The broker URLs name the StatefulSet's pods through its headless Service.
    sts = _one("StatefulSet", "rabbitmq")
    service = sts["spec"]["serviceName"]
    expected = {f"rabbitmq-{i}.{service}.hub.svc.cluster.local" for i in range(3)}
    hosts = {u.split("@", 1)[1].split(":", 1)[0] for u in config.broker.addresses()}
    assert sts["spec"]["replicas"] == 3
    assert hosts == expected
    assert config.store.url is not None
    assert "@postgres-0.postgres.hub.svc.cluster.local:5432/" in config.store.url.get_secret_value()
    # The Secret's RabbitMQ password is the one in the hub's URLs, and PostgreSQL's too.
    assert all(f":{secret['RABBITMQ_DEFAULT_PASS']}@" in u for u in config.broker.addresses())
    assert f":{secret['POSTGRES_PASSWORD']}@" in config.store.url.get_secret_value()


def test_the_secret_is_marked_as_placeholders() -> None:
    text = (KUBE_DIR / "20-secret.yaml").read_text(encoding="utf-8")
    assert "PLACEHOLDERS" in text
    secret = _one("Secret", "hub-secrets")["stringData"]
    assert all("CHANGE-ME" in v for k, v in secret.items() if "PASS" in k or "COOKIE" in k)


def test_ports_probes_and_the_service_agree_with_the_hub(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "hub.yaml"
    path.write_text(_one("ConfigMap", "hub-config")["data"]["hub.yaml"], encoding="utf-8")
    port = _load(path, _one("Secret", "hub-secrets")["stringData"], monkeypatch).http.port
    pod = _one("Deployment", "hub")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named == {"http": port}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert named[container[probe]["httpGet"]["port"]] == port
    service = _one("Service", "hub")["spec"]
    assert [(p["port"], p["targetPort"]) for p in service["ports"]] == [(port, "http")]
    labels = _one("Deployment", "hub")["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    # Where the read-only image writes, a volume is mounted.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/app/var", "/tmp", "/app/config"} <= mounts  # noqa: S108 (an emptyDir's mount)
    # Compose: the hubs' health check and nginx's upstreams use the same port.
    compose_port = _load(
        COMPOSE_DIR / "hub.yaml", _env_file(COMPOSE_DIR / "hub.env.example"), monkeypatch
    ).http.port
    compose = _compose()
    for name in ("hub-1", "hub-2"):
        check = " ".join(compose["services"][name]["healthcheck"]["test"])
        assert f"127.0.0.1:{compose_port}/readyz" in check
    nginx = (COMPOSE_DIR / "nginx.conf").read_text(encoding="utf-8")
    assert f"server hub-1:{compose_port}" in nginx
    assert f"server hub-2:{compose_port}" in nginx
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in nginx


def test_images_agree_and_there_are_at_least_two_replicas() -> None:
    compose = _compose()
    hubs = {n: s for n, s in compose["services"].items() if n.startswith("hub-")}
    assert len(hubs) >= 2
    deployment = _one("Deployment", "hub")
    assert deployment["spec"]["replicas"] >= 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {s["image"] for s in hubs.values()} == {container["image"]}
    assert all(s["build"]["dockerfile"] == "Dockerfile" for s in hubs.values())
    assert (COMPOSE_DIR / hubs["hub-1"]["build"]["context"] / "Dockerfile").is_file()
    rabbit = _one("StatefulSet", "rabbitmq")["spec"]["template"]["spec"]["containers"][0]
    assert {compose["services"][f"rabbitmq-{i}"]["image"] for i in (1, 2, 3)} == {rabbit["image"]}
    postgres = _one("StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"][0]
    assert compose["services"]["postgres"]["image"] == postgres["image"]


def test_postgresql_is_made_utf8_with_the_c_collation_and_depends_on_waits() -> None:
    compose = _compose()
    args = compose["services"]["postgres"]["environment"]["POSTGRES_INITDB_ARGS"]
    postgres = _one("StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in postgres["env"]}
    for value in (args, env["POSTGRES_INITDB_ARGS"]):
        assert "--encoding=UTF8" in value
        assert "--locale=C" in value
    for name in ("hub-1", "hub-2"):
        needs = compose["services"][name]["depends_on"]
        assert set(needs) == {"postgres", "rabbitmq-1", "rabbitmq-2", "rabbitmq-3"}
        assert {d["condition"] for d in needs.values()} == {"service_healthy"}
    cluster = (COMPOSE_DIR / "rabbitmq-cluster.conf").read_text(encoding="utf-8")
    for i in (1, 2, 3):
        assert f"rabbit@{compose['services'][f'rabbitmq-{i}']['hostname']}" in cluster
