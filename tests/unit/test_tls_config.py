"""TLS settings: what `hub check-config` refuses (naming the key at fault), and the contexts
built from them."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import pytest

from hub.config import load_config
from hub.config_blocks import ClientTls
from hub.errors import ConfigError
from hub.tls import _guarded, client_context, pinned_context
from tests.support import hub_cli
from tests.support.tls import Authority

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("HUB_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tls")
    ca = Authority("CA")
    cert, key = ca.issue("hub", server=True).write(folder, "hub")
    _, other_key = ca.issue("other", server=True).write(folder, "other")
    enc_cert, enc_key = ca.issue("enc", client=True).write(folder, "enc", password="pw")
    return {
        "ca": ca.write(folder / "ca.pem"),
        "cert": cert,
        "key": key,
        "other_key": other_key,
        "enc_cert": enc_cert,
        "enc_key": enc_key,
    }


def problems(overrides: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    return info.value.problems


def only(found: list[str], dotted: str) -> str:
    matching = [p for p in found if f": {dotted}: " in p]
    assert len(matching) == 1, found
    return matching[0]


def server(**tls: object) -> dict[str, Any]:
    return {"http": {"tls": tls}}


def test_a_missing_certificate_file_is_named(files: dict[str, Path], tmp_path: Path) -> None:
    found = problems(server(cert_file=str(tmp_path / "nope.crt"), key_file=str(files["key"])))
    assert "no file" in only(found, "http.tls.cert_file")
    assert "HUB_HTTP__TLS__CERT_FILE" in found[0]


def test_a_key_that_is_not_the_certificates_is_named(files: dict[str, Path]) -> None:
    found = problems(server(cert_file=str(files["cert"]), key_file=str(files["other_key"])))
    assert "is not the private key of" in only(found, "http.tls.key_file")


def test_files_swapped_are_named(files: dict[str, Path]) -> None:
    found = problems(server(cert_file=str(files["key"]), key_file=str(files["cert"])))
    assert "holds no PEM certificate" in only(found, "http.tls.cert_file")


def test_an_encrypted_key_needs_its_password(files: dict[str, Path]) -> None:
    tls = {"cert_file": str(files["enc_cert"]), "key_file": str(files["enc_key"])}
    sub = {"url": "https://motcua.example/hub/events", "tls": tls}
    found = problems({"subscribers": {"motcua": sub}})
    assert "is encrypted" in only(found, "subscribers.motcua.tls.key_password")
    wrong = {"subscribers": {"motcua": {**sub, "tls": {**tls, "key_password": "nope"}}}}
    assert "does not decrypt" in only(problems(wrong), "subscribers.motcua.tls.key_password")
    right = {"subscribers": {"motcua": {**sub, "tls": {**tls, "key_password": "pw"}}}}
    config = load_config(None, right)
    context = client_context(config.subscribers["motcua"].tls)
    assert isinstance(context, ssl.SSLContext)


def test_a_ca_file_without_certificates_is_named(files: dict[str, Path]) -> None:
    found = problems({"connectors": {"national_portal": {"tls": {"ca_file": str(files["key"])}}}})
    assert "holds no PEM certificate" in only(found, "connectors.national_portal.tls.ca_file")


def test_shapes_refused_before_any_file_is_read(files: dict[str, Path]) -> None:
    doors = server(cert_file="a", key_file="b", require_client_cert_for=["/dvcqg"])
    assert "needs client_ca" in only(problems(doors), "http.tls")
    bad_door = server(cert_file="a", key_file="b", client_ca="c", require_client_cert_for=["x"])
    assert "not a path prefix" in only(problems(bad_door), "http.tls.require_client_cert_for.0")
    half = {"connectors": {"national_portal": {"tls": {"cert_file": str(files["cert"])}}}}
    assert "together" in only(problems(half), "connectors.national_portal.tls")
    plain = {"broker": {"url": "amqp://h/", "tls": {"ca_file": str(files["ca"])}}}
    assert "amqps://" in only(problems(plain), "broker")


def test_doors_are_path_prefixes_not_string_prefixes(files: dict[str, Path]) -> None:
    tls = {
        "cert_file": str(files["cert"]),
        "key_file": str(files["key"]),
        "client_ca": str(files["ca"]),
        "require_client_cert_for": ["/dvcqg/", "/api/v1/payments"],
    }
    served = load_config(None, server(**tls)).http.tls
    assert served is not None
    doors = served.require_client_cert_for
    assert doors == ["/dvcqg", "/api/v1/payments"]
    assert _guarded("/dvcqg", doors)
    assert _guarded("/dvcqg/x", doors)
    assert _guarded("/api/v1/payments/callback", doors)
    assert not _guarded("/dvcqgx", doors)
    assert not _guarded("/api/v1/dossier-events", doors)
    assert _guarded("/anything", ["/"])


def test_a_ca_file_replaces_the_systems_authorities(files: dict[str, Path]) -> None:
    assert client_context(None) is True
    assert client_context(ClientTls()) is True
    context = client_context(ClientTls(ca_file=files["ca"]))
    assert isinstance(context, ssl.SSLContext)
    assert len(context.get_ca_certs()) == 1
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    pinned = pinned_context(files["cert"])
    assert pinned.cert_store_stats()["x509"] == 1  # the leaf only (not a CA: not listed)


async def test_check_config_names_the_key_and_its_line(
    files: dict[str, Path], tmp_path: Path
) -> None:
    # Relative paths are read from the configuration file's folder.
    (tmp_path / "hub.crt").write_bytes(files["cert"].read_bytes())
    (tmp_path / "hub.key").write_bytes(files["other_key"].read_bytes())
    config = tmp_path / "hub.yaml"
    config.write_text(
        f"mappings_dir: {ROOT / 'mappings'}\n"
        "http:\n"
        "  tls:\n"
        "    cert_file: hub.crt\n"
        "    key_file: hub.key\n",
        encoding="utf-8",
    )
    code, _, err = await hub_cli("check-config", "-c", str(config))
    assert code == 1
    assert f"{config}:5: http.tls.key_file: {tmp_path / 'hub.key'} is not the private key" in err
    (tmp_path / "hub.key").write_bytes(files["key"].read_bytes())
    code, out, err = await hub_cli("check-config", "-c", str(config))
    assert code == 0, err
    assert "configuration is valid" in out
    assert "verify is off" not in err
    with config.open("a", encoding="utf-8") as more:
        more.write(
            "subscribers:\n  motcua:\n    url: https://m.example/e\n    tls: {verify: false}\n"
        )
    code, out, err = await hub_cli("check-config", "-c", str(config))
    assert code == 0, err
    assert "warning: subscribers.motcua.tls.verify is off" in err
