"""The hub under test's configuration for one bench phase, and a baseline's child process.

`hub_settings` is the tree a phase's hub is given (broker URL and a queue prefix of its own,
SQLite store in a scratch folder, the DVCQG simulator's URL, logging at WARNING, the phase's
overrides); the process itself is the tests' `tests.support.HubProcess`, which writes it as
YAML with a free port of its own, starts `python -m hub.cli run -c <file>`, waits until
`/readyz` says ready, and on leaving stops it with SIGTERM (SIGKILL if it does not stop in
time). Credentials are throwaway values for this loopback benchmark.

Nothing here may leave a process running, whatever happens to the caller.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml

from hub.auth import hash_password
from hub.config import deep_merge
from tests.support import HubProcess

UNIT = "000.00.41.H41"
SOURCE_USER, SOURCE_PASSWORD = "bench-onestop", "bench-onestop-password"
PORTAL_USER, PORTAL_PASSWORD = "bench-hub", "bench-portal-password"


NO_LIMITS = {"per_address_per_s": 0, "per_source_per_s": 0}


def hub_settings(
    workdir: Path,
    broker_url: str,
    prefix: str,
    portal_url: str,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The configuration tree: production defaults except where a benchmark must differ (the
    HTTP address is the process's own, set by `HubProcess`), `overrides` laid over it."""
    settings: dict[str, Any] = {
        "instance": f"bench-{prefix}",
        "broker": {"url": broker_url, "prefix": prefix},
        "store": {"path": str(workdir / "hub.db")},
        # Rate limits off: a benchmark measures what the hub can take from one address.
        "http": {"shutdown_timeout_s": 10, "api_limits": NO_LIMITS},
        "facade": {"limits": NO_LIMITS},
        "logging": {"level": "WARNING"},
        "sources": {
            "onestop": {
                "username": SOURCE_USER,
                "password_hash": hash_password(SOURCE_PASSWORD),
                "permissions": ["facade.DongBoHoSoMC", "facade.CapNhatTienDoHoSoMC"],
                "units": [UNIT],
            }
        },
        "connectors": {
            "national_portal": {
                "base_url": portal_url,
                "username": PORTAL_USER,
                "password": PORTAL_PASSWORD,
            }
        },
    }
    return deep_merge(settings, overrides or {})


def bench_hub(
    workdir: Path,
    broker_url: str,
    prefix: str,
    portal_url: str,
    overrides: dict[str, Any] | None = None,
) -> HubProcess:
    """A phase's hub: `async with bench_hub(...) as hub:` then post to `hub.facade_url`."""
    settings = hub_settings(workdir, broker_url, prefix, portal_url, overrides)
    return HubProcess(workdir, settings)


def parse_override(text: str) -> dict[str, Any]:
    """`a.b.c=value` (value read as YAML) → `{"a": {"b": {"c": value}}}`."""
    path, sep, raw = text.partition("=")
    if not sep or not path.strip():
        raise ValueError(f"expected KEY.PATH=VALUE, got {text!r}")
    tree: dict[str, Any] = {}
    node = tree
    *parents, leaf = path.strip().split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = yaml.safe_load(raw)
    return tree


@asynccontextmanager
async def child_process(
    module: str, spec: dict[str, Any], log_path: Path
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.subprocess.Process]]:
    """`python -m <module>` given `spec` as JSON on its stdin, for a baseline measured in a
    process of its own: its stdout to read, the process; waited for on the way out, killed
    if it is still running when the caller fails."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
    try:
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(json.dumps(spec).encode())
        child.stdin.write_eof()
        yield child.stdout, child
        await child.wait()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
