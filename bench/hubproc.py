"""The hub under test, as a real `hub run` process with a configuration written for one phase.

`HubProcess` writes a YAML file (broker URL and a queue prefix of its own, SQLite store in a
scratch folder, the DVCQG simulator's URL, a free port, logging at WARNING), starts
`python -m hub.cli run -c <file>`, waits until `/readyz` says ready, and on leaving stops it
with SIGTERM (SIGKILL if it does not stop in time). Credentials are throwaway values for this
loopback benchmark.

This module must never leave a hub process running, whatever happens to the caller.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import yaml

from hub.auth import hash_password
from hub.config import deep_merge
from sims.rabbitmq_node import find_free_port

UNIT = "000.00.41.H41"
SOURCE_USER, SOURCE_PASSWORD = "bench-onestop", "bench-onestop-password"
PORTAL_USER, PORTAL_PASSWORD = "bench-hub", "bench-portal-password"
FACADE_PATH = "/dvcqg"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


class HubFailed(RuntimeError):
    """The hub process did not start, or died."""


def hub_settings(
    workdir: Path, broker_url: str, prefix: str, portal_url: str, port: int
) -> dict[str, Any]:
    """The configuration tree: production defaults except where a benchmark must differ."""
    return {
        "instance": f"bench-{prefix}",
        "broker": {"url": broker_url, "prefix": prefix},
        "store": {"path": str(workdir / "hub.db")},
        "http": {"host": "127.0.0.1", "port": port, "shutdown_timeout_s": 10},
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


class ServedProcess:
    """A child process serving HTTP on loopback, on a free port: started, waited for until
    `ready_path` answers 200, and stopped with SIGTERM (SIGKILL if it does not stop)
    whatever happens. Subclasses give `command()` and may `prepare()` files first."""

    name = "the process"
    ready_path = "/readyz"
    ready_timeout_s = READY_TIMEOUT_S
    failure: type[Exception] = RuntimeError

    def __init__(self, workdir: Path, log_name: str) -> None:
        self.workdir = workdir
        self.port = find_free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / log_name
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write what the command needs (nothing by default)."""

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not running"
        return self.proc.pid

    async def __aenter__(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        self.proc = self._spawn()
        try:
            await self._wait_ready()
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self._stop))
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(asyncio.to_thread(self._stop))

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise self.failure(f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}")

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                self.check_alive()
                if await _ready(http, self.base_url + self.ready_path):
                    return
                await asyncio.sleep(0.2)
        raise self.failure(
            f"{self.name} was not ready within {self.ready_timeout_s:.0f}s: {self.log_tail()}"
        )

    def _stop(self) -> None:
        proc = self.proc
        if proc is None or self.exit_code is not None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.exit_code = proc.returncode


class HubProcess(ServedProcess):
    """`async with HubProcess(...) as hub:` then post to `hub.facade_url`."""

    name = "the hub"
    failure = HubFailed

    def __init__(
        self,
        workdir: Path,
        broker_url: str,
        prefix: str,
        portal_url: str,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(workdir, "hub.log")
        settings = hub_settings(workdir, broker_url, prefix, portal_url, self.port)
        self.settings = deep_merge(settings, overrides or {})
        self.facade_url = self.base_url + FACADE_PATH
        self.config_path = workdir / "hub.yaml"

    def prepare(self) -> None:
        text = yaml.safe_dump(self.settings, allow_unicode=True)
        self.config_path.write_text(text, encoding="utf-8")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "hub.cli", "run", "-c", str(self.config_path)]


async def _ready(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


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
