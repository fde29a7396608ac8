"""Which store the hub opens: the back-end the configuration names (`store.backend`).

Every part of the hub that opens the store (`hub run`, the CLI's commands, the dashboard's
reading connection) goes through here, so a back-end is chosen in one place. This module must
never log the store's URL: it holds a password.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from hub.config import StoreConfig
from hub.plugins import Connector
from hub.store.postgresql import PostgresStore
from hub.store.sqlite import SqliteStore


def open_store(
    config: StoreConfig, connectors: tuple[Connector, ...] | None = None
) -> AbstractAsyncContextManager[SqliteStore]:
    """The store, migrated, with the slices of `connectors` (by default the built-in ones)."""
    if config.backend == "postgresql":
        return PostgresStore.connect(_url(config), connectors)
    return SqliteStore.open(config.path, connectors=connectors)


def open_reader(
    config: StoreConfig, connectors: tuple[Connector, ...] | None = None
) -> AbstractAsyncContextManager[SqliteStore]:
    """A second connection to a store `open_store` opened (and migrated), for reads that must
    never wait for the hub's writes (the dashboard's)."""
    if config.backend == "postgresql":
        return PostgresStore.connect(_url(config), connectors, migrate=False)
    return SqliteStore.open_reader(config.path, connectors)


def _url(config: StoreConfig) -> str:
    if config.url is None:  # the configuration's validation already refuses this
        raise ValueError("store.backend postgresql needs store.url")
    return config.url.get_secret_value()
