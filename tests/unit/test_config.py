"""The configuration tree: YAML file, environment overrides, located error messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from connectors.ministry.plugin import connector as ministry
from hub.config import HubConfig, load_config
from hub.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HUB_* variable from the developer's shell may leak into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("HUB_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str, name: str = "hub.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in info.value.message
    return info.value.problems


def one_problem(problems: list[str], dotted: str) -> str:
    found = [p for p in problems if f": {dotted}: " in p]
    assert len(found) == 1, problems
    return found[0]


BAD = """\
instance: test
connectors:
  national_portal:
    batch_size: -3
    bogus: 1
sources:
  x:
    permissions: [events.write]
    units: ["000.00.41.H41", "41.H41"]
brokr:
  url: amqp://x
"""


def test_every_problem_is_located_by_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    problems = problems_of(path)
    assert len(problems) == 4

    batch = one_problem(problems, "connectors.national_portal.batch_size")
    assert batch.startswith(f"{path}:4: ")
    assert "greater than or equal to 1" in batch
    assert "HUB_CONNECTORS__NATIONAL_PORTAL__BATCH_SIZE" in batch

    bogus = one_problem(problems, "connectors.national_portal.bogus")
    assert bogus.startswith(f"{path}:5: ")
    assert "unknown key" in bogus

    units = one_problem(problems, "sources.x.units")
    assert units.startswith(f"{path}:9: ")
    assert "'41.H41'" in units
    assert "agency code" in units

    brokr = one_problem(problems, "brokr")
    assert brokr.startswith(f"{path}:10: ")
    assert "unknown key" in brokr


def test_message_counts_the_problems(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message == f"4 problem(s) in {path}"


@pytest.mark.parametrize(
    ("text", "dotted", "line"),
    [
        ("http:\n  port: 70000\n", "http.port", 2),
        ("logging:\n  level: LOUD\n", "logging.level", 2),
        ("broker:\n  prefix: Hub!\n", "broker.prefix", 2),
        (
            "connectors:\n  national_portal:\n    madonvi: H41\n",
            "connectors.national_portal.madonvi",
            3,
        ),
        (
            "connectors:\n  national_portal:\n    delay_tiers_s: [30, 5]\n",
            "connectors.national_portal.delay_tiers_s",
            3,
        ),
        (
            "connectors:\n  national_portal:\n    retry:\n      attempts: 0\n",
            "connectors.national_portal.retry.attempts",
            4,
        ),
        ("sources:\n  a:\n    permissions: [everything]\n", "sources.a.permissions.0", 3),
        ("validation:\n  max_items_per_batch: 0\n", "validation.max_items_per_batch", 2),
    ],
)
def test_single_problems_name_line_and_key(
    tmp_path: Path, text: str, dotted: str, line: int
) -> None:
    path = write(tmp_path, text)
    problem = one_problem(problems_of(path), dotted)
    assert problem.startswith(f"{path}:{line}: {dotted}: ")


def test_sequence_digit_limits_must_be_ordered(tmp_path: Path) -> None:
    # Fails until ValidationConfig checks min <= max: today the file loads and
    # Validator(config.validation) then dies with re.error at start-up.
    path = write(
        tmp_path,
        "validation:\n  dossier_sequence_digits_min: 8\n  dossier_sequence_digits_max: 3\n",
    )
    problems = problems_of(path)
    assert any("validation" in p and "dossier_sequence_digits" in p for p in problems)


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        "broker:\n  url: amqp://file-user:pw@file-host/\n  prefix: fromfile\n"
        "connectors:\n  national_portal:\n    batch_size: 10\n    username: fileuser\n",
    )
    monkeypatch.setenv("HUB_BROKER__URL", "amqp://env-user:pw@env-host/")
    monkeypatch.setenv("HUB_CONNECTORS__NATIONAL_PORTAL__BATCH_SIZE", "77")
    config = load_config(path)
    assert config.broker.url is not None
    assert config.broker.url.get_secret_value() == "amqp://env-user:pw@env-host/"
    assert config.connectors.national_portal.batch_size == 77
    # Keys the environment does not name still come from the file.
    assert config.broker.prefix == "fromfile"
    assert config.connectors.national_portal.username == "fileuser"


def test_environment_alone_sets_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_CONNECTORS__NATIONAL_PORTAL__BATCH_SIZE", "12")
    monkeypatch.setenv("HUB_INSTANCE", "from-env")
    config = load_config(None)
    assert config.connectors.national_portal.batch_size == 12
    assert config.instance == "from-env"


def test_bad_environment_value_is_reported_with_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "instance: test\n")
    monkeypatch.setenv("HUB_CONNECTORS__NATIONAL_PORTAL__BATCH_SIZE", "0")
    problem = one_problem(problems_of(path), "connectors.national_portal.batch_size")
    assert "HUB_CONNECTORS__NATIONAL_PORTAL__BATCH_SIZE" in problem


def test_secrets_are_not_shown(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "broker:\n  url: amqp://u:topsecret@h/\nconnectors:\n  national_portal:\n"
        "    password: portal-secret\n",
    )
    config = load_config(path)
    text = repr(config)
    assert "topsecret" not in text
    assert "portal-secret" not in text
    assert config.connectors.national_portal.password.get_secret_value() == "portal-secret"


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_empty_file_gives_defaults(tmp_path: Path, text: str) -> None:
    config = load_config(write(tmp_path, text))
    assert config == load_config(None)
    assert config.instance == "hub"
    assert config.connectors.national_portal.batch_size == 50
    assert config.validation.max_items_per_batch == 500
    assert config.broker.url is None
    assert config.sources == {}


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_non_mapping_yaml_is_refused(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "must hold a mapping" in info.value.message
    assert info.value.problems == [f"{path}:1: the top level is not a map"]


def test_invalid_yaml_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "broker:\n  url: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "not valid YAML" in info.value.message
    assert info.value.problems[0].startswith(f"{path}: ")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in info.value.message


def test_overrides_merge_deeply_into_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "connectors:\n  national_portal:\n    batch_size: 10\n    username: u\n")
    config = load_config(path, {"connectors": {"national_portal": {"batch_size": 20}}})
    assert config.connectors.national_portal.batch_size == 20
    assert config.connectors.national_portal.username == "u"


def test_valid_sources_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sources:\n  onestop:\n    username: onestop\n"
        "    permissions: [facade.DongBoHoSoMC, events.write]\n"
        "    units: ['000.00.41.H41']\n    status_mapping: one_stop_sample_vendor\n",
    )
    source = load_config(path).sources["onestop"]
    assert source.units == ["000.00.41.H41"]
    assert source.permissions == ["facade.DongBoHoSoMC", "events.write"]
    assert source.status_mapping == "one_stop_sample_vendor"


def test_shipped_example_configuration_is_valid() -> None:
    config = load_config(ROOT / "config" / "hub.example.yaml")
    assert isinstance(config, HubConfig)
    assert config.instance == "hub-tinh-mau"
    assert set(config.sources) == {"onestop", "portal_puller", "sectoral_reader"}
    assert config.subscribers["one_stop"].events == [
        "procedure.#",
        "payment.#",
        "ministry.#",
        "vdxp.#",
    ]
    assert {n: m.kind for n, m in config.ministries.items()} == {
        "business_registration": "soap",
        "civil_status": "rest",
    }
    assert config.connectors.national_portal.catalogue.interval_s == 21600
    pay = config.connectors.payment_platform
    assert pay.status_check.min_age_s == 1800
    assert pay.status_check.max_age_s == 259200
    assert pay.signatures.callbacks["KetQuaThanhToan"][0] == "LoaiBanTin"


def test_the_payment_platform_needs_its_secret_and_a_destination(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    example = ROOT / "config" / "hub.example.yaml"
    monkeypatch.setenv("HUB_CONNECTORS__PAYMENT_PLATFORM__ENABLED", "true")
    with pytest.raises(ConfigError) as caught:
        load_config(example)
    assert "set partner_code and secret_key" in "\n".join(caught.value.problems)
    monkeypatch.setenv("HUB_CONNECTORS__PAYMENT_PLATFORM__SECRET_KEY", "k")
    assert load_config(example).connectors.payment_platform.enabled
    monkeypatch.setenv("HUB_SUBSCRIBERS__ONE_STOP__EVENTS", '["procedure.#"]')
    with pytest.raises(ConfigError) as caught:
        load_config(example)
    assert "add payment.# to its events" in "\n".join(caught.value.problems)
    monkeypatch.setenv("HUB_CONNECTORS__PAYMENT_PLATFORM__DELIVER_TO", "nobody")
    with pytest.raises(ConfigError) as caught:
        load_config(example)
    assert "not an enabled subscriber" in "\n".join(caught.value.problems)
    monkeypatch.setenv(
        "HUB_CONNECTORS__PAYMENT_PLATFORM__SIGNATURES__STATUS_REPLY", '["MaXacThuc"]'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(example)
    assert "cannot be a signed field" in "\n".join(caught.value.problems)


def test_subscriber_sections_are_checked() -> None:
    bad = {
        "subscribers": {
            "One Stop": {"url": "ftp://x"},
            "ok": {"url": "http://x", "events": ["procedure.#", "bad pattern!"]},
        }
    }
    with pytest.raises(ConfigError) as caught:
        load_config(None, bad)
    text = "\n".join(caught.value.problems)
    assert "subscribers.One Stop" in text
    assert "subscribers.ok.events" in text
    assert "routing-key pattern" in text


def test_the_example_ministry_systems_are_valid_once_enabled(tmp_path: Path) -> None:

    text = (ROOT / "config" / "hub.example.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    for section in raw["ministries"].values():
        section["enabled"] = True
    raw["ministries"]["civil_status"]["push"]["token_sha256"] = "ab" * 32
    raw["mappings_dir"] = str(ROOT / "mappings")
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    config.load_assets()
    mappings = config.assets(ministry)
    assert set(mappings) == {"business_registration", "civil_status"}
    # Without a subscriber for their results, the configuration is refused.
    raw["subscribers"]["one_stop"]["events"] = ["procedure.#", "payment.#"]
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "ministry.result.business_registration" in str(caught.value.problems)
    # A system that takes results but is handed nothing and lists no result_procedures could
    # report on no dossier: refused, naming it.
    raw["subscribers"]["one_stop"]["events"] = ["ministry.#"]
    civil = raw["ministries"]["civil_status"]
    del civil["submit"]
    civil["procedures"] = []
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "may report on no dossier" in str(caught.value.problems)
    civil["result_procedures"] = ["1.000894"]
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert load_config(path).section(ministry)["civil_status"].result_procedures == ["1.000894"]


def test_a_url_without_its_scheme_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "hub.yaml"
    path.write_text(
        "connectors:\n  national_portal:\n    base_url: dvcqg.example.gov.vn/api\n"
        "  payment_platform:\n    base_url: thanhtoan.example\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    problems = "\n".join(refused.value.problems)
    assert f"{path}:3: connectors.national_portal.base_url" in problems
    assert f"{path}:5: connectors.payment_platform.base_url" in problems
    assert "https://dvcqg.example.gov.vn/api" in problems  # what it should have been


def test_relative_paths_in_the_file_are_read_from_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "hub.yaml"
    path.write_text(
        "mappings_dir: ../maps\nstore:\n  path: data/hub.db\n"
        "connectors:\n  vdxp:\n    spool_dir: spool\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(ROOT)  # anywhere else than the file's folder
    config = load_config(path)
    assert config.mappings_dir == folder / ".." / "maps"
    assert config.store.path == folder / "data" / "hub.db"
    assert config.connectors.vdxp.spool_dir == folder / "spool"
    # A default, or a value from the environment, stays relative to the working directory.
    assert config.connectors.payment_platform.reconciliation.output_dir == Path(
        "var/reconciliation"
    )
    monkeypatch.setenv("HUB_STORE__PATH", "elsewhere.db")
    assert load_config(path).store.path == Path("elsewhere.db")


def test_a_missing_mappings_folder_is_named_with_its_key_and_resolved_path(
    tmp_path: Path,
) -> None:
    from hub.runtime import load_everything

    path = tmp_path / "hub.yaml"
    path.write_text("mappings_dir: nowhere\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_everything(load_config(path))
    (problem,) = refused.value.problems
    assert problem.startswith(f"mappings_dir: the folder {tmp_path / 'nowhere'} does not exist")


def test_check_config_warns_of_an_empty_portal_password(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hub.cli import main

    path = tmp_path / "hub.yaml"
    path.write_text(f"mappings_dir: {ROOT / 'mappings'}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["check-config", "-c", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: connectors.national_portal.password is empty" in result.output
    path.write_text(
        f"mappings_dir: {ROOT / 'mappings'}\nconnectors:\n  national_portal:\n    password: x\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["check-config", "-c", str(path)])
    assert "password is empty" not in result.output


def test_hash_secret_reads_standard_input_when_it_is_not_a_terminal() -> None:
    from click.testing import CliRunner

    from hub.auth import verify_password
    from hub.cli import main
    from hub.tokens import token_matches

    token = "Xk2-9fQw_7LmZp4Rt6Vb8NcY1"
    result = CliRunner().invoke(main, ["hash-secret", "--token"], input=f"{token}\n")
    assert result.exit_code == 0, result.output
    assert token_matches(result.output.strip(), token)
    assert not token_matches(result.output.strip(), token[:-1])
    password = "ngựa-ô 7 trăm"
    result = CliRunner().invoke(main, ["hash-secret"], input=f"{password}\n")
    assert result.exit_code == 0, result.output
    assert verify_password(result.output.strip(), password)
    empty = CliRunner().invoke(main, ["hash-secret"], input="\n")
    assert empty.exit_code == 1
    assert "no secret on standard input" in empty.output


def test_hash_secret_refuses_weak_secrets_unless_told_to_allow_them() -> None:
    from click.testing import CliRunner

    from hub.cli import main
    from hub.tokens import token_matches

    def run(secret: str, *args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(main, ["hash-secret", *args], input=f"{secret}\n")
        return result.exit_code, result.stdout, result.stderr

    refusals = [
        ("s3cret-but-only-23-char", ["--token"], "the token has 23 characters; at least 24"),
        ("ab" * 20, ["--token"], "the token uses only 2 different characters; at least 8"),
        ("short-pw-11", [], "the password has 11 characters; at least 12"),
        ("111122223333", [], "the password uses only 3 different characters; at least 5"),
    ]
    for secret, args, why in refusals:
        code, out, err = run(secret, *args)
        assert (code, out) == (1, ""), (secret, out)
        (line,) = err.splitlines()  # the reason on the error's own line
        assert line.startswith(f"error: {why}"), line
        assert "--allow-weak" in line
    code, out, err = run("s3cret", "--token", "--allow-weak")
    assert code == 0, err
    assert token_matches(out.strip(), "s3cret")
    assert err.startswith("warning: the token has 6 characters")


def test_the_postgresql_store_takes_its_url_from_the_environment_unshown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "store:\n  backend: postgresql\n")
    monkeypatch.setenv("HUB_STORE__URL", "postgresql://hub:pg-secret@db.example:5432/hub")
    config = load_config(path)
    assert config.store.backend == "postgresql"
    assert config.store.url is not None
    assert config.store.url.get_secret_value().endswith("@db.example:5432/hub")
    assert "pg-secret" not in repr(config)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("store:\n  backend: postgresql\n", "needs store.url (HUB_STORE__URL)"),
        (
            "store:\n  backend: postgresql\n  url: mysql://u:topsecret@h/db\n",
            "must be a postgresql:// URL",
        ),
        ("store:\n  url: postgresql://h/db\n", "used only with store.backend: postgresql"),
        ("store:\n  backend: mongodb\n", "'sqlite' or 'postgresql'"),
    ],
)
def test_a_store_backend_without_what_it_needs_is_refused(
    tmp_path: Path, text: str, says: str
) -> None:
    path = write(tmp_path, text)
    problem = " ".join(p for p in problems_of(path) if "store" in p)
    assert says in problem
    assert "topsecret" not in problem
