"""Reading the YAML files the hub is given: the configuration, mapping files, code tables.

PyYAML's own loaders keep the last of two equal keys in a mapping and say nothing, so a code
entered twice in a table, or a configuration key written twice, silently loses one of them.
`load` refuses every duplicate key at once, each with its file, line and key path
(`mappings/x.yaml:14: tables.status.XONG: duplicate key (first at line 12)`), and returns the
document with the line of every key, for messages about the document's content. Merge keys
(`<<: *base`) are not duplicates: the keys written beside them override the merged ones, as
YAML means. This module must never read anything but the text it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from hub.errors import ConfigError

_MERGE = "tag:yaml.org,2002:merge"

Lines = dict[tuple[str, ...], int]


@dataclass(frozen=True)
class Document:
    data: Any
    lines: Lines  # key path → line (1-based), sequence items by their index


def load(text: str, source: str) -> Document:
    """The YAML document in `text`; `ConfigError` naming `source` if it is not valid YAML or
    repeats a key."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML", [f"{source}: {exc}"]) from None
    duplicates: list[str] = []
    lines: Lines = {}
    _walk(node, (), source, lines, duplicates, set())
    if duplicates:
        raise ConfigError(f"{len(duplicates)} duplicate key(s) in {source}", duplicates)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # pragma: no cover - compose already parsed it
        raise ConfigError(f"{source} is not valid YAML", [f"{source}: {exc}"]) from None
    return Document(data, lines)


def _key(node: yaml.Node) -> Any:
    """A key as YAML means it (`1` and `0x1` are one key, `"1"` another); unhashable keys
    (a list as a key) are compared by their text."""
    if isinstance(node, yaml.ScalarNode):
        try:
            value = SafeConstructor().construct_object(node, deep=True)
            hash(value)
            return (type(value).__name__, value)
        except (yaml.YAMLError, TypeError):
            pass
    return ("node", node.tag, str(node.value))


def _walk(
    node: yaml.Node | None,
    at: tuple[str, ...],
    source: str,
    lines: Lines,
    found: list[str],
    seen: set[int],
) -> None:
    if node is None or id(node) in seen:  # an alias: its anchor was checked where it is
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key, value in node.value:
            if key.tag == _MERGE:  # overridden by the keys beside it, not repeated
                _walk(value, at, source, {}, found, seen)
                continue
            name = str(key.value)
            here = (*at, name)
            line = key.start_mark.line + 1
            identity = _key(key)
            if identity in first:
                found.append(
                    f"{source}:{line}: {'.'.join(here)}: duplicate key "
                    f"(first at line {first[identity]})"
                )
            else:
                first[identity] = line
                lines[here] = line
            _walk(value, here, source, lines, found, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            here = (*at, str(i))
            lines[here] = item.start_mark.line + 1
            _walk(item, here, source, lines, found, seen)
