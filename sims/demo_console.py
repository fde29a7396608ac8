"""The demo's terminal: the block of URLs and demo users, and a short status line; no logs.

The hub's and the simulators' logs go to a file (`hub demo` writes `var/demo/hub.log`), since
about 35 log lines a second scrolled the block away within a second. The terminal shows the
block at start, again every `block_every_s` (a minute), on Enter and on SIGUSR1, and between
them one status line every `status_every_s`: rewritten in place on a terminal, one line each
time when the output is a file or a pipe. This module must never print a log event.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TextIO

from hub.validation import VN_TZ

Status = Callable[[], Awaitable[str]]


class DemoConsole:
    def __init__(
        self,
        block: str,
        status: Status,
        out: TextIO | None = None,
        *,
        block_every_s: float = 60.0,
        status_every_s: float = 5.0,
    ) -> None:
        self.block = block
        self.status = status
        self.out = sys.stdout if out is None else out
        self.block_every_s = block_every_s
        self.status_every_s = status_every_s
        self.blocks_printed = 0
        self._asked = asyncio.Event()
        self._in_place = self.out.isatty()
        self._line_open = False  # a status line is on screen without its newline

    def ask(self) -> None:
        """Print the block at the next moment (Enter, SIGUSR1)."""
        self._asked.set()

    def print_block(self) -> None:
        self._end_line()
        self.out.write(self.block.rstrip("\n") + "\n")
        self.out.flush()
        self.blocks_printed += 1

    def print_status(self, line: str) -> None:
        if self._in_place:
            self.out.write("\r\x1b[K" + line)
            self._line_open = True
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def _end_line(self) -> None:
        if self._line_open:
            self.out.write("\n")
            self._line_open = False

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: the block now, then status lines, and the block when due or asked."""
        loop = asyncio.get_running_loop()
        with _listening(loop, self.ask):
            self.print_block()
            last_block = loop.time()
            while not stop.is_set():
                try:
                    line = await self.status()
                except Exception as exc:  # a status that cannot be read is said, not fatal
                    line = f"(status unavailable: {type(exc).__name__})"
                self.print_status(f"{datetime.now(VN_TZ):%H:%M:%S}  {line}")
                waits = [asyncio.ensure_future(e.wait()) for e in (stop, self._asked)]
                timeout = min(self.status_every_s, last_block + self.block_every_s - loop.time())
                await asyncio.wait(waits, timeout=max(0.0, timeout), return_when="FIRST_COMPLETED")
                for waiting in waits:
                    waiting.cancel()
                if self._asked.is_set() or loop.time() - last_block >= self.block_every_s:
                    self._asked.clear()
                    if not stop.is_set():
                        self.print_block()
                        last_block = loop.time()
            self._end_line()


@contextlib.contextmanager
def _listening(loop: asyncio.AbstractEventLoop, ask: Callable[[], None]) -> Any:
    """SIGUSR1, and Enter when standard input is a terminal, ask for the block."""
    loop.add_signal_handler(signal.SIGUSR1, ask)
    reading = sys.stdin is not None and sys.stdin.isatty()
    if reading:

        def on_line() -> None:
            sys.stdin.readline()
            ask()

        loop.add_reader(sys.stdin.fileno(), on_line)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
        if reading:
            loop.remove_reader(sys.stdin.fileno())


def status_line(overview: dict[str, Any], log_path: str) -> str:
    """One line from the dashboard's overview: dossiers and their confirmation, what waits,
    the dead letters, and the connectors that are not up."""
    completeness = overview["completeness"]
    cards = overview["connectors"]
    waiting = sum(c["queue_depth"] or 0 for c in cards)
    parked = sum(c["dead_letters"] or 0 for c in cards)
    not_up = [f"{c['name']} {c['state']}" for c in cards if c["state"] != "up"]
    ratio = completeness["ratio"]
    confirmed = "-" if ratio is None else f"{ratio * 100:.1f} %"
    states = f"{len(cards) - len(not_up)}/{len(cards)} connectors up"
    if not_up:
        states += " (" + ", ".join(not_up) + ")"
    return (
        f"dossiers {completeness['dossiers']:,} ({confirmed} confirmed by DVCQG) · waiting "
        f"{waiting:,} · dead letters {parked:,} · {states} · Enter: URLs · log: {log_path}"
    )
