"""The store's cache of parsed dossier records: a hit is what a parse gives, and it stays
bounded (the oldest unused record leaves first)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.store import sqlite
from schemas.canonical import DossierRecord, DossierStatus

AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def text_of(n: int) -> str:
    code = f"000.00.41.H41-261201-{n:04d}"
    record = DossierRecord(dossier_code=code, status=DossierStatus.accepted, received_at=AT)
    return record.model_dump_json()


def test_a_cached_record_is_what_a_parse_gives_and_the_cache_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sqlite, "RECORD_CACHE_SIZE", 2)
    monkeypatch.setattr(sqlite, "_RECORDS", type(sqlite._RECORDS)())
    first, second, third = text_of(1), text_of(2), text_of(3)

    parsed = sqlite._record_of(first)
    assert sqlite._record_of(first) is parsed  # the second read is the cached model
    assert parsed == DossierRecord.model_validate_json(first)
    sqlite._record_of(second)
    sqlite._record_of(first)  # used again: the second is now the oldest
    sqlite._record_of(third)

    assert list(sqlite._RECORDS) == [first, third]
    written = DossierRecord.model_validate_json(second)
    assert sqlite._record_json(written) == second  # what a write stores is remembered too
    assert sqlite._record_of(second) is written
    assert len(sqlite._RECORDS) == 2
