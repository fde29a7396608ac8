"""What a mapping's JMESPath expressions can give, worked out before any message arrives.

A `Shape` says what a JSON value may be: which kinds (null, boolean, number, string, array,
object), for an object its fields (a closed list, or unknown), for an array its items, and for
text whether it is an ISO 8601 time (`datetime`, `date`). Shapes come from what the hub knows
about a document: the dossier record (`model_shape` of `schemas.canonical.DossierRecord`), a
WSDL's reply types (`connectors.ministry.wsdl`), a REST system's sample reply (`value_shape`).
`ANY` is a value nothing is known about: nothing is checked inside it.

`Checker.check` evaluates a compiled expression over a shape the way JMESPath evaluates it over
a value, and lists what would go wrong at run time or can never work: a field the document does
not have (a misspelling), a field of a list (`CapNhat.Id` for `CapNhat[].Id`), an unknown
function or a wrong number of arguments, an argument of the wrong type (`length` of a number),
an argument or a sort key that may be null (an element the WSDL makes optional: JMESPath raises
on it), a comparison between text and a number. `a && f(a)` and `list[?a]` count `a` as present
on their right. This module must never read a file or know any particular system.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import jmespath.functions
from jmespath.parser import ParsedResult
from pydantic import BaseModel

Node = dict[str, Any]
KINDS = frozenset({"null", "boolean", "number", "string", "array", "object"})
_NOT_NULL = KINDS - {"null"}
_NAMES = {
    "null": "null",
    "boolean": "true/false",
    "number": "a number",
    "string": "text",
    "array": "a list",
    "object": "an object",
}
_FALLBACK = {"string": "''", "array": "`[]`", "number": "`0`", "object": "`{}`"}
_FALLBACK_ORDER = ("string", "array", "number", "object")
FUNCTIONS: dict[str, Any] = jmespath.functions.Functions().FUNCTION_TABLE


@dataclass(frozen=True, eq=False)
class Shape:
    kinds: frozenset[str]
    fields: dict[str, Shape] | None = None  # an object's fields; None: unknown
    items: Shape | None = None  # an array's items; None: unknown
    text: str | None = None  # "datetime" or "date": ISO 8601 text
    what: str = ""  # where it comes from (a path), for messages
    note: str = ""  # why it may be null, for messages

    @property
    def is_any(self) -> bool:
        """Nothing is known of it (whether it may be null aside): nothing is checked."""
        return self.kinds >= _NOT_NULL and self.fields is None and self.items is None

    @property
    def nullable(self) -> bool:
        return "null" in self.kinds

    def describe(self) -> str:
        return describe(self.kinds)


ANY = Shape(KINDS)
NULL = Shape(frozenset({"null"}))
NEVER = Shape(frozenset())
BOOLEAN = Shape(frozenset({"boolean"}))
NUMBER = Shape(frozenset({"number"}))
STRING = Shape(frozenset({"string"}))


def describe(kinds: frozenset[str]) -> str:
    order = ["string", "number", "boolean", "array", "object", "null"]
    return " or ".join(_NAMES[k] for k in order if k in kinds) or "nothing"


def scalar(kind: str, what: str = "", text: str | None = None) -> Shape:
    return Shape(frozenset({kind}), text=text, what=what)


def array(items: Shape | None, what: str = "") -> Shape:
    return Shape(frozenset({"array"}), items=items, what=what)


def obj(fields: dict[str, Shape] | None, what: str = "") -> Shape:
    return Shape(frozenset({"object"}), fields=fields, what=what)


def nullable(shape: Shape) -> Shape:
    return replace(shape, kinds=shape.kinds | {"null"})


def non_null(shape: Shape) -> Shape:
    return replace(shape, kinds=shape.kinds - {"null"})


def only(shape: Shape, kinds: frozenset[str]) -> Shape:
    return replace(shape, kinds=shape.kinds & kinds)


def join(a: Shape, b: Shape) -> Shape:
    """A value that is either `a` or `b`."""
    if a.is_any or b.is_any:
        return ANY
    if not a.kinds:
        return b
    if not b.kinds:
        return a
    return Shape(
        a.kinds | b.kinds,
        _join_fields(a, b),
        _join_items(a, b),
        _join_text(a, b),
        a.what or b.what,
        a.note or b.note,
    )


def _join_fields(a: Shape, b: Shape) -> dict[str, Shape] | None:
    if "object" not in a.kinds or "object" not in b.kinds:
        return a.fields if "object" in a.kinds else b.fields
    if a.fields is None or b.fields is None:
        return None
    fields = {}
    for name in {**a.fields, **b.fields}:
        left, right = a.fields.get(name), b.fields.get(name)
        if left is not None and right is not None:
            fields[name] = join(left, right)
        else:  # only one side has it: absent (null) on the other
            fields[name] = nullable(left or right or ANY)
    return fields


def _join_items(a: Shape, b: Shape) -> Shape | None:
    if "array" not in a.kinds or "array" not in b.kinds:
        return a.items if "array" in a.kinds else b.items
    if a.items is None or b.items is None:
        return None
    return join(a.items, b.items)


def _join_text(a: Shape, b: Shape) -> str | None:
    if "string" not in a.kinds:
        return b.text
    if "string" not in b.kinds:
        return a.text
    return a.text if a.text == b.text else None


# -- shapes of what the hub knows ---------------------------------------------------------------


def value_shape(value: Any, what: str = "", path: str = "") -> Shape:
    """The shape of a JSON value (a sample reply, a literal): its objects closed to the keys
    they have; a `null` is a value of unknown kind. `what` names the whole value, `path` the
    place of this part in it."""
    label = what or path
    if value is None:
        return replace(ANY, what=label)
    if isinstance(value, bool):
        return scalar("boolean", label)
    if isinstance(value, int | float):
        return scalar("number", label)
    if isinstance(value, str):
        return scalar("string", label)
    if isinstance(value, list):
        items: Shape = NEVER
        for item in value:
            items = join(items, value_shape(item, path=f"{path}[]"))
        return array(items if items.kinds else None, label)
    if isinstance(value, dict):
        fields = {
            str(k): value_shape(v, path=f"{path}.{k}" if path else str(k)) for k, v in value.items()
        }
        return obj(fields, label)
    return replace(ANY, what=label)


def model_shape(model: type[BaseModel], what: str, prefix: str = "", note: str = "") -> Shape:
    """The shape of `model.model_dump(mode="json")`: its fields closed, times ISO 8601 text;
    each field described by its path (`prefix` + name) and, when it may be null, `note`."""
    fields = {
        name: annotation_shape(field.annotation, prefix + name, note)
        for name, field in model.model_fields.items()
    }
    return obj(fields, what)


def annotation_shape(annotation: Any, what: str, note: str = "") -> Shape:
    """The shape of a value of a pydantic field's type, dumped as JSON."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return annotation_shape(args[0], what, note)
    if origin in (typing.Union, types.UnionType):
        out = NEVER
        for arg in args:
            out = join(out, annotation_shape(arg, what, note))
        return replace(out, what=what, note=note if out.nullable else "")
    if origin in (list, tuple, set, frozenset):
        return array(annotation_shape(args[0], f"{what}[]", note) if args else None, what)
    if origin is dict or annotation is dict:
        return obj(None, what)
    if annotation is type(None):
        return replace(NULL, what=what)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_shape(annotation, what, f"{what}.", note)
    return _class_shape(annotation, what)


