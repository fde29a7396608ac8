"""The hub under test as a real `hub run` process, for the end-to-end tests and the bench.

`ServedProcess` is a child process serving HTTP on loopback on a free port of its own: started
(its output appended to a log file in its folder), waited for until `ready_path` answers 200,
killed with SIGKILL, stopped with SIGTERM (SIGKILL if it does not stop in time), started again.
`HubProcess` is `python -m hub.cli run -c <folder>/hub.yaml`, the YAML written from `settings`
(the whole configuration tree; its `http` host and port are the process's own) at each start.

    async with HubProcess(workdir, settings) as hub:   # started, ready; stopped on leaving
        ...
    hub = HubProcess(tmp_path)                          # or step by step (the crash tests)
    hub.settings = overrides
    await hub.start_ready(); hub.kill(); await hub.start_ready(); code = await hub.shut_down()

Whoever starts one must never leave it running, whatever happens (`async with`, or a fixture
that kills it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import yaml

from hub.config import deep_merge
from sims.rabbitmq_node import find_free_port
from tests.support.waiting import eventually

HOST = "127.0.0.1"
FACADE_PATH = "/dvcqg"
READY_TIMEOUT_S = 60.0  # a hub starting on a busy two-core machine
STOP_TIMEOUT_S = 30.0
KILL_TIMEOUT_S = 10.0


class ProcessFailed(RuntimeError):
    """The process did not start, was not ready in time, or died."""


class ServedProcess:
    """A child process serving HTTP on `base_url`. Subclasses give `command()` and may
    `prepare()` files first (called at each start)."""

    name = "the process"
    ready_path = "/readyz"
    ready_timeout_s = READY_TIMEOUT_S
    failure: type[Exception] = ProcessFailed

    def __init__(
        self, workdir: Path, log_name: str, client_ssl: ssl.SSLContext | None = None
    ) -> None:
        self.workdir = workdir
        self.port = find_free_port()
        # With `client_ssl` (trusting its certificate), it serves HTTPS and is asked so.
        self.client_ssl = client_ssl
        scheme = "https" if client_ssl is not None else "http"
        self.base_url = f"{scheme}://{HOST}:{self.port}"
        self.log_path = workdir / log_name
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None  # of the last run, once it ended

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write what the command needs (nothing by default)."""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not running"
        return self.proc.pid

    def start(self) -> None:
        """Start it (again); `wait_ready` then waits until it serves."""
        assert not self.running, f"{self.name} is already running"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.exit_code = None

    async def wait_ready(self) -> None:
        """Until `ready_path` answers 200; fails at once if the process exits."""
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                self.check_alive()
                url = self.base_url + self.ready_path
                return await _answers_200(http, url, self.client_ssl or True)

            try:
                await eventually(
                    ready, self.ready_timeout_s, f"{self.name} ready on {self.base_url}"
                )
            except AssertionError as exc:
                raise self.failure(f"{exc}\n{self.log_tail()}") from None

    async def start_ready(self) -> None:
        """`start`, then `wait_ready`; stopped again if it never got ready."""
        self.start()
        try:
            await self.wait_ready()
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self.stop))
            raise

    def kill(self) -> int:
        """SIGKILL, and wait until it is gone (blocking: nothing else runs meanwhile)."""
        assert self.proc is not None, f"{self.name} was never started"
        self.proc.send_signal(signal.SIGKILL)
        self.exit_code = self.proc.wait(KILL_TIMEOUT_S)
        return self.exit_code

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it has not stopped within STOP_TIMEOUT_S; its exit code.
        Blocking: in a test whose simulators share the event loop, use `shut_down`."""
        proc = self.proc
        assert proc is not None, f"{self.name} was never started"
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(KILL_TIMEOUT_S)
        self.exit_code = proc.returncode
        return self.exit_code

    async def shut_down(self) -> int:
        """`stop` in a thread: the loop (the simulators it talks to) keeps answering."""
        return await asyncio.shield(asyncio.to_thread(self.stop))

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise self.failure(f"{self.name} exited with {self.proc.returncode}\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        """The end of its log (all of it with `chars=0`)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    async def __aenter__(self) -> Self:
        await self.start_ready()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None:
            await self.shut_down()


class HubProcess(ServedProcess):
    """`hub run` with `settings`, which may also be set after construction, before `start`."""

    name = "the hub"

    def __init__(
        self,
        workdir: Path,
        settings: dict[str, Any] | None = None,
        client_ssl: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(workdir, "hub.log", client_ssl)
        self.config_path = workdir / "hub.yaml"
        self.facade_url = self.base_url + FACADE_PATH
        self.settings = settings or {}

    @property
    def settings(self) -> dict[str, Any]:
        """The configuration tree the hub is given, its own address included."""
        return self._settings

    @settings.setter
    def settings(self, tree: dict[str, Any]) -> None:
        self._settings = deep_merge(tree, {"http": {"host": HOST, "port": self.port}})

    def prepare(self) -> None:
        text = yaml.safe_dump(self.settings, allow_unicode=True)
        self.config_path.write_text(text, encoding="utf-8")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "hub.cli", "run", "-c", str(self.config_path)]


async def _answers_200(
    http: aiohttp.ClientSession, url: str, tls: ssl.SSLContext | bool = True
) -> bool:
    try:
        timeout = aiohttp.ClientTimeout(total=2)
        async with http.get(url, timeout=timeout, ssl=tls) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False
