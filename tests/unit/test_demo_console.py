"""The demo's terminal: the block at start, status lines, the block again when asked (SIGUSR1)
or when a minute (here, a short interval) has passed; the logs in the file they are sent to."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
from pathlib import Path

import structlog

from hub.logs import configure_logging
from sims.demo_console import DemoConsole, status_line
from tests.support import eventually

BLOCK = "The hub is running.\n  dashboard  http://127.0.0.1:1/dashboard/  (viewer xem / demo-xem)"


async def test_the_block_comes_back_on_sigusr1_and_status_lines_go_between() -> None:
    out = io.StringIO()
    calls = [0]

    async def status() -> str:
        calls[0] += 1
        return f"dossiers {calls[0]}"

    console = DemoConsole(BLOCK, status, out, block_every_s=3600, status_every_s=0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(console.run(stop))
    try:
        await eventually(lambda: calls[0] >= 3, 10, "three status lines")
        assert console.blocks_printed == 1
        os.kill(os.getpid(), signal.SIGUSR1)
        await eventually(lambda: console.blocks_printed == 2, 10, "the block after SIGUSR1")
    finally:
        stop.set()
        await running
    text = out.getvalue()
    assert text.startswith(BLOCK + "\n")
    assert text.count(BLOCK) == 2
    lines = [line for line in text.splitlines() if "dossiers" in line]
    assert len(lines) >= 3
    assert all(line[2] == ":" and line[8:10] == "  " for line in lines)  # HH:MM:SS, then it


async def test_the_block_is_printed_again_when_its_interval_has_passed() -> None:
    out = io.StringIO()

    async def status() -> str:
        return "ok"

    console = DemoConsole(BLOCK, status, out, block_every_s=0.2, status_every_s=0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(console.run(stop))
    try:
        await eventually(lambda: console.blocks_printed >= 3, 10, "the block every 0.2 s")
    finally:
        stop.set()
        await running
    assert out.getvalue().count(BLOCK) == console.blocks_printed


async def test_a_status_that_fails_is_said_and_the_console_goes_on() -> None:
    out = io.StringIO()
    calls = [0]

    async def status() -> str:
        calls[0] += 1
        raise ConnectionError("store away")

    console = DemoConsole(BLOCK, status, out, status_every_s=0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(console.run(stop))
    await eventually(lambda: calls[0] >= 2, 10, "two failed status reads")
    stop.set()
    await running
    assert "(status unavailable: ConnectionError)" in out.getvalue()


def test_the_status_line_names_what_is_not_up() -> None:
    overview = {
        "completeness": {"dossiers": 1204, "ratio": 0.981},
        "connectors": [
            {"name": "national_portal", "state": "down", "queue_depth": 351, "dead_letters": 2},
            {"name": "vdxp", "state": "up", "queue_depth": 0, "dead_letters": 1},
            {"name": "payment_platform", "state": "up", "queue_depth": None, "dead_letters": None},
        ],
    }
    line = status_line(overview, "var/demo/hub.log")
    assert line.startswith("dossiers 1,204 (98.1 % confirmed by DVCQG) · waiting 351 ")
    assert "dead letters 3 · 2/3 connectors up (national_portal down)" in line
    assert line.endswith("log: var/demo/hub.log")


def test_logs_go_to_the_stream_given_and_not_to_the_terminal(
    tmp_path: Path, capsys: object
) -> None:
    path = tmp_path / "hub.log"
    before = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with path.open("a", encoding="utf-8", buffering=1) as file:
            configure_logging("INFO", "json", stream=file)
            structlog.get_logger("demo").info("demo_event", phone="0912345678")
    finally:  # as it was, for the other tests
        structlog.configure(**before)
        root.handlers[:], root.level = handlers, level
    event = json.loads(path.read_text("utf-8").splitlines()[-1])
    assert event["event"] == "demo_event"
    assert event["phone"] != "0912345678"  # masked in the file too
    captured = capsys.readouterr()  # type: ignore[attr-defined]
    assert "demo_event" not in captured.out + captured.err