def _class_shape(annotation: Any, what: str) -> Shape:
    if not isinstance(annotation, type):
        return replace(ANY, what=what)
    if issubclass(annotation, bool):
        return scalar("boolean", what)
    if issubclass(annotation, Enum):
        return scalar("string" if issubclass(annotation, str) else "number", what)
    if issubclass(annotation, datetime):
        return scalar("string", what, "datetime")
    if issubclass(annotation, date):
        return scalar("string", what, "date")
    if issubclass(annotation, int | float):
        return scalar("number", what)
    if issubclass(annotation, str | Decimal):  # a Decimal is dumped as its text
        return scalar("string", what)
    return replace(ANY, what=what)


# -- the evaluation -----------------------------------------------------------------------------


class Checker:
    """Evaluates expressions over shapes; `problems` collects what it found, in order."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def check(self, expression: ParsedResult, shape: Shape) -> Shape:
        tree: Node = expression.parsed  # type: ignore[assignment]
        return self.eval(tree, shape)

    def _problem(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)

    def eval(self, node: Node, s: Shape) -> Shape:
        visit = getattr(self, "_" + node["type"], None)
        if visit is None:  # a node type this checker does not know: assume nothing
            return ANY
        result: Shape = visit(node, s)
        return result

    # paths

    def _field(self, node: Node, s: Shape) -> Shape:
        name = node["value"]
        if s.is_any:
            return ANY
        out = NEVER
        if "object" in s.kinds:
            if s.fields is None:
                out = ANY
            elif name in s.fields:
                out = s.fields[name]
            else:
                has = ", ".join(sorted(s.fields)) or "no fields"
                where = f" of {s.what}" if s.what else ""
                self._problem(f"{name!r} is not a field{where} (it has {has})")
                out = NULL
        elif s.kinds - {"null"}:
            hint = ""
            if "array" in s.kinds:
                hint = f"; for each item write {s.what or ''}[].{name}"
            what = f"{s.what} is" if s.what else "it is"
            self._problem(f"{name!r}: {what} {s.describe()}, which has no fields{hint}")
        if s.kinds - {"object"}:
            out = nullable(out) if out.kinds else NULL
        return out

    def _subexpression(self, node: Node, s: Shape) -> Shape:
        for child in node["children"]:
            s = self._then(child, s)
        return s

    def _then(self, node: Node, s: Shape) -> Shape:
        """`node` applied to the result `s` of what came before (JMESPath stops at null)."""
        if s.kinds == frozenset({"null"}):
            return NULL
        out = self.eval(node, non_null(s) if not s.is_any else s)
        return nullable(out) if s.nullable and not out.is_any else out

    def _index_expression(self, node: Node, s: Shape) -> Shape:
        left, right = node["children"]
        return self._then(right, self.eval(left, s))

    def _index(self, node: Node, s: Shape) -> Shape:
        if s.is_any:
            return ANY
        if "array" not in s.kinds:
            self._not_a_list(s, f"[{node['value']}]")
            return NULL
        return nullable(s.items or ANY)  # out of range gives null

    def _slice(self, node: Node, s: Shape) -> Shape:
        if s.is_any:
            return ANY
        if "array" not in s.kinds:
            self._not_a_list(s, "[start:stop]")
            return NULL
        out = array(s.items, s.what)
        return nullable(out) if s.kinds - {"array"} else out

    def _not_a_list(self, s: Shape, what: str) -> None:
        if s.kinds - {"null"}:
            name = f"{s.what} is" if s.what else "it is"
            self._problem(f"{what} takes a list, but {name} {s.describe()}")

    def _projection(self, node: Node, s: Shape) -> Shape:
        left, right = node["children"]
        return self._project(self.eval(left, s), right, "[*]")

    def _project(self, listed: Shape, right: Node, what: str, narrow: Node | None = None) -> Shape:
        if listed.is_any:
            items = ANY
        elif "array" not in listed.kinds:
            self._not_a_list(listed, what)
            return NULL
        else:
            items = listed.items or ANY
        if narrow is not None:
            self.eval(narrow, items)
            items = _narrow(items, narrow)
        out = array(non_null(self.eval(right, items)), listed.what)
        return nullable(out) if listed.kinds - {"array"} else out

    def _filter_projection(self, node: Node, s: Shape) -> Shape:
        left, right, condition = node["children"]
        return self._project(self.eval(left, s), right, "[?...]", condition)

    def _flatten(self, node: Node, s: Shape) -> Shape:
        listed = self.eval(node["children"][0], s)
        if listed.is_any:
            return array(None)
        if "array" not in listed.kinds:
            self._not_a_list(listed, "[]")
            return NULL
        items = listed.items or ANY
        if items.is_any:
            flat = ANY
        elif "array" in items.kinds:
            flat = join(items.items or ANY, only(items, items.kinds - {"array"}))
        else:
            flat = items
        out = array(flat, listed.what)
        return nullable(out) if listed.kinds - {"array"} else out

    def _value_projection(self, node: Node, s: Shape) -> Shape:
        left, right = node["children"]
        value = self.eval(left, s)
        if value.is_any:
            return array(None)
        if "object" not in value.kinds:
            return NULL
        values = NEVER
        for field in (value.fields or {}).values():
            values = join(values, field)
        if value.fields is None or not values.kinds:
            values = ANY
        out = array(non_null(self.eval(right, values)))
        return nullable(out) if value.kinds - {"object"} else out

    def _identity(self, node: Node, s: Shape) -> Shape:
        return s

    def _current(self, node: Node, s: Shape) -> Shape:
        return s

    def _literal(self, node: Node, s: Shape) -> Shape:
        value = node["value"]
        return NULL if value is None else value_shape(value)

    def _multi_select_list(self, node: Node, s: Shape) -> Shape:
        items = NEVER
        for child in node["children"]:
            items = join(items, self.eval(child, s))
        out = array(items if items.kinds else None)
        return nullable(out) if s.nullable and not s.is_any else out

    def _multi_select_dict(self, node: Node, s: Shape) -> Shape:
        fields = {pair["value"]: self.eval(pair["children"][0], s) for pair in node["children"]}
        out = obj(fields)
        return nullable(out) if s.nullable and not s.is_any else out

    def _pipe(self, node: Node, s: Shape) -> Shape:
        left, right = node["children"]
        return self.eval(right, self.eval(left, s))

    # logic

    def _or_expression(self, node: Node, s: Shape) -> Shape:
        left, right = node["children"]
        return join(non_null(self.eval(left, s)), self.eval(right, s))

    def _and_expression(self, node: Node, s: Shape) -> Shape:
        left, right = node["children"]
        first = self.eval(left, s)
        falsy = only(first, frozenset({"null", "boolean", "string", "array", "object"}))
        return join(falsy, self.eval(right, _narrow(s, left)))

    def _not_expression(self, node: Node, s: Shape) -> Shape:
        self.eval(node["children"][0], s)
        return BOOLEAN

    def _comparator(self, node: Node, s: Shape) -> Shape:
        left, right = (self.eval(child, s) for child in node["children"])
        known = not left.is_any and not right.is_any
        lk, rk = left.kinds - {"null"}, right.kinds - {"null"}
        text = f"{_text(node['children'][0])} {_OPS.get(node['value'], '?')} "
        text += _text(node["children"][1])
        if node["value"] in ("eq", "ne"):
            if known and lk and rk and not lk & rk:
                self._problem(
                    f"{text} compares {describe(lk)} with {describe(rk)}: never equal "
                    "(quote text as '00', numbers as `0`)"
                )
            return BOOLEAN
        if known and lk and rk and {frozenset(lk), frozenset(rk)} == {STRING.kinds, NUMBER.kinds}:
            self._problem(f"{text} orders text against a number: it fails at run time")
        return nullable(BOOLEAN)

    # functions

    def _expref(self, node: Node, s: Shape) -> Shape:
        return ANY  # only meaningful as a function's argument

    def _function_expression(self, node: Node, s: Shape) -> Shape:
        name: str = node["value"]
        args: list[Node] = node["children"]
        spec = FUNCTIONS.get(name)
        if spec is None:
            self._problem(f"{name}() is not a JMESPath function ({', '.join(sorted(FUNCTIONS))})")
            return ANY
        signature = spec["signature"]
        variadic = bool(signature) and bool(signature[-1].get("variadic"))
        if (len(args) < len(signature)) if variadic else (len(args) != len(signature)):
            more = " or more" if variadic else ""
            self._problem(f"{name}() takes {len(signature)}{more} argument(s), not {len(args)}")
            return ANY
        shapes: list[Shape] = []
        for i, arg in enumerate(args):
            allowed: list[str] = signature[min(i, len(signature) - 1)]["types"]
            if arg["type"] == "expref":
                if "expref" not in allowed:
                    self._problem(f"{name}(): argument {i + 1} cannot be an &expression")
                shapes.append(ANY)
                continue
            if "expref" in allowed:
                self._problem(f"{name}(): argument {i + 1} must be an &expression")
                shapes.append(ANY)
                continue
            shape = self.eval(arg, s)
            self._argument(name, arg, shape, allowed)
            shapes.append(shape)
        return self._result(name, args, shapes)

    def _argument(self, name: str, arg: Node, shape: Shape, allowed: list[str]) -> None:
        if not allowed or shape.is_any or not shape.kinds:
            return
        kinds = frozenset(t.split("-")[0] for t in allowed)
        bad = shape.kinds - kinds
        text = _text(arg)
        if bad == {"null"}:
            fallback = next((_FALLBACK[k] for k in _FALLBACK_ORDER if k in kinds), "''")
            self._problem(
                f"{name}(): {text} may be null{_why(shape)}; JMESPath refuses null there: "
                f"give a fallback ({text} || {fallback}) or test it first ({text} && ...)"
            )
        elif bad:
            self._problem(
                f"{name}() takes {_allowed(allowed)}, but {text} is {describe(shape.kinds)}"
            )
        subtypes = frozenset(t.split("-")[1] for t in allowed if "-" in t)
        items = shape.items
        if subtypes and "array" in shape.kinds and items is not None and not items.is_any:
            ik = items.kinds
            if not any(ik <= {sub} for sub in subtypes):
                wanted = " or ".join(f"all {_NAMES[k]}" for k in sorted(subtypes))
                self._problem(
                    f"{name}() takes a list of {wanted}, but the items of {text} are "
                    f"{describe(ik)}{_why(items) if items.nullable else ''}"
                )

    def _key(self, name: str, listed: Node, arg: Node, items: Shape) -> None:
        """The sort key of max_by, min_by and sort_by: a number or text for every item."""
        body = arg["children"][0]
        key = self.eval(body, items)
        if key.is_any or not key.kinds:
            return
        text = f"&{_text(body)}"
        bad = key.kinds - {"number", "string"}
        if bad == {"null"}:
            self._problem(
                f"{name}(): the key {text} may be null{_why(key)}; JMESPath refuses it: keep "
                f"only the items that have one: {name}({_text(listed)}[?{_text(body)}], {text})"
            )
        elif bad:
            self._problem(f"{name}(): the key {text} must be a number or text, not {describe(bad)}")
        if {"number", "string"} <= key.kinds:
            self._problem(f"{name}(): the key {text} mixes numbers and text: it fails")

    def _result(self, name: str, args: list[Node], shapes: list[Shape]) -> Shape:
        first = shapes[0] if shapes else ANY
        items = first.items if "array" in first.kinds and first.items is not None else ANY
        if name in ("max_by", "min_by", "sort_by") and args[1]["type"] == "expref":
            self._key(name, args[0], args[1], items)
        if name in _RESULTS:
            return _RESULTS[name]
        if name == "map":
            listed = shapes[1]
            inner = listed.items if "array" in listed.kinds and listed.items else ANY
            return array(self.eval(args[0]["children"][0], inner))
        if name in ("max", "min", "max_by", "min_by"):
            return nullable(items)  # an empty list gives null
        if name in ("reverse", "sort", "sort_by"):
            return non_null(first)
        if name in ("values", "not_null"):
            return _joined(name, first, shapes)
        if name == "to_array":
            return first if first.kinds == {"array"} else array(None)
        return ANY


def _joined(name: str, first: Shape, shapes: list[Shape]) -> Shape:
    out = NEVER
    if name == "values":
        for field in (first.fields or {}).values():
            out = join(out, field)
        return array(out if first.fields and out.kinds else None)
    for shape in shapes:  # not_null
        out = join(out, non_null(shape))
    return out if any(not s.nullable for s in shapes) else nullable(out)


_RESULTS = {
    **dict.fromkeys(("abs", "ceil", "floor", "length", "sum"), NUMBER),
    **dict.fromkeys(("avg", "to_number"), Shape(frozenset({"number", "null"}))),
    **dict.fromkeys(("contains", "ends_with", "starts_with"), BOOLEAN),
    **dict.fromkeys(("join", "to_string", "type"), STRING),
    "keys": array(STRING),
    "merge": obj(None),
}
_OPS = {"eq": "==", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def _why(shape: Shape) -> str:
    if shape.what and shape.note:
        return f" ({shape.what} {shape.note})"
    return f" ({shape.what or shape.note})" if shape.what or shape.note else ""


def _allowed(types_: list[str]) -> str:
    words = []
    for t in types_:
        kind, _, sub = t.partition("-")
        words.append(f"a list of {_NAMES[sub]}" if sub else _NAMES.get(kind, kind))
    return " or ".join(words)


def _names(node: Node) -> list[str] | None:
    """`a.b.c` as ["a", "b", "c"]; None for any other expression."""
    if node["type"] == "field":
        return [node["value"]]
    if node["type"] == "subexpression":
        out: list[str] = []
        for child in node["children"]:
            part = _names(child)
            if part is None:
                return None
            out += part
        return out
    return None


def _narrow(s: Shape, condition: Node) -> Shape:
    """`s` where `condition` (a path, or paths joined by &&) is known to be truthy."""
    if condition["type"] == "and_expression":
        left, right = condition["children"]
        return _narrow(_narrow(s, left), right)
    path = _names(condition)
    return s if path is None else _present(s, path)


def _present(s: Shape, path: list[str]) -> Shape:
    if "object" not in s.kinds:
        return s
    if s.fields is None or path[0] not in s.fields:  # at least, it is an object
        return replace(s, kinds=frozenset({"object"}))
    field = non_null(s.fields[path[0]])
    if len(path) > 1:
        field = _present(field, path[1:])
    return replace(s, kinds=frozenset({"object"}), fields={**s.fields, path[0]: field})


def _text(node: Node) -> str:
    """An expression written back as text, for messages."""
    write = _WRITE.get(node["type"])
    return "the expression" if write is None else write(node, node.get("children", []))


def _projected(node: Node, children: list[Node]) -> str:
    right = "" if children[1]["type"] == "identity" else "." + _text(children[1])
    left = _text(children[0])
    if node["type"] == "filter_projection":
        return f"{left}[?{_text(children[2])}]{right}"
    return (left if left.endswith("]") else left + "[*]") + right


def _literal_text(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else f"`{value}`"


_Write = Callable[[Node, list[Node]], str]
_WRITE: dict[str, _Write] = {
    "field": lambda n, c: str(n["value"]),
    "subexpression": lambda n, c: ".".join(_text(x) for x in c),
    "current": lambda n, c: "@",
    "identity": lambda n, c: "@",
    "literal": lambda n, c: _literal_text(n["value"]),
    "function_expression": lambda n, c: f"{n['value']}({', '.join(_text(x) for x in c)})",
    "expref": lambda n, c: "&" + _text(c[0]),
    "index_expression": lambda n, c: _text(c[0]) + _text(c[1]),
    "index": lambda n, c: f"[{n['value']}]",
    "flatten": lambda n, c: _text(c[0]) + "[]",
    "projection": _projected,
    "filter_projection": _projected,
    "comparator": lambda n, c: f"{_text(c[0])} {_OPS.get(n['value'], '?')} {_text(c[1])}",
    "or_expression": lambda n, c: f"{_text(c[0])} || {_text(c[1])}",
    "and_expression": lambda n, c: f"{_text(c[0])} && {_text(c[1])}",
    "not_expression": lambda n, c: "!" + _text(c[0]),
    "pipe": lambda n, c: f"{_text(c[0])} | {_text(c[1])}",
    "multi_select_list": lambda n, c: "[" + ", ".join(_text(x) for x in c) + "]",
    "multi_select_dict": lambda n, c: (
        "{" + ", ".join(f"{x['value']}: {_text(x['children'][0])}" for x in c) + "}"
    ),
}
