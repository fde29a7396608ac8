"""Vendor status vocabularies, translated to the canonical status through YAML tables.

Each one-stop vendor names statuses (and sub-statuses) its own way; `mappings/<name>.yaml`
says what each code means. The tables are data so a province can correct them without a
release. This module must never guess: a code absent from the table is refused, by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub import yamlfile
from hub.errors import ConfigError, ValidationFailed
from schemas.canonical import DossierStatus


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str
    sub_status: str | None = None
    label: str | None = None


class _TableFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    statuses: dict[str, _Entry] = Field(min_length=1)


@dataclass(frozen=True)
class Translation:
    status: DossierStatus
    sub_status: str | None
    vendor_code: str


class StatusTable:
    def __init__(self, name: str, entries: dict[str, Translation]) -> None:
        self.name = name
        self._entries = entries

    def translate(self, code: object, field: str = "status") -> Translation:
        key = str(code).strip() if isinstance(code, str | int) else None
        found = self._entries.get(key) if key is not None else None
        if found is None:
            raise ValidationFailed(
                f"unknown status code {code!r} (table {self.name!r} in mappings/)",
                field=field,
                code="unknown_status",
            )
        return found

    @classmethod
    def load(cls, path: Path) -> StatusTable:
        try:
            raw = _read(path)
            table = _TableFile.model_validate(raw)
        except ValidationError as exc:
            found = [f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            raise ConfigError(f"{path} is not a valid status table", found) from None
        entries: dict[str, Translation] = {}
        problems: list[str] = []
        for code, entry in table.statuses.items():
            try:
                status = DossierStatus[entry.status]
            except KeyError:
                names = ", ".join(s.name for s in DossierStatus)
                problems.append(f"{path}: statuses.{code}: {entry.status!r} is not one of {names}")
                continue
            entries[str(code)] = Translation(status, entry.sub_status, str(code))
        if problems:
            raise ConfigError(f"{path} names unknown canonical statuses", problems)
        return cls(table.name, entries)


def load_tables(mappings_dir: Path, names: set[str]) -> dict[str, StatusTable]:
    """Load every table the configuration names; `ConfigError` lists all that fail."""
    tables: dict[str, StatusTable] = {}
    problems: list[str] = []
    for name in sorted(names):
        try:
            tables[name] = StatusTable.load(mappings_dir / f"{name}.yaml")
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError("status tables are invalid", problems)
    return tables


TableT = TypeVar("TableT", bound=BaseModel)


def load_code_table(model: type[TableT], path: Path) -> TableT:
    """A YAML code table of `mappings/`, validated; `ConfigError` says what is wrong."""
    raw = _read(path)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path} is not a valid code table", [f"{path}: {exc}"]) from None


def _read(path: Path) -> Any:
    """The file's YAML; `ConfigError` if it cannot be read, is not YAML or repeats a key (a
    code written twice would silently keep only its last meaning)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}", [f"{path}: {exc.strerror}"]) from None
    return yamlfile.load(text, str(path)).data
