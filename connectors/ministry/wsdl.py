"""What a SOAP system's WSDL says about its messages, for checking a mapping and writing values.

zeep reads the WSDL; this module turns its types into what the hub needs:

* `reply_shape`: the shape (`connectors.ministry.shapes`) of what a call returns once zeep
  has parsed it and the hub has made it plain JSON (`connectors.ministry.mapping.as_json`):
  element names as keys; `xsd:dateTime`/`xsd:date` as ISO 8601 text; numbers; true/false; a
  repeated element as a list (empty when absent); an optional (`minOccurs="0"`) or nillable
  element may be null. zeep unwraps a reply element that holds a single child, twice when that
  child is itself a structure of one child; the shape does the same.
* `slots`: the operation's parameters (its input element's children), each with its XSD type,
  whether it is required, and its own children;
* `fit_problems`: every way the mapping and the configuration do not fit the WSDL: the reply
  paths (`connectors.ministry.checks.replies`), each submit field's target (an element of the
  input, of a type its value can fill) and the required elements no field fills, each poll
  parameter (an element of the input, `$cursor` into a type the cursor can be written in,
  `first_cursor` readable as that type);
* `typed`: a poll parameter (the cursor is kept as text) written as its XSD type asks, so that
  zeep puts `2026-12-06T12:18:47+07:00` on the wire for an `xsd:dateTime`, not Python's text
  with a space.

zeep's strict mode refuses an element out of place but lets required elements be missing at
the end of a structure: an element the WSDL requires may still be absent from a reply; the
mapping's run-time checks catch what follows. This module must never call a system.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from zeep import xsd
from zeep.xsd.elements.any import Any as AnyElement
from zeep.xsd.types import builtins as b

from connectors.ministry import checks
from connectors.ministry.config import MinistryConfig
from connectors.ministry.shapes import (
    ANY,
    NULL,
    Checker,
    Shape,
    array,
    describe,
    nullable,
    obj,
    scalar,
    value_shape,
)
from hub.errors import ValidationFailed
from hub.fieldmap import FieldSpec

if TYPE_CHECKING:
    from connectors.ministry.mapping import MinistryMapping

Locate = Callable[[tuple[str, ...]], str]  # a configuration key → "file:line: key"
_DEPTH = 12  # deeper (or recursive) types are taken as unknown

# zeep's built-in types → what the hub calls them; the first match wins (Integer is a Decimal).
_KINDS: list[tuple[type, str]] = [
    (b.Boolean, "boolean"),
    (b.DateTime, "datetime"),
    (b.Date, "date"),
    (b.Integer, "integer"),
    (b.Decimal, "decimal"),
    (b.Float, "decimal"),
    (b.Double, "decimal"),
    (b.NmTokens, "any"),  # lists of values
    (b.IDREFS, "any"),
    (b.Entities, "any"),
    (b.String, "string"),
    (b.AnyURI, "string"),
    (b.QName, "string"),
    (b.Base64Binary, "text"),
    (b.HexBinary, "text"),
    (b.Time, "text"),
    (b.Duration, "text"),
    (b.gYear, "text"),
    (b.gYearMonth, "text"),
    (b.gMonth, "text"),
    (b.gMonthDay, "text"),
    (b.gDay, "text"),
]
_TEXT = ("string", "text", "any")


def kind_of(xsd_type: Any) -> str:
    if isinstance(xsd_type, xsd.ComplexType):
        return "complex"
    for cls, kind in _KINDS:
        if isinstance(xsd_type, cls):
            return kind
    return "any"


def xsd_name(xsd_type: Any) -> str:
    """`xsd:dateTime`; a type of the WSDL's own by its name, with its XSD base when simple
    (`SoLuongType, an xsd:int`)."""
    qname = getattr(xsd_type, "qname", None)
    local = getattr(qname, "localname", None) or type(xsd_type).__name__
    if getattr(qname, "namespace", None) == _XSD:
        return f"xsd:{local}"
    if kind_of(xsd_type) == "complex":
        return local
    base = next(
        (vars(c)["_default_qname"] for c in type(xsd_type).__mro__ if "_default_qname" in vars(c)),
        None,
    )
    base_name = getattr(base, "localname", None)
    return f"{local}, an xsd:{base_name}" if base_name else local


_XSD = "http://www.w3.org/2001/XMLSchema"


# -- shapes of replies --------------------------------------------------------------------------


def type_shape(xsd_type: Any, path: str, depth: int = 0) -> Shape:
    kind = kind_of(xsd_type)
    if kind == "complex":
        if depth > _DEPTH:
            return ANY
        return obj(_fields(xsd_type, path, depth), path)
    if kind in ("datetime", "date"):
        return scalar("string", path, kind)
    if kind in ("integer", "decimal"):
        return scalar("number", path)
    if kind == "boolean":
        return scalar("boolean", path)
    if kind in ("string", "text"):
        return scalar("string", path)
    return ANY


def _fields(xsd_type: Any, path: str, depth: int) -> dict[str, Shape] | None:
    fields: dict[str, Shape] = {}
    for name, element in xsd_type.elements:
        if isinstance(element, AnyElement) or not isinstance(element, xsd.Element):
            return None  # xsd:any, a choice: not a closed list of fields
        fields[name] = element_shape(element, f"{path}.{name}" if path else name, depth + 1)
    for name, attribute in xsd_type.attributes:
        if not isinstance(attribute, xsd.Attribute):
            return None  # anyAttribute
        shape = type_shape(attribute.type, f"{path}@{name}", depth + 1)
        fields[name] = _optional(shape, "is an optional attribute")
    return fields


def element_shape(element: Any, path: str, depth: int = 0) -> Shape:
    """What zeep gives for `element`: a list if it repeats (empty when absent), null when an
    optional or nillable element is absent."""
    shape = type_shape(element.type, path, depth)
    if _repeats(element):
        return array(shape, path)
    if element.min_occurs == 0:
        return _optional(shape, f"is optional in the WSDL ({xsd_name(element.type)}, minOccurs=0)")
    if element.nillable:
        return _optional(shape, f"is nillable in the WSDL ({xsd_name(element.type)})")
    return shape


def _repeats(element: Any) -> bool:
    occurs: int | str = element.max_occurs
    return occurs == "unbounded" or (isinstance(occurs, int) and occurs > 1)


def _optional(shape: Shape, note: str) -> Shape:
    if shape.is_any:
        return ANY
    out = nullable(shape)
    return Shape(out.kinds, out.fields, out.items, out.text, out.what, note)


def reply_shape(operation: Any) -> Shape:
    """The shape of what calling `operation` returns (zeep's `SoapMessage.deserialize`)."""
    message = operation.output
    body = getattr(message, "body", None)
    if body is None:
        return NULL
    header = getattr(message, "header", None)
    if header is not None and getattr(header.type, "_element", None):
        return ANY  # with declared headers zeep returns the whole envelope
    body_type = body.type
    if kind_of(body_type) != "complex":
        return type_shape(body_type, "")
    keys = list(body_type().__values__)
    if not keys:
        return NULL
    if len(keys) > 1:
        return type_shape(body_type, "")
    return _unwrapped(body_type, keys[0])


def _unwrapped(body_type: Any, key: str) -> Shape:
    children = dict(body_type.elements)
    child = children.get(key)
    if not isinstance(child, xsd.Element) or isinstance(child, AnyElement):
        return ANY
    shape = element_shape(child, key)
    single = not _repeats(child)
    grand = child.type
    if single and kind_of(grand) == "complex":
        elements, attributes = list(grand.elements), list(grand.attributes)
        if len(elements) == 1 and not attributes:
            name, inner = elements[0]
            if not isinstance(inner, xsd.Element) or isinstance(inner, AnyElement):
                return ANY
            unwrapped = element_shape(inner, f"{key}.{name}")
            return nullable(unwrapped) if shape.nullable else unwrapped
    return shape


# -- parameters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    name: str
    xsd: str  # xsd:dateTime, or the type's name
    kind: str  # see kind_of
    required: bool
    repeated: bool
    children: dict[str, Slot] = field(default_factory=dict)


def slots(operation: Any) -> dict[str, Slot]:
    """The operation's parameters (the children of its input element), by name."""
    body = getattr(operation.input, "body", None)
    if body is None or kind_of(body.type) != "complex":
        return {}
    return _slots(body.type, 0)


def _slots(xsd_type: Any, depth: int) -> dict[str, Slot]:
    out: dict[str, Slot] = {}
    if depth > _DEPTH:
        return out
    for name, element in xsd_type.elements:
        if not isinstance(element, xsd.Element) or isinstance(element, AnyElement):
            continue
        kind = kind_of(element.type)
        out[name] = Slot(
            name=name,
            xsd=xsd_name(element.type),
            kind=kind,
            required=element.min_occurs > 0 and not element.nillable,
            repeated=_repeats(element),
            children=_slots(element.type, depth + 1) if kind == "complex" else {},
        )
    return out


def typed(slot: Slot | None, value: Any) -> Any:
    """A poll parameter as the WSDL's type asks (`ValueError` if it cannot be); empty text
    for a type that is not text leaves the parameter out."""
    if slot is None or not isinstance(value, str) or slot.kind in (*_TEXT, "complex"):
        return value
    if value == "":
        return None
    try:
        return _CONVERT[slot.kind](value)
    except (ValueError, InvalidOperation, KeyError):
        raise ValueError(f"{value[:60]!r} is not an {slot.xsd}") from None


def _bool(value: str) -> bool:
    return {"true": True, "1": True, "false": False, "0": False}[value.strip().lower()]


_CONVERT: dict[str, Callable[[str], Any]] = {
    "datetime": datetime.fromisoformat,  # ISO 8601, with T or a space
    "date": date.fromisoformat,
    "integer": int,
    "decimal": Decimal,
    "boolean": _bool,
}


def typed_params(parameters: dict[str, Slot], params: dict[str, Any]) -> dict[str, Any]:
    """`typed` for every parameter; `ValidationFailed` names the one that cannot be."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        try:
            out[name] = typed(parameters.get(name), value)
        except ValueError as exc:
            raise ValidationFailed(
                f"poll parameter {name}: {exc}", field=name, code="parameter_type"
            ) from None
    return out


# -- the checks ---------------------------------------------------------------------------------


def fit_problems(
    system: str,
    config: MinistryConfig,
    mapping: MinistryMapping,
    operations: dict[str, Any],
    location: str,
    locate: Locate,
) -> list[str]:
    """Every way the mapping and the configuration do not fit the WSDL's operations."""
    submit_op = operations.get(config.submit.operation) if config.submit else None
    poll_op = operations.get(config.poll.operation) if config.poll else None
    push = mapping.samples.get("push")
    known = checks.Replies(
        submit=reply_shape(submit_op) if submit_op is not None else None,
        poll=reply_shape(poll_op) if poll_op is not None else None,
        push=value_shape(push, "the sample push") if push is not None else None,
        source=location,
    )
    problems = checks.replies(mapping, known)
    if submit_op is not None:
        problems += submit_problems(mapping, slots(submit_op), submit_op.name)
    if poll_op is not None and config.poll is not None:
        cursor = _cursor_shape(mapping, known.poll)
        problems += param_problems(system, config, slots(poll_op), cursor, locate)
    return list(dict.fromkeys(problems))


def _cursor_shape(mapping: MinistryMapping, reply: Shape | None) -> Shape | None:
    results = mapping.spec.results
    if reply is None or results is None or results.cursor is None:
        return None
    expression = checks.compiled(results.cursor)
    if expression is None:
        return None
    return Checker().check(expression, reply)


def submit_problems(mapping: MinistryMapping, parameters: dict[str, Slot], op: str) -> list[str]:
    """Each submit field's target is an element of the input that its value can fill; every
    required element is filled."""
    problems: list[str] = []
    fields = mapping.fields("submit")
    for target, spec in fields.items():
        at = ("submit", "fields", target)
        slot, why = _find(parameters, target.split("."), op)
        if slot is None:
            problems.append(mapping.where(at, why))
            continue
        if (problem := _fills(spec, slot, target)) is not None:
            problems.append(mapping.where(at, problem))
    problems += _unfilled(mapping, parameters, fields, "", op)
    return problems


def _find(parameters: dict[str, Slot], path: list[str], op: str) -> tuple[Slot | None, str]:
    level, where = parameters, f"the input of {op}"
    for i, name in enumerate(path):
        slot = level.get(name)
        if slot is None:
            has = ", ".join(level) or "nothing"
            return None, f"{name!r} is not an element of {where} in the WSDL (it has {has})"
        if i < len(path) - 1:
            if slot.kind != "complex":
                return None, f"{name} is {slot.xsd} in the WSDL, not a structure"
            level, where = slot.children, name
    return slot, ""


def _fills(spec: FieldSpec, slot: Slot, target: str) -> str | None:
    """Why a field of `spec` cannot fill `slot` (None: it can)."""
    if slot.kind == "complex":
        first = next(iter(slot.children), "X")
        return (
            f"{slot.name} is a structure in the WSDL (it has {', '.join(slot.children)}): "
            f"map its fields, e.g. {target}.{first}"
        )
    if slot.kind in ("any", "text") or spec.type in _FILLS.get(slot.kind, ()):
        return None
    value = _value(spec)
    if spec.type == "string" and value is not None and _text_fits(value, slot.kind):
        return None
    hint = _HINT.get(slot.kind, "type: string")
    what = f" ({spec.path} gives {describe(value.kinds - {'null'})})" if value and spec.path else ""
    if slot.kind == "string":
        if spec.type in ("date", "datetime"):
            hint += " (a record's time is already ISO 8601 text)"
        return (
            f"{slot.name} is {slot.xsd} in the WSDL: a {spec.type} would be written with "
            f"Python's str(), not as XSD text: use {hint}"
        )
    return (
        f"{slot.name} is {slot.xsd} in the WSDL, which a {spec.type} field cannot fill{what}: "
        f"use {hint}"
    )


_FILLS = {
    "string": ("string", "int", "decimal"),
    "datetime": ("datetime",),
    "date": ("date", "datetime"),
    "integer": ("int",),
    "decimal": ("int", "decimal"),
    "boolean": ("bool",),
}
_HINT = {
    "string": "type: string",
    "datetime": "type: datetime",
    "date": "type: date",
    "integer": "type: int",
    "decimal": "type: decimal",
    "boolean": "type: bool",
}


def _value(spec: FieldSpec) -> Shape | None:
    """What a string field's text is, when known: its path over the record, or its value."""
    if spec.path is None:
        return value_shape(spec.value)
    expression = checks.compiled(spec.path)
    if expression is None or spec.table is not None:
        return None
    return Checker().check(expression, checks.RECORD)


def _text_fits(value: Shape, kind: str) -> bool:
    """Text that is already in the XSD type's form (a record's ISO 8601 time, a number)."""
    kinds = value.kinds - {"null"}
    if value.is_any:
        return True
    if kind in ("datetime", "date"):
        return kinds <= {"string"} and value.text == kind
    if kind in ("integer", "decimal"):
        return kinds <= {"number"}
    return False


def _unfilled(
    mapping: MinistryMapping,
    parameters: dict[str, Slot],
    fields: dict[str, FieldSpec],
    prefix: str,
    op: str,
) -> list[str]:
    problems: list[str] = []
    for name, slot in parameters.items():
        path = prefix + name
        covering = [t for t in fields if t == path or t.startswith(path + ".")]
        if not covering:
            if slot.required:
                problems.append(
                    mapping.where(
                        ("submit", "fields"),
                        f"{path} ({slot.xsd}) is required by the input of {op}, but no field "
                        "fills it",
                    )
                )
            continue
        spec = fields.get(path)
        if spec is not None and slot.required and not spec.required and spec.default is None:
            problems.append(
                mapping.where(
                    ("submit", "fields", path),
                    f"may be left out (default: null), but {op} requires {path}",
                )
            )
        if slot.children:
            problems += _unfilled(mapping, slot.children, fields, path + ".", op)
    return problems


def param_problems(
    system: str,
    config: MinistryConfig,
    parameters: dict[str, Slot],
    cursor: Shape | None,
    locate: Locate,
) -> list[str]:
    """Each poll parameter is an element of the operation's input, of a type its value (the
    cursor, the page size, a constant) can be written in; every required one is given."""
    poll = config.poll
    assert poll is not None
    at = ("ministries", system, "poll")
    problems: list[str] = []
    for name, value in poll.params.items():
        slot = parameters.get(name)
        if slot is None:
            has = ", ".join(parameters) or "nothing"
            problems.append(
                f"{locate((*at, 'params', name))}: not a parameter of {poll.operation} "
                f"(it has {has})"
            )
            continue
        found = _param(slot, value, poll.first_cursor, cursor)
        if found is not None:
            key, problem = found
            problems.append(f"{locate((*at, *key) if key else (*at, 'params', name))}: {problem}")
    problems += [
        f"{locate((*at, 'params'))}: {name} ({slot.xsd}) is required by {poll.operation}: "
        "give it in params"
        for name, slot in parameters.items()
        if slot.required and name not in poll.params
    ]
    return problems


_FIRST = ("first_cursor",)


def _param(
    slot: Slot, value: str, first: str, cursor: Shape | None
) -> tuple[tuple[str, ...], str] | None:
    """What is wrong with one parameter, and the key it is about (empty: the parameter)."""
    if slot.kind == "complex":
        return (), f"{slot.name} is a structure in the WSDL: a poll parameter is a single value"
    if slot.kind in _TEXT:
        return None
    if value == "$limit":
        if slot.kind in ("integer", "decimal"):
            return None
        return (), f"{slot.name} is {slot.xsd}: it cannot take $limit (a number)"
    if "$cursor" in value and value != "$cursor":
        return (), f"{slot.name} is {slot.xsd}: it takes the cursor alone, not inside text"
    if value != "$cursor":
        problem = _readable(slot, value)
        return None if problem is None else ((), problem)
    if first == "" and slot.required:
        return _FIRST, f"is empty, but {slot.name} ({slot.xsd}) is required: give the first"
    if (problem := _readable(slot, first)) is not None:
        return _FIRST, problem
    return _cursor_fits(slot, cursor)


def _cursor_fits(slot: Slot, cursor: Shape | None) -> tuple[tuple[str, ...], str] | None:
    if cursor is None or cursor.is_any:
        return None
    kinds = cursor.kinds - {"null"}
    fits = {"string"} if slot.kind in ("datetime", "date") else {"string", "number"}
    if slot.kind == "boolean":
        fits = {"string", "boolean"}
    if not kinds - fits:
        return None
    what = f" ({cursor.what})" if cursor.what else ""
    return (), f"{slot.name} is {slot.xsd}, but results.cursor gives {describe(kinds)}{what}"


def _readable(slot: Slot, value: str) -> str | None:
    try:
        typed(slot, value)
    except ValueError as exc:
        example = " (ISO 8601, e.g. 2026-01-01T00:00:00+07:00)" if slot.kind == "datetime" else ""
        return f"{exc} for {slot.name}{example}"
    return None
