"""Versioning of procedures: content hashes, a field-level diff, and its classification.

The rule, from seed `000_…` Điều 10.5: a procedure may be edited without changing its
substance; a substantive change locks the old procedure and creates a new one. Here:

* **editorial** (wording only): a change confined to the procedure's name, its fields
  (lĩnh vực), its process steps' text, its receiving address and the SMS flag, or to any
  nested name, description, title or form reference. It updates the current version in place
  (its `revision` goes up) and creates no new version.
* **substantive**: anything else: fees and their amounts, time limits and units, channels,
  required documents and their counts, results, legal bases' numbers, agencies, conditions,
  applicants, online level, postal and payment options, one-stop and inter-agency flags,
  publication, and any item added to or removed from those lists. It locks the current
  version and creates the next one.

Lists are compared in the national order, so a reordering of required documents counts as
a change; the national catalogue keeps its order stable.

This module is pure: no store, no transport.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import dictdiffer

from schemas.procedure import Procedure

# Top-level sections whose every change is wording.
EDITORIAL_SECTIONS = frozenset({"name", "fields", "process", "receiving_address", "sms"})
# Nested keys that carry wording wherever they appear.
WORDING_KEYS = frozenset({"name", "description", "title", "form_name", "form_url"})


class ChangeKind(StrEnum):
    created = "created"  # first seen
    unchanged = "unchanged"  # same content hash
    editorial = "editorial"  # wording only: same version, next revision
    substantive = "substantive"  # old version locked, next version created
    reinstated = "reinstated"  # a locked procedure is published again: next version


@dataclass(frozen=True)
class DiffEntry:
    """One changed leaf or list item; `path` is a JSON pointer into the canonical record."""

    path: str
    before: Any
    after: Any
    substantive: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "before": self.before,
            "after": self.after,
            "substantive": self.substantive,
        }


@dataclass(frozen=True)
class Classified:
    kind: ChangeKind
    diff: list[DiffEntry]


def record_json(procedure: Procedure) -> dict[str, Any]:
    """The canonical record as plain JSON values (Decimal amounts become strings)."""
    return procedure.model_dump(mode="json")


def _digest(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def content_hash(record: dict[str, Any]) -> str:
    return _digest(record)


def substance_hash(record: dict[str, Any]) -> str:
    """A hash of the record with every editorial part removed."""
    return _digest(_substance(record))


def _substance(value: Any, top: bool = True) -> Any:
    if isinstance(value, dict):
        drop = EDITORIAL_SECTIONS | WORDING_KEYS if top else WORDING_KEYS
        return {k: _substance(v, top=False) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [_substance(v, top=False) for v in value]
    return value


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[DiffEntry]:
    """Every difference, leaf by leaf; an added or removed list item is one entry."""
    entries: list[DiffEntry] = []
    for op, node, change in dictdiffer.diff(before, after, dot_notation=False, expand=True):
        path = list(node)
        if op == "change":
            old, new = change
            entries.append(_entry(path, old, new))
        else:
            for key, value in change:
                old, new = (None, value) if op == "add" else (value, None)
                entries.append(_entry([*path, key], old, new))
    return entries


def _entry(path: list[Any], before: Any, after: Any) -> DiffEntry:
    pointer = "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)
    return DiffEntry(pointer, before, after, _is_substantive(path))


def _is_substantive(path: list[Any]) -> bool:
    if not path or path[0] in EDITORIAL_SECTIONS:
        return False
    names = [p for p in path[1:] if isinstance(p, str)]
    # An added or removed whole item (path ends on an index) is substantive in these sections.
    return not (names and names[-1] in WORDING_KEYS and not isinstance(path[-1], int))


def classify(
    previous: dict[str, Any] | None, current: dict[str, Any], previous_locked: bool = False
) -> Classified:
    """How `current` relates to the stored `previous` record of the same procedure."""
    if previous is None:
        return Classified(ChangeKind.created, [])
    entries = diff(previous, current)
    if previous_locked:
        return Classified(ChangeKind.reinstated, entries)
    if not entries:
        return Classified(ChangeKind.unchanged, [])
    if substance_hash(previous) != substance_hash(current):
        return Classified(ChangeKind.substantive, entries)
    return Classified(ChangeKind.editorial, entries)
