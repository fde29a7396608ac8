"""Session-wide fixtures: one real RabbitMQ node shared by every test, isolated by name prefix.

`rabbit_url` is the broker tests talk to. By default it belongs to a private node
(`sims.rabbitmq_node.RabbitNode`) started once, lazily, in a temporary directory and stopped at
the end of the session. Set `HUB_TEST_BROKER_URL` (e.g. `amqp://user:pass@host:5672/`) to run
the tests against an existing broker instead; no node is started then, unless a test asks for
`rabbit_node` itself (a test that needs to own the broker process).

Tests sharing the broker never see each other's queues: each takes a unique `broker_prefix`.
These fixtures must never touch a broker other than the one `rabbit_url` names.

Likewise for PostgreSQL: `postgres_database` is the URL of a new, empty database for one test,
on a private server (`sims.postgres_node.PostgresNode`) started once, lazily, or on the server
`HUB_TEST_POSTGRES_URL` names (a role that may create databases); the database is dropped
after the test.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from sims.postgres_node import PostgresNode, create_database, drop_database
from sims.rabbitmq_node import RabbitNode
from tests.support import store_on_postgresql, use_postgres_database

BROKER_URL_VAR = "HUB_TEST_BROKER_URL"
POSTGRES_URL_VAR = "HUB_TEST_POSTGRES_URL"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what each test needs, from the fixtures it asks for and where it lives, so that
    `make test-fast` can leave out the broker, the browser and the slow tests by marker."""
    for item in items:
        if {"rabbit_url", "rabbit_node"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)
        if {"postgres_database", "postgres_server_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
        if "tests/browser/" in item.nodeid:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def rabbit_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    """A private RabbitMQ node for the whole session (started even if HUB_TEST_BROKER_URL)."""
    with RabbitNode(tmp_path_factory.mktemp("rabbitmq")) as node:
        yield node


@pytest.fixture(scope="session")
def rabbit_url(request: pytest.FixtureRequest) -> str:
    """The broker's AMQP URL: HUB_TEST_BROKER_URL if set, else the private node's."""
    external = os.environ.get(BROKER_URL_VAR)
    if external:
        return external
    node: RabbitNode = request.getfixturevalue("rabbit_node")
    return node.url


@pytest.fixture
def broker_prefix() -> str:
    """A name prefix of its own for each test (valid as the hub's `broker.prefix`)."""
    return f"t{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def postgres_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresNode]:
    """A private PostgreSQL server for the whole session."""
    with PostgresNode(tmp_path_factory.mktemp("postgres")) as node:
        yield node


@pytest.fixture(scope="session")
def postgres_server_url(request: pytest.FixtureRequest) -> str:
    """A PostgreSQL server's URL (its `postgres` database), for a role that may create
    databases: HUB_TEST_POSTGRES_URL if set, else the private server's."""
    external = os.environ.get(POSTGRES_URL_VAR)
    if external:
        return external
    node: PostgresNode = request.getfixturevalue("postgres_node")
    return node.url()


@pytest.fixture
def postgres_database(postgres_server_url: str) -> Iterator[str]:
    """The URL of a new, empty database of this test's own (dropped afterwards)."""
    name = f"t{secrets.token_hex(6)}"
    url = create_database(postgres_server_url, name)
    yield url
    drop_database(postgres_server_url, name)


@pytest.fixture(autouse=True)
def _store_backend(request: pytest.FixtureRequest) -> Iterator[None]:
    """With HUB_TEST_STORE=postgresql, every test's hub (`tests.support.hub_overrides`) runs
    on a database of the test's own; otherwise nothing happens here."""
    if not store_on_postgresql():
        yield
        return
    use_postgres_database(request.getfixturevalue("postgres_database"))
    try:
        yield
    finally:
        use_postgres_database(None)
