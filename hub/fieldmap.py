"""Declarative field maps: how a system's document becomes the hub's fields (and back).

A ministry system (and any later connector) is described by a YAML mapping file in
`mappings/`, not by code. Each target field names where its value is found, with a JMESPath
expression (the `jmespath` library), or gives a constant, then optionally translates it
through a code table, parses it as a date with a format, converts its type, or falls back to a
default:

```yaml
fields:
  dossier_code: {path: "HoSo.MaHoSo"}
  status:       {path: "HoSo.TrangThai", table: status}
  decided_at:   {path: "HoSo.NgayQuyetDinh", type: datetime, format: "%d/%m/%Y %H:%M"}
  result_no:    {path: "KetQua.SoGiayPhep", default: null}
  unit:         {value: "000.00.00.G12"}
tables:
  status: {"DA_CAP": processed, "TU_CHOI": stopped}
```

`FieldMap.load` checks the whole file at once (unknown keys, expressions that do not compile,
tables that do not exist, formats that cannot parse, defaults of the wrong type) and raises
`ConfigError` naming the file and line of every mistake; `hub check-config` shows them.
`apply` raises `ValidationFailed` naming the target field, so one bad document is refused on
its own; an expression that fails on a document (`length` of a null, text compared with a
number) is `ValidationFailed` too, with the code `mapping_error`, never a JMESPath exception.
Times without a zone are read in Asia/Ho_Chi_Minh. This module must never do I/O beyond
reading the mapping file, nor know any particular system.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hub import yamlfile
from hub.errors import ConfigError, ValidationFailed
from hub.validation import VN_TZ

FieldType = Literal["string", "int", "decimal", "bool", "date", "datetime"]
_MISSING = object()
_TRUE = {"true", "1", "yes", "co", "có"}
_FALSE = {"false", "0", "no", "khong", "không"}


class FieldSpec(BaseModel):
    """One target field of a mapping file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = Field(None, description="JMESPath expression into the document")
    value: Any = Field(None, description="a constant, instead of a path")
    table: str | None = Field(None, description="translate through tables.<name>")
    type: FieldType = "string"
    format: str | None = Field(None, description="strptime format of a date or datetime")
    default: Any = _MISSING
    description: str = ""

    @model_validator(mode="after")
    def _source(self) -> FieldSpec:
        if (self.path is None) == (self.value is None):
            raise ValueError("give exactly one of path or value")
        if self.format is not None and self.type not in ("date", "datetime"):
            raise ValueError("format applies to type date or datetime only")
        return self

    @property
    def required(self) -> bool:
        return self.default is _MISSING


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    description: str = ""
    fields: dict[str, FieldSpec] = Field(min_length=1)
    tables: dict[str, dict[str, Any]] = Field(default_factory=dict)


@dataclass(frozen=True)
class _Compiled:
    spec: FieldSpec
    expression: ParsedResult | None


class FieldMap:
    """A validated mapping file, its expressions compiled once."""

    def __init__(
        self,
        source: str,
        name: str,
        tables: dict[str, dict[str, Any]],
        fields: dict[str, _Compiled],
    ) -> None:
        self.source = source
        self.name = name
        self.tables = tables
        self._fields = fields

    @property
    def targets(self) -> list[str]:
        return list(self._fields)

    @classmethod
    def load(cls, path: Path) -> FieldMap:
        return cls.parse(read_file(path), str(path))

    @classmethod
    def parse(cls, text: str, source: str = "mapping") -> FieldMap:
        raw, where = read_yaml(text, source)
        spec = validate(_File, raw, source, where)
        problems: list[str] = []
        fields = compile_fields(source, spec.name, spec.fields, spec.tables, where, problems)
        if problems:
            raise ConfigError(f"{len(problems)} problem(s) in {source}", problems)
        return fields

    def spec(self, target: str) -> FieldSpec:
        return self._fields[target].spec

    def apply(self, document: Any) -> dict[str, Any]:
        """The target fields read from `document`; `ValidationFailed` names the first bad one."""
        out: dict[str, Any] = {}
        for target, compiled in self._fields.items():
            spec = compiled.spec
            raw = spec.value if compiled.expression is None else _search(compiled, document, target)
            if raw is None or raw == "":
                if spec.required:
                    raise ValidationFailed(
                        f"{target} is missing (looked for {spec.path})",
                        field=target,
                        code="missing",
                    )
                out[target] = spec.default
                continue
            if spec.table is not None:
                raw = self._translate(raw, spec.table, target)
            out[target] = _convert(raw, spec, target)
        return out

    def _translate(self, raw: Any, table: str, target: str) -> Any:
        codes = self.tables[table]
        key = str(raw).strip()
        if key not in codes:
            raise ValidationFailed(
                f"{target}: {key[:50]!r} is not in table {table!r} of {self.name or self.source}",
                field=target,
                code="unknown_code",
            )
        return codes[key]


