"""A test's store on whichever back-end the run uses (`HUB_TEST_STORE`), without a hub.

`open_test_store(tmp_path)` opens (and migrates) the store a test's hub would use
(`store_settings`: a file in its folder, or its own PostgreSQL database), through the product's
one opener, for a test that needs a store beside the broker but no hub.
`store_rows(settings, sql, *args)` reads a hub's store from outside, as an operator's query
would, while the hub runs or after it was killed: a read-only SQLite connection to the file, or
a session of its own on PostgreSQL. `sql` is written once, in SQLite's spelling (`?`
parameters); the product's `hub.store.dialect` carries it over to PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import asyncpg

from hub.config import StoreConfig
from hub.plugins import Connector
from hub.store.dialect import postgresql
from hub.store.opening import open_store
from hub.store.sqlite import SqliteStore
from tests.support import store_settings


def open_test_store(
    tmp_path: Path, connectors: tuple[Connector, ...] | None = None
) -> AbstractAsyncContextManager[SqliteStore]:
    """The store a hub of this test would open, opened by the test itself."""
    return open_store(StoreConfig.model_validate(store_settings(tmp_path)), connectors)


async def store_rows(
    settings: StoreConfig | Mapping[str, Any], sql: str, *args: Any
) -> list[dict[str, Any]]:
    """The rows `sql` reads from the store `settings` (a hub's `store:` section) names."""
    config = settings if isinstance(settings, StoreConfig) else StoreConfig.model_validate(settings)
    if config.backend == "postgresql":
        assert config.url is not None
        conn = await asyncpg.connect(config.url.get_secret_value())
        try:
            return [dict(r) for r in await conn.fetch(postgresql(sql), *args)]
        finally:
            await conn.close()
    return await asyncio.to_thread(_sqlite_rows, config.path, sql, args)


def _sqlite_rows(path: Path, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(sql, args).fetchall()]
