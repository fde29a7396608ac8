"""A ministry system's mapping file: its messages ⇄ the hub's canonical models.

One YAML file per system in `mappings/` (`ministry_<system>.yaml`):

```yaml
name: Đăng ký kinh doanh
submit:                       # the hub's dossier record → the system's submit request
  accepted: "MaLoi == '00'"   # JMESPath over the reply: true = accepted (absent: any reply)
  reference: MaBienNhan       # the system's receipt number, kept with the hand-off
  reason: MoTaLoi             # why it refused, shown to operators
  fields:                     # target names; a dot nests (ThongTinHoSo.SoHoSo)
    MaHoSo: {path: dossier_code}
    NgayTiepNhan: {path: received_at, type: datetime, default: null}
results:                      # one result of the system → the hub's MinistryResult
  items: DanhSachKetQua.KetQua   # where a poll reply lists its results
  cursor: MocTiepTheo            # where it says the next cursor
  more: null                     # optional: true while more pages wait
  push_items: ketQua             # where a pushed body lists its results (absent: the body)
  fields:
    result_id:    {path: MaKetQua}
    dossier_code: {path: MaHoSo}
    status:       {path: TrangThai, table: status}
    occurred_at:  {path: ThoiGian, type: datetime, format: "%d/%m/%Y %H:%M:%S"}
tables:
  status: {DA_CAP_GCN: processed, TU_CHOI: stopped}
```

Submit fields read the dossier record as JSON (`schemas.canonical.DossierRecord` field names).
Result fields must be `MinistryResult` fields; `dossier_code`, `status` and `occurred_at` are
required, and a status table's values must be canonical status names (or numbers). Without a
`result_id`, a result's id is the SHA-256 of its content, so a repeated result is still one.
A REST system's mapping may name sample replies (`samples: {submit, poll, push}`, JSON files
beside it).

`load` reports every mistake in the file at once, each with its line, every expression
checked against what it will read (`connectors.ministry.checks`: the record, the samples; the
WSDL in `connectors.ministry.wsdl`). At run time every reply is made plain JSON first
(`as_json`: zeep's datetimes as ISO 8601 text), and an expression that fails on a document
raises `MappingFailed` (code `mapping_error`, naming the mapping key), never a JMESPath
exception. The syntax is documented in docs/reference/mapping-syntax.md. This module must
never do I/O beyond reading the file and its samples.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from jmespath.parser import ParsedResult
from pydantic import Field
from pydantic import ValidationError as PydanticValidationError

from connectors.ministry import checks
from connectors.ministry.config import MinistryConfig
from hub.config_blocks import Section
from hub.errors import ConfigError, ValidationFailed
from hub.fieldmap import (
    FieldMap,
    FieldSpec,
    Where,
    compile_fields,
    compile_path,
    read_file,
    read_yaml,
    validate,
)
from schemas.canonical import DossierStatus, content_id
from schemas.ministry import MinistryResult

RESULT_FIELDS = frozenset(MinistryResult.model_fields) - {"system"}
REQUIRED_RESULT_FIELDS = ("dossier_code", "status", "occurred_at")
_STATUS_NAMES = ", ".join(s.name for s in DossierStatus)


class _Submit(Section):
    accepted: str | None = None
    reference: str | None = None
    reason: str | None = None
    fields: dict[str, FieldSpec] = Field(min_length=1)


class _Results(Section):
    items: str | None = None
    cursor: str | None = None
    more: str | None = None
    push_items: str | None = None
    fields: dict[str, FieldSpec] = Field(min_length=1)


class _Samples(Section):
    """Files (JSON, beside the mapping file) of what a REST system answers or pushes; the
    paths over each are checked against it. A SOAP system's replies are checked against its
    WSDL, so `submit` and `poll` are for REST systems only; pushes are JSON for both."""

    submit: str | None = None  # a reply of submit.operation
    poll: str | None = None  # a reply of poll.operation
    push: str | None = None  # a body the system pushes


class _File(Section):
    name: str = ""
    description: str = ""
    submit: _Submit | None = None
    results: _Results | None = None
    tables: dict[str, dict[str, Any]] = Field(default_factory=dict)
    samples: _Samples = _Samples()


_PATHS = {
    "submit": ("accepted", "reference", "reason"),
    "results": ("items", "cursor", "more", "push_items"),
}


@dataclass(frozen=True)
class SubmitOutcome:
    accepted: bool
    reference: str | None
    reason: str | None


@dataclass(frozen=True)
class Page:
    items: list[Any]
    cursor: str | None
    more: bool


class MinistryMapping:
    def __init__(
        self,
        source: str,
        spec: _File,
        submit: FieldMap | None,
        results: FieldMap | None,
        paths: dict[str, ParsedResult | None],
        where: Where,
        samples: dict[str, Any],
    ) -> None:
        self.source = source
        self.spec = spec
        self.name = spec.name
        self.submit = submit
        self.results = results
        self._paths = paths
        self.where = where  # where(("results", "fields", "status"), message): file:line: ...
        self.samples = samples  # samples.<name> → the JSON it names

    @classmethod
    def load(cls, path: Path) -> MinistryMapping:
        return cls.parse(read_file(path), str(path), path.parent)

    @classmethod
    def parse(cls, text: str, source: str = "mapping", base: Path | None = None) -> MinistryMapping:
        """The mapping in `text` (from `source`; sample files are read from `base`), every
        mistake at once: `ConfigError` with the file and line of each."""
        raw, where = read_yaml(text, source)
        spec = validate(_File, raw, source, where)
        problems: list[str] = []
        if spec.submit is None and spec.results is None:
            problems.append(where((), "give a submit section, a results section, or both"))
        submit = results = None
        paths: dict[str, ParsedResult | None] = {}
        for section, names in _PATHS.items():
            part = getattr(spec, section)
            if part is None:
                continue
            fields = compile_fields(
                source, spec.name, part.fields, spec.tables, where, problems, (section, "fields")
            )
            if section == "submit":
                submit = fields
            else:
                results = fields
            paths |= _paths(part, names, section, where, problems)
        if spec.results is not None:
            problems += _check_results(spec, where)
        samples = _read_samples(spec.samples, base or Path("."), where, problems)
        mapping = cls(source, spec, submit, results, paths, where, samples)
        if not problems:
            problems += checks.expressions(mapping)
        if problems:
            raise ConfigError(f"{len(problems)} problem(s) in {source}", problems)
        return mapping

    def expressions(self) -> Iterator[tuple[tuple[str, ...], str, str]]:
        """Each JMESPath expression of the file: where it is, its key and its text."""
        for section, names in _PATHS.items():
            part = getattr(self.spec, section)
            if part is None:
                continue
            for name in names:
                text = getattr(part, name)
                if text is not None:
                    yield (section, name), f"{section}.{name}", text

    def fields(self, section: str) -> dict[str, FieldSpec]:
        part = getattr(self.spec, section)
        return {} if part is None else dict(part.fields)

    # -- hand-off -------------------------------------------------------------------------------

    def submit_request(self, record: dict[str, Any]) -> dict[str, Any]:
        """The submit request for a dossier record; `ValidationFailed` names a missing field
        (`MappingFailed` a field whose expression failed on this record)."""
        if self.submit is None:
            raise ValidationFailed("the mapping has no submit section", code="no_submit")
        return _nest(_applied(self.submit, record, "submit"))

    def submit_outcome(self, reply: Any) -> SubmitOutcome:
        """What the system's reply says; `MappingFailed` if an expression fails on it."""
        reply = as_json(reply)
        accepted = self._search("submit.accepted", reply, default=True)
        reference = self._search("submit.reference", reply)
        reason = self._search("submit.reason", reply)
        return SubmitOutcome(
            accepted=accepted is True,
            reference=None if reference is None else str(reference)[:200],
            reason=None if reason is None else str(reason)[:500],
        )

    # -- results --------------------------------------------------------------------------------

    def page(self, reply: Any) -> Page:
        """The results, next cursor and whether more wait, in one poll reply (made plain JSON
        first: zeep's times become ISO 8601 text); `MappingFailed` if it cannot be read."""
        reply = as_json(reply)
        items = self._search("results.items", reply, default=reply)
        if items is None:
            items = []
        if not isinstance(items, list):
            items = [items]  # one result serialized as an object rather than a list of one
        cursor = self._search("results.cursor", reply)
        if isinstance(cursor, dict | list | bool):
            raise MappingFailed("results.cursor", f"gives {cursor!r:.100}, not a single value")
        more = self._search("results.more", reply)
        return Page(items, None if cursor is None else str(cursor), more is True)

    def pushed_items(self, body: Any) -> list[Any]:
        items = self._search("results.push_items", as_json(body), default=body)
        if not isinstance(items, list):
            raise ValidationFailed(
                "the body does not hold a list of results where the mapping says",
                field="results.push_items",
                code="not_a_list",
            )
        return items

    def result(self, system: str, item: Any) -> MinistryResult:
        """One result item mapped; `ValidationFailed` (field and code) when it cannot be."""
        if self.results is None:
            raise ValidationFailed("the mapping has no results section", code="no_results")
        item = as_json(item)
        if not isinstance(item, dict):
            raise ValidationFailed("a result must be an object", code="not_an_object")
        fields = _applied(self.results, item, "results")
        if fields.get("result_id") is None:
            fields["result_id"] = content_id(item)
        fields["status"] = _status(fields["status"])
        try:
            return MinistryResult(system=system, **fields)
        except PydanticValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ValidationFailed(f"{where}: {err['msg']}", field=where, code="invalid") from None

    def has_path(self, name: str) -> bool:
        return self._paths.get(name) is not None

    def _search(self, name: str, document: Any, default: Any = None) -> Any:
        expression = self._paths.get(name)
        if expression is None:
            return default
        try:
            return expression.search(document)
        except Exception as exc:  # JMESPath's type errors, Python's ("a" < 1): the mapping's
            raise MappingFailed(name, f"{expression.expression} failed: {exc}") from None