def _search(compiled: _Compiled, document: Any, target: str) -> Any:
    assert compiled.expression is not None
    try:
        return compiled.expression.search(document)
    except Exception as exc:  # JMESPath's type errors, Python's ("a" < 1): the mapping's doing
        raise ValidationFailed(
            f"{target}: {compiled.spec.path} cannot be read here: {str(exc)[:300]}",
            field=target,
            code="mapping_error",
        ) from None


Where = Callable[[tuple[str, ...], str], str]
M = TypeVar("M", bound=BaseModel)


def read_yaml(text: str, source: str) -> tuple[Any, Where]:
    """The YAML document and a `where(loc, message)` that prefixes `file:line: key.path`;
    `ConfigError` if it is not YAML or repeats a key (`hub.yamlfile`)."""
    document = yamlfile.load(text, source)
    return document.data, partial(_where, source, document.lines)


def read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}", [f"{path}: {exc.strerror}"]) from None


def validate(model: type[M], raw: Any, source: str, where: Where) -> M:
    """`model` built from `raw`; every pydantic error located, all raised at once."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        found = [where(tuple(str(p) for p in err["loc"]), err["msg"]) for err in exc.errors()]
        raise ConfigError(f"{len(found)} problem(s) in {source}", found) from None


def compile_path(
    expression: str, at: tuple[str, ...], where: Where, problems: list[str]
) -> ParsedResult | None:
    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        problems.append(where(at, f"not a JMESPath expression: {exc}"))
        return None


def compile_fields(
    source: str,
    name: str,
    specs: dict[str, FieldSpec],
    tables: dict[str, dict[str, Any]],
    where: Where,
    problems: list[str],
    at: tuple[str, ...] = ("fields",),
) -> FieldMap:
    """A `FieldMap` of `specs` (found under `at` in the file); mistakes go to `problems`."""
    fields = {t: _compile(t, f, tables, where, problems, (*at, t)) for t, f in specs.items()}
    return FieldMap(source, name, tables, fields)


def _compile(
    target: str,
    field: FieldSpec,
    tables: dict[str, dict[str, Any]],
    where: Where,
    problems: list[str],
    at: tuple[str, ...],
) -> _Compiled:
    """One field checked against the rest of the file; each mistake appended to `problems`."""
    expression = None
    if field.path is not None:
        expression = compile_path(field.path, (*at, "path"), where, problems)
    if field.table is not None and field.table not in tables:
        problems.append(where((*at, "table"), f"no table {field.table!r} under tables"))
    if field.format is not None:
        sample = datetime(2026, 1, 2, 3, 4, 5)
        try:
            datetime.strptime(sample.strftime(field.format), field.format)
        except ValueError as exc:
            problems.append(where((*at, "format"), f"not a usable date format: {exc}"))
    if not field.required and field.default is not None:
        try:
            _convert(field.default, field, target)
        except ValidationFailed as exc:
            problems.append(where((*at, "default"), exc.message))
    return _Compiled(field, expression)


def _convert(raw: Any, spec: FieldSpec, target: str) -> Any:
    try:
        return _CONVERTERS[spec.type](raw, spec)
    except (ValueError, InvalidOperation, TypeError):
        what = _EXPECTED.get(spec.type) or f"a {spec.type} like {spec.format or 'ISO 8601'}"
        raise ValidationFailed(
            f"{target} must be {what}", field=target, code="wrong_type"
        ) from None


def _string(raw: Any, _: FieldSpec) -> str:
    if isinstance(raw, dict | list):
        raise TypeError("not a single value")
    return str(raw).strip()


def _int(raw: Any, _: FieldSpec) -> int:
    if isinstance(raw, bool):
        raise TypeError("a boolean")
    return int(str(raw).strip())


def _bool(raw: Any, _: FieldSpec) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text not in _TRUE | _FALSE:
        raise ValueError(text)
    return text in _TRUE


def _moment(raw: Any, spec: FieldSpec) -> date | datetime:
    text = str(raw).strip()
    moment = datetime.strptime(text, spec.format) if spec.format else datetime.fromisoformat(text)
    if spec.type == "date":
        return moment.date()
    return moment if moment.tzinfo else moment.replace(tzinfo=VN_TZ)


_CONVERTERS: dict[str, Callable[[Any, FieldSpec], Any]] = {
    "string": _string,
    "int": _int,
    "decimal": lambda raw, _: Decimal(str(raw).strip()),
    "bool": _bool,
    "date": _moment,
    "datetime": _moment,
}
_EXPECTED = {
    "string": "a single value, not a list or object",
    "int": "a whole number",
    "decimal": "a number",
    "bool": "true or false",
}


def _where(source: str, lines: dict[tuple[str, ...], int], loc: Any, message: str) -> str:
    path = tuple(str(p) for p in loc)
    line = next((lines[path[:n]] for n in range(len(path), 0, -1) if path[:n] in lines), None)
    place = f"{source}:{line}" if line else source
    return f"{place}: {'.'.join(path) or '(top level)'}: {message}"
