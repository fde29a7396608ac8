"""A mapping file's expressions checked against what they will read, before anything runs.

* `expressions` (every load, at `hub check-config` and at the hub's start): each expression
  uses JMESPath functions that exist, with as many arguments as they take; each submit field
  reads the dossier record (`schemas.canonical.DossierRecord`, as JSON) by field names it has,
  with values its `type` can take; a REST system's sample files (`samples:`) are read by the
  paths over them as the paths over the replies will be (`replies`).
* `replies` (a SOAP system's WSDL, in `connectors.ministry.wsdl`; a REST system's samples):
  `submit.accepted` can be true, `reference` and `reason` are single values, `results.items`
  is a list or an object, `results.cursor` a single value, `more` true or false, and every
  result field reads fields each result has, with values its `type` can take.

Each problem names the mapping file, the line and the key. This module must never read a
file or talk to a system: the shapes are given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import jmespath
from jmespath.exceptions import JMESPathError

from connectors.ministry.shapes import ANY, Checker, Shape, describe, join, model_shape, value_shape
from hub.fieldmap import FieldSpec
from schemas.canonical import DossierRecord

if TYPE_CHECKING:
    from connectors.ministry.mapping import MinistryMapping

RECORD = model_shape(
    DossierRecord,
    "the dossier record",
    note="is empty when the one-stop system did not send it",
)

# The JSON kinds each field type converts (`hub.fieldmap`); anything else is `wrong_type`.
_TAKES = {
    "string": frozenset({"string", "number", "boolean"}),
    "int": frozenset({"number", "string"}),
    "decimal": frozenset({"number", "string"}),
    "bool": frozenset({"boolean", "string", "number"}),
    "date": frozenset({"string"}),
    "datetime": frozenset({"string"}),
}


@dataclass(frozen=True)
class Replies:
    """What the system's documents look like, as far as the hub knows (None: unknown)."""

    submit: Shape | None = None  # a reply of the submit operation
    poll: Shape | None = None  # a reply of the poll operation
    push: Shape | None = None  # a pushed body
    source: str = ""  # "the WSDL x.wsdl", "the samples", for messages


def compiled(text: str) -> jmespath.parser.ParsedResult | None:
    try:
        return jmespath.compile(text)
    except JMESPathError:
        return None  # reported where it was compiled


def expressions(mapping: MinistryMapping) -> list[str]:
    """Shape-free checks of every expression, the submit fields against the dossier record,
    and a REST system's samples (see the module's docstring)."""
    problems: list[str] = []
    for loc, _, text in mapping.expressions():
        problems += _over(mapping, loc, text, ANY)[1]
    problems += fields_over(mapping, "submit", RECORD)
    for target, spec in mapping.fields("results").items():
        if spec.path is not None:
            problems += _over(mapping, ("results", "fields", target, "path"), spec.path, ANY)[1]
    samples = mapping.samples
    if samples:
        problems += replies(
            mapping,
            Replies(
                submit=_sample(samples, "submit"),
                poll=_sample(samples, "poll"),
                push=_sample(samples, "push"),
                source="its samples",
            ),
        )
    return _unique(problems)


def _sample(samples: dict[str, object], name: str) -> Shape | None:
    return value_shape(samples[name], f"the sample {name} reply") if name in samples else None


def _over(
    mapping: MinistryMapping, loc: tuple[str, ...], text: str, shape: Shape
) -> tuple[Shape, list[str]]:
    expression = compiled(text)
    if expression is None:
        return ANY, []
    checker = Checker()
    result = checker.check(expression, shape)
    return result, [mapping.where(loc, p) for p in checker.problems]


def fields_over(mapping: MinistryMapping, section: str, document: Shape) -> list[str]:
    """Each field of `section` read from `document`: its path, and what its type takes."""
    problems: list[str] = []
    for target, spec in mapping.fields(section).items():
        if spec.path is None:
            continue
        at = (section, "fields", target)
        value, found = _over(mapping, (*at, "path"), spec.path, document)
        problems += found
        if not found and (why := takes(value, spec)):
            problems.append(mapping.where(at, why))
    return problems


