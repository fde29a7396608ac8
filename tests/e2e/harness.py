"""What the end-to-end tests share: the hub as a real `hub run` process (started, killed with
SIGKILL, stopped), a free port, waiting on a condition while saying what was awaited, and the
hub's HTTP API as the tests read it. Test modules import these from here, never from each other.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from tests.support import ONESTOP_TOKEN

AUTH = {"Authorization": f"Bearer {ONESTOP_TOKEN}"}


class HubProcess:
    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "run", "-c", str(self.config_path)],
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(30)
        return self.proc.returncode


async def wait_for(check: Callable[[], bool], timeout_s: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s: {what()}")
        await asyncio.sleep(0.02)


class HubApi:
    """The hub's procedure API, as the one-stop system reads it (`procedures.read`)."""

    def __init__(self, http: aiohttp.ClientSession, port: int, log_path: Path) -> None:
        self.http = http
        self.base = f"http://127.0.0.1:{port}/api/v1"
        self.log_path = log_path

    def log_tail(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    async def get(self, path: str, timeout_s: float = 15) -> Any:
        """GET a JSON answer, waiting for the hub to listen (it may be starting)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                async with self.http.get(self.base + path, headers=AUTH) as response:
                    assert response.status == 200, (response.status, await response.text())
                    return await response.json()
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"the hub did not answer GET {path} within {timeout_s} s\n{self.log_tail()}"
                    ) from None
                await asyncio.sleep(0.1)

    async def runs(self) -> list[dict[str, Any]]:
        body = await self.get("/procedure-sync-runs")
        items: list[dict[str, Any]] = body["items"]
        return items

    async def wait_run_done(self, timeout_s: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            runs = await self.runs()
            if runs and all(r["state"] not in ("listing", "fetching") for r in runs):
                return runs
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the sync did not finish within {timeout_s} s: {runs}\n{self.log_tail()}"
                )
            await asyncio.sleep(0.2)

    async def all_procedures(self) -> list[dict[str, Any]]:
        """Every procedure the hub holds, paged through with the exact cursor."""
        items: list[dict[str, Any]] = []
        cursor = 0
        while True:
            page = await self.get(f"/procedures?cursor={cursor}&limit=400")
            if not page["items"]:
                return items
            items += page["items"]
            assert page["next_cursor"] > cursor, page["next_cursor"]
            cursor = page["next_cursor"]


async def wait_ready(hub: HubProcess, http: aiohttp.ClientSession, port: int) -> None:
    """Wait until the (re)started hub answers /readyz with 200."""
    deadline = time.monotonic() + 30
    while True:
        assert hub.proc is not None
        if hub.proc.poll() is not None:
            raise AssertionError(f"the hub exited with {hub.proc.returncode}\n{tail(hub)}")
        try:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the hub was not ready within 30 s\n{tail(hub)}")
        await asyncio.sleep(0.05)


def tail(hub: HubProcess, chars: int = 4000) -> str:
    """The end of the hub's log (all of it with `chars=0`)."""
    return hub.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
