"""A key written twice is refused in every YAML file the hub reads, with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.ministry.mapping import MinistryMapping
from connectors.payment_platform.mapping import PaymentCodes
from hub import yamlfile
from hub.config import load_config
from hub.errors import ConfigError
from hub.status_mapping import StatusTable

ROOT = Path(__file__).resolve().parents[2]


def refused(call: object, *args: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.problems


def test_every_duplicate_is_named_with_its_line_and_the_first_one() -> None:
    text = "a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\nlist:\n  - {x: 1, x: 2}\na: 4\n"
    problems = refused(yamlfile.load, text, "f.yaml")
    assert problems == [
        "f.yaml:5: b.c: duplicate key (first at line 3)",
        "f.yaml:7: list.0.x: duplicate key (first at line 7)",
        "f.yaml:8: a: duplicate key (first at line 1)",
    ]


def test_keys_that_yaml_reads_as_one_are_duplicates_and_merges_are_not() -> None:
    assert refused(yamlfile.load, "1: a\n0x1: b\n", "f.yaml") == [
        "f.yaml:2: 0x1: duplicate key (first at line 1)"
    ]
    assert yamlfile.load('1: a\n"1": b\n', "f.yaml").data == {1: "a", "1": "b"}
    merged = "base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\n"
    document = yamlfile.load(merged, "f.yaml")
    assert document.data["other"] == {"x": 3, "y": 2}
    assert document.lines[("other", "x")] == 4


def test_a_duplicate_key_in_the_configuration_file(tmp_path: Path) -> None:
    path = tmp_path / "hub.yaml"
    path.write_text("instance: a\nhttp:\n  port: 1\n  port: 2\n", encoding="utf-8")
    assert refused(load_config, path) == [f"{path}:4: http.port: duplicate key (first at line 3)"]


def test_a_duplicate_code_in_a_ministry_mapping_table(tmp_path: Path) -> None:
    path = tmp_path / "ministry_land.yaml"
    text = (ROOT / "tests/data/ministry_land/ministry_land_registry.yaml").read_text("utf-8")
    path.write_text(text.replace('    "3": supplement_requested', '    "2": stopped'), "utf-8")
    (problem,) = refused(MinistryMapping.load, path)
    assert problem == f"{path}:26: tables.trang_thai.2: duplicate key (first at line 25)"


def test_a_duplicate_code_in_a_one_stop_status_table(tmp_path: Path) -> None:
    path = tmp_path / "vendor.yaml"
    path.write_text(
        "name: vendor\nstatuses:\n  DA_XU_LY: {status: processed}\n"
        "  MOI: {status: submitted}\n  DA_XU_LY: {status: returned}\n",
        encoding="utf-8",
    )
    assert refused(StatusTable.load, path) == [
        f"{path}:5: statuses.DA_XU_LY: duplicate key (first at line 3)"
    ]


def test_a_duplicate_key_in_another_code_table(tmp_path: Path) -> None:
    text = (ROOT / "mappings/payment_platform.yaml").read_text("utf-8")
    path = tmp_path / "payment_platform.yaml"
    path.write_text(text + "name: again\n", encoding="utf-8")
    first = text.splitlines().index("name: payment_platform") + 1
    last = text.count("\n") + 1
    assert refused(PaymentCodes.load, path) == [
        f"{path}:{last}: name: duplicate key (first at line {first})"
    ]


def test_the_shipped_files_have_no_duplicate_keys() -> None:
    files = [*(ROOT / "mappings").rglob("*.yaml"), *(ROOT / "config").glob("*.yaml")]
    files += [*(ROOT / "hub").rglob("locale/*.yaml"), *(ROOT / "connectors").rglob("*.yaml")]
    assert len(files) > 10
    for path in files:
        yamlfile.load(path.read_text("utf-8"), str(path))
