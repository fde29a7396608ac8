"""What the tests (and the bench) share: a hub configuration for a test, the `hub` command as
a process, waiting for a condition (`waiting.eventually`), and the hub as a real process
(`hubproc.HubProcess`). A free port comes from `sims.rabbitmq_node.find_free_port`.

Fakes do not live here: tests talk to a real RabbitMQ node and real loopback servers. Test
modules import from here (and from the `*_world.py` / `harness.py` world modules), never from
each other.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

from hub.auth import hash_password, sha256_hex
from hub.config import ALL_PERMISSIONS, HubConfig, load_config
from hub.tokens import hash_token
from tests.support.hubproc import HubProcess, ProcessFailed, ServedProcess
from tests.support.waiting import eventually

__all__ = [
    "ONESTOP_PASSWORD",
    "ONESTOP_TOKEN",
    "ONESTOP_USER",
    "PORTAL_PASSWORD",
    "PORTAL_USER",
    "READER_TOKEN",
    "UNIT",
    "CliResult",
    "HubProcess",
    "ProcessFailed",
    "ServedProcess",
    "eventually",
    "hub_cli",
    "hub_config",
    "hub_overrides",
    "store_on_postgresql",
    "store_settings",
    "use_postgres_database",
]

UNIT = "000.00.41.H41"
ONESTOP_USER, ONESTOP_PASSWORD, ONESTOP_TOKEN = "onestop", "onestop-password", "onestop-token"
READER_TOKEN = "reader-token"  # may only look dossiers up
PORTAL_USER, PORTAL_PASSWORD = "hub", "secret"
_HASH = hash_password(ONESTOP_PASSWORD)


# The store back-end the hub runs on in this test run: `HUB_TEST_STORE=postgresql` runs the
# suites that take a store on PostgreSQL (`make test` runs them so after the SQLite run), each
# test on a database of its own that `tests/conftest.py` makes and names here.
STORE_VAR = "HUB_TEST_STORE"
# On PostgreSQL a hub restarted after SIGKILL waits out the leases its killed predecessor left
# (decision 0091; a hub on SQLite, one process by design, clears them at start): a test's hub
# there holds them this long, not 30 s, so the crash tests' restarted hubs resume their duties
# (the axis poll, the outbox sweep, the catalogue sync) within their waits.
TEST_LEASE_S = 5.0
_postgres_url: list[str] = []


def store_on_postgresql() -> bool:
    return os.environ.get(STORE_VAR, "sqlite") == "postgresql"


def use_postgres_database(url: str | None) -> None:
    """The database the hub of the current test uses (None: the test is over)."""
    _postgres_url[:] = [url] if url else []


def store_settings(tmp_path: Path) -> dict[str, Any]:
    """The `store:` section of a test's hub: a file in its folder, or its PostgreSQL database."""
    if store_on_postgresql():
        if not _postgres_url:
            raise RuntimeError(f"{STORE_VAR}=postgresql, but no database made for this test")
        return {"backend": "postgresql", "url": _postgres_url[0]}
    return {"path": str(tmp_path / "hub.db")}


def hub_overrides(
    tmp_path: Path, broker_url: str, prefix: str, portal_url: str, **portal: Any
) -> dict[str, Any]:
    return {
        "broker": {"url": broker_url, "prefix": prefix},
        "store": {**store_settings(tmp_path), "outbox_sweep_interval_s": 0.5},
        **({"duties": {"lease_s": TEST_LEASE_S}} if store_on_postgresql() else {}),
        "http": {"port": 0, "shutdown_timeout_s": 5},
        "logging": {"level": "INFO"},
        "sources": {
            "onestop": {
                "username": ONESTOP_USER,
                "password_hash": _HASH,
                "api_token_sha256": hash_token(ONESTOP_TOKEN),  # the salted form
                "permissions": list(ALL_PERMISSIONS),
                "units": [UNIT],
            },
            "reader": {
                "api_token_sha256": sha256_hex(READER_TOKEN),  # the older form, still read
                "permissions": ["facade.TraCuuHoSo"],
            },
        },
        "connectors": {
            "national_portal": {
                "base_url": portal_url,
                "username": PORTAL_USER,
                "password": PORTAL_PASSWORD,
                "linger_ms": 20,
                "timeout_s": 2,
                "retry": {"attempts": 2, "initial_backoff_s": 0.05, "max_backoff_s": 0.1},
                "breaker": {"failure_threshold": 5, "recovery_s": 1},
                "delay_tiers_s": [0.3, 0.6, 1.0],
                # Off unless a test turns it on: it would call the catalogue at start.
                "catalogue": {"enabled": False},
                **portal,
            }
        },
    }


def hub_config(
    tmp_path: Path, broker_url: str, prefix: str, portal_url: str, **portal: Any
) -> HubConfig:
    return load_config(None, hub_overrides(tmp_path, broker_url, prefix, portal_url, **portal))


class CliResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


async def hub_cli(*args: str, timeout_s: float = 120.0) -> CliResult:
    """Run the `hub` command in a process of its own (unpacks as code, out, err)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hub.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    return CliResult(int(proc.returncode or 0), out.decode(), err.decode())