class MappingFailed(ValidationFailed):
    """A mapping expression failed on a document at run time (`length` of a null, `max_by`
    over a key an item lacks): `at` is the mapping key, the code is `mapping_error`. The
    document is set aside with this reason (quarantined, or its hand-off parked); it never
    escapes as a JMESPath exception."""

    def __init__(self, at: str, message: str) -> None:
        super().__init__(f"{at}: {message}"[:1000], field=at, code="mapping_error")
        self.at = at


def _applied(fields: FieldMap, document: Any, section: str) -> dict[str, Any]:
    try:
        return fields.apply(document)
    except ValidationFailed as exc:
        if exc.code != "mapping_error":
            raise
        raise MappingFailed(f"{section}.fields.{exc.field}", exc.message) from None


def _paths(
    section: Section, names: tuple[str, ...], at: str, where: Where, problems: list[str]
) -> dict[str, ParsedResult | None]:
    out: dict[str, ParsedResult | None] = {}
    for name in names:
        text = getattr(section, name)
        if text is not None:
            out[f"{at}.{name}"] = compile_path(text, (at, name), where, problems)
    return out


def _read_samples(
    samples: _Samples, base: Path, where: Where, problems: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("submit", "poll", "push"):
        given = getattr(samples, name)
        if given is None:
            continue
        path = Path(given) if Path(given).is_absolute() else base / given
        try:
            out[name] = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            problems.append(where(("samples", name), f"cannot read {path}: {exc.strerror}"))
        except ValueError as exc:
            problems.append(where(("samples", name), f"{path} is not JSON: {exc}"))
    return out


def _check_results(spec: _File, where: Where) -> list[str]:
    assert spec.results is not None
    fields = spec.results.fields
    problems = [
        where(("results", "fields", t), f"not a result field; use one of {sorted(RESULT_FIELDS)}")
        for t in fields
        if t not in RESULT_FIELDS
    ]
    problems += [
        where(("results", "fields"), f"{t} is required")
        for t in REQUIRED_RESULT_FIELDS
        if t not in fields
    ]
    table = fields["status"].table if "status" in fields else None
    if table is not None and table in spec.tables:
        for code, value in spec.tables[table].items():
            try:
                _status(value)
            except ValidationFailed:
                problems.append(
                    where(
                        ("tables", table, str(code)),
                        f"{value!r} is not a dossier status ({_STATUS_NAMES})",
                    )
                )
    return problems


def _status(value: Any) -> DossierStatus:
    try:
        if isinstance(value, str) and not value.strip().isdigit():
            return DossierStatus[value.strip()]
        return DossierStatus(int(value))
    except (KeyError, ValueError, TypeError):
        raise ValidationFailed(
            f"{value!r} is not a dossier status", field="status", code="unknown_status"
        ) from None


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{"A.B": 1, "A.C": 2, "D": 3} → {"A": {"B": 1, "C": 2}, "D": 3}; None values left out."""
    out: dict[str, Any] = {}
    for target, value in flat.items():
        if value is None:
            continue
        *parents, leaf = target.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


MAX_DOCUMENT_DEPTH = 64
"""Levels of objects and lists in one reply or pushed body. A ministry's message is a few
levels deep; hundreds are no message, and would run the hub out of stack."""


def as_json(value: Any, _depth: int = 0) -> Any:
    """A reply as plain JSON types, as JMESPath's functions need them (they test the exact
    type: zeep's datetime is no string, an OrderedDict no object): a date or time as ISO 8601
    text (`2026-12-06T12:18:47+07:00`), a decimal as a number, bytes as base64 text, anything
    else as its text. `MappingFailed` (at `document`) past `MAX_DOCUMENT_DEPTH` levels."""
    if value is None or type(value) in (str, bool, int, float):
        return value
    if _depth >= MAX_DOCUMENT_DEPTH:
        raise MappingFailed("document", f"nested deeper than {MAX_DOCUMENT_DEPTH} levels")
    if isinstance(value, Mapping):
        return {str(k): as_json(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v, _depth + 1) for v in value]
    return _scalar(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)  # an IntEnum
    if isinstance(value, str):
        return str(value)  # lxml's text results are str subclasses
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, timedelta):
        return _duration(value)
    return str(value)


def _duration(value: timedelta) -> str:
    """An xsd:duration's text (zeep gives a timedelta): P1DT2H3M4S."""
    seconds = value.total_seconds()
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    clock = "".join(f"{int(n)}{u}" for n, u in ((hours, "H"), (minutes, "M")) if n)
    clock += f"{rest:g}S" if rest else ""
    days_text = f"{int(days)}D" if days else ""
    return f"{sign}P{days_text}{'T' + clock if clock else ''}" if days_text or clock else "PT0S"


def mapping_path(name: str, mappings_dir: Path) -> Path:
    """`ministries.<s>.mapping`: a name in mappings_dir, or a path (with / or .yaml)."""
    if "/" in name or name.endswith((".yaml", ".yml")):
        return Path(name)
    return mappings_dir / f"{name}.yaml"


def load_for(system: str, config: MinistryConfig, mappings_dir: Path) -> MinistryMapping:
    """The system's mapping file, checked against what its configuration asks of it."""
    path = mapping_path(config.mapping, mappings_dir)
    mapping = MinistryMapping.load(path)
    problems = []
    at = f"ministries.{system}"
    if config.submit is not None and mapping.submit is None:
        problems.append(f"{at}.submit is set, but {path} has no submit section")
    if (config.poll or config.push) and mapping.results is None:
        problems.append(f"{at} takes results (poll or push), but {path} has no results section")
    if config.poll is not None and not mapping.has_path("results.items"):
        problems.append(f"{at}.poll is set, but {path} does not say results.items")
    if config.kind == "soap":
        problems += [
            mapping.where(
                ("samples", name),
                "a SOAP system's replies are checked against its WSDL: samples.submit and "
                "samples.poll are for REST systems",
            )
            for name in ("submit", "poll")
            if getattr(mapping.spec.samples, name) is not None
        ]
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) with ministry system {system}", problems)
    return mapping