def takes(value: Shape, spec: FieldSpec) -> str | None:
    """Why a field of `spec` cannot take what its path gives (None: it can)."""
    kinds = value.kinds - {"null"}
    if value.is_any or not kinds:
        return None
    source = f"{spec.path} gives {describe(kinds)}"
    if value.what and value.what != spec.path:
        source += f" ({value.what})"
    if spec.table is not None:
        if kinds & {"array", "object"}:
            return f"{source}: a code table looks up a single value"
        return None
    bad = kinds - _TAKES[spec.type]
    if bad:
        fix = " (join(', ', ...) makes text of a list)" if "array" in bad else ""
        return f"type {spec.type} cannot take it: {source}{fix}"
    if spec.type in ("date", "datetime") and spec.format and value.text in ("date", "datetime"):
        return (
            f"{source} as ISO 8601 text (e.g. 2026-12-06T12:18:47+07:00), which format "
            f"{spec.format!r} cannot read: leave format out"
        )
    return None


def replies(mapping: MinistryMapping, known: Replies) -> list[str]:
    """The paths over the system's replies (see the module's docstring)."""
    problems: list[str] = []
    if mapping.spec.submit is not None and known.submit is not None:
        problems += _submit_reply(mapping, known.submit)
    if mapping.spec.results is None:
        return problems
    items: list[Shape] = []
    if known.poll is not None and mapping.spec.results.items is not None:
        problems += _poll_reply(mapping, known.poll, items)
    if known.push is not None:
        problems += _push_body(mapping, known.push, items)
    for item in items:
        problems += fields_over(mapping, "results", item)
    return _unique(problems)


def _submit_reply(mapping: MinistryMapping, reply: Shape) -> list[str]:
    submit = mapping.spec.submit
    assert submit is not None
    problems: list[str] = []
    if submit.accepted is not None:
        value, found = _over(mapping, ("submit", "accepted"), submit.accepted, reply)
        problems += found
        if not found and not value.is_any and "boolean" not in value.kinds:
            problems.append(
                mapping.where(
                    ("submit", "accepted"),
                    f"gives {describe(value.kinds)}, never true: every hand-off would count "
                    "as refused (compare it, e.g. MaLoi == '00')",
                )
            )
    for name in ("reference", "reason"):
        text = getattr(submit, name)
        if text is not None:
            value, found = _over(mapping, ("submit", name), text, reply)
            problems += found or _single(mapping, ("submit", name), value)
    return problems


def _poll_reply(mapping: MinistryMapping, reply: Shape, items: list[Shape]) -> list[str]:
    results = mapping.spec.results
    assert results is not None
    assert results.items is not None
    value, problems = _over(mapping, ("results", "items"), results.items, reply)
    if not problems and not value.is_any and not value.kinds & {"array", "object"}:
        problems.append(
            mapping.where(
                ("results", "items"), f"gives {describe(value.kinds)}, not a list of results"
            )
        )
    items += _items(value)
    if results.cursor is not None:
        value, found = _over(mapping, ("results", "cursor"), results.cursor, reply)
        problems += found or _single(mapping, ("results", "cursor"), value)
    if results.more is not None:
        value, found = _over(mapping, ("results", "more"), results.more, reply)
        problems += found
        if not found and not value.is_any and "boolean" not in value.kinds:
            problems.append(
                mapping.where(("results", "more"), f"gives {describe(value.kinds)}, never true")
            )
    return problems


def _push_body(mapping: MinistryMapping, body: Shape, items: list[Shape]) -> list[str]:
    results = mapping.spec.results
    assert results is not None
    value, problems = body, list[str]()
    at: tuple[str, ...] = ("results",)
    if results.push_items is not None:
        at = ("results", "push_items")
        value, problems = _over(mapping, at, results.push_items, body)
    if not problems and not value.is_any and "array" not in value.kinds:
        problems.append(mapping.where(at, f"gives {describe(value.kinds)}: a push holds a list"))
    items += _items(value)
    return problems


def _items(value: Shape) -> list[Shape]:
    """The shape of one result, from what `results.items` (or `push_items`) gives: the items
    of a list, or a single object taken as a list of one."""
    if value.is_any:
        return []
    out: list[Shape] = []
    if "array" in value.kinds and value.items is not None and not value.items.is_any:
        out.append(value.items)
    if "object" in value.kinds:
        out.append(Shape(frozenset({"object"}), value.fields, what=value.what))
    return [join(out[0], out[1])] if len(out) == 2 else out


def _single(mapping: MinistryMapping, loc: tuple[str, ...], value: Shape) -> list[str]:
    bad = value.kinds & {"array", "object"}
    if value.is_any or not bad:
        return []
    return [mapping.where(loc, f"gives {describe(value.kinds)}: it must give a single value")]


def _unique(problems: list[str]) -> list[str]:
    return list(dict.fromkeys(problems))
