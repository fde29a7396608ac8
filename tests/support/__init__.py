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
]

UNIT = "000.00.41.H41"
ONESTOP_USER, ONESTOP_PASSWORD, ONESTOP_TOKEN = "onestop", "onestop-password", "onestop-token"
READER_TOKEN = "reader-token"  # may only look dossiers up
PORTAL_USER, PORTAL_PASSWORD = "hub", "secret"
_HASH = hash_password(ONESTOP_PASSWORD)


def hub_overrides(
    tmp_path: Path, broker_url: str, prefix: str, portal_url: str, **portal: Any
) -> dict[str, Any]:
    return {
        "broker": {"url": broker_url, "prefix": prefix},
        "store": {"path": str(tmp_path / "hub.db"), "outbox_sweep_interval_s": 0.5},
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
