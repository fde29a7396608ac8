"""Slow and idle clients are cut off (`hub.slowclients`), over raw sockets against a running
hub: a request head trickled line by line, a connection that never speaks, a body trickled
byte by byte, an idle kept-alive connection. A large body sent at a decent pace is not."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.config import load_config
from hub.runtime import Hub
from sims.national_portal.simulator import DvcqgSimulator
from tests.support import ONESTOP_TOKEN, PORTAL_PASSWORD, PORTAL_USER, hub_overrides

HEAD_S, BODY_S, KEEPALIVE_S = 1.0, 1.0, 2.0
MIN_RATE = 1000  # bytes a second: one more second of allowance for each 1000 bytes received
CUT_WITHIN_S = 8.0  # the time-outs above, with room for a busy machine; far below the defaults


@pytest.fixture
async def hub(tmp_path: Path, rabbit_url: str, broker_prefix: str) -> AsyncIterator[Hub]:
    async with DvcqgSimulator(username=PORTAL_USER, password=PORTAL_PASSWORD) as sim:
        overrides = hub_overrides(tmp_path, rabbit_url, broker_prefix, sim.url)
        overrides["http"] |= {
            "header_timeout_s": HEAD_S,
            "body_timeout_s": BODY_S,
            "body_min_bytes_per_s": MIN_RATE,
            "keepalive_timeout_s": KEEPALIVE_S,
        }
        async with Hub(load_config(None, overrides)) as running:
            yield running


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.received = b""

    @classmethod
    async def open(cls, hub: Hub) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", hub.port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def trickle(self, pieces: list[bytes], every_s: float) -> None:
        """Send one piece every `every_s` until done or the hub closes the connection."""
        with contextlib.suppress(ConnectionError):
            for piece in pieces:
                await self.send(piece)
                await asyncio.sleep(every_s)

    async def closed_by_hub(self) -> float:
        """Wait until the hub closes the connection (EOF); the seconds it took."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            while chunk := await asyncio.wait_for(self.reader.read(65536), CUT_WITHIN_S):
                self.received += chunk
        except ConnectionError:
            pass
        except TimeoutError:
            raise AssertionError(
                f"the hub kept the connection open past {CUT_WITHIN_S} s"
            ) from None
        return loop.time() - started

    def close(self) -> None:
        self.writer.close()


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0


async def test_a_request_head_trickled_line_by_line_is_cut_with_408(hub: Hub) -> None:
    conn = await Connection.open(hub)
    lines = [b"POST /api/v1/dossier-events HTTP/1.1\r\n"] + [
        b"X-Slow-%d: 1\r\n" % n for n in range(100)
    ]
    sender = asyncio.create_task(conn.trickle(lines, every_s=0.2))
    took = await conn.closed_by_hub()
    sender.cancel()
    conn.close()
    assert status_of(conn.received) == 408, conn.received[:200]
    assert took < CUT_WITHIN_S - 1, took


async def test_a_connection_that_never_sends_a_request_is_closed_silently(hub: Hub) -> None:
    conn = await Connection.open(hub)
    took = await conn.closed_by_hub()
    conn.close()
    assert conn.received == b""
    assert took < CUT_WITHIN_S - 1, took


async def test_a_body_trickled_byte_by_byte_is_cut_with_408(hub: Hub) -> None:
    conn = await Connection.open(hub)
    head = (
        b"POST /api/v1/dossier-events HTTP/1.1\r\nHost: hub\r\n"
        b"Authorization: Bearer " + ONESTOP_TOKEN.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 400\r\n\r\n"
    )
    await conn.send(head)
    sender = asyncio.create_task(conn.trickle([b" "] * 400, every_s=0.2))
    took = await conn.closed_by_hub()
    sender.cancel()
    conn.close()
    assert status_of(conn.received) == 408, conn.received[:300]
    assert b"request_timeout" in conn.received
    assert took < CUT_WITHIN_S - 1, took


async def test_a_large_body_sent_at_a_decent_pace_is_not_cut(hub: Hub) -> None:
    """60 KB in 40 pieces, 0.05 s apart (about 30 KB/s, whatever the machine's pace): longer
    than body_timeout_s, well within its allowance of a second per 1000 bytes received."""
    body = b'{"events": [], "pad": "' + b"x" * 60_000 + b'"}'
    conn = await Connection.open(hub)
    await conn.send(
        b"POST /api/v1/dossier-events HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n"
        b"Authorization: Bearer " + ONESTOP_TOKEN.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    size = len(body) // 40 + 1
    await conn.trickle([body[i : i + size] for i in range(0, len(body), size)], every_s=0.05)
    await conn.closed_by_hub()
    conn.close()
    status = status_of(conn.received)
    assert status not in (0, 408), conn.received[:300]
    assert status < 500, conn.received[:300]


async def test_an_idle_kept_alive_connection_is_closed_after_keepalive_timeout(hub: Hub) -> None:
    conn = await Connection.open(hub)
    await conn.send(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
    head = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), CUT_WITHIN_S)
    assert status_of(head) == 200, head
    assert b"connection: close" not in head.lower()  # kept alive, then idle
    took = await conn.closed_by_hub()
    conn.close()
    # Past the head time-out (the idle wait is not a head's), cut by the keep-alive one.
    assert KEEPALIVE_S - 0.5 <= took < CUT_WITHIN_S, took


async def test_a_second_request_on_a_kept_alive_connection_gets_its_own_head_time(
    hub: Hub,
) -> None:
    """The head timer of a second request starts at its first byte, not at the connection."""
    conn = await Connection.open(hub)
    for _ in range(2):
        await conn.send(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
        head = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), CUT_WITHIN_S)
        assert status_of(head) == 200, head
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await conn.reader.readexactly(length)
    # A third request, trickled: cut by its own head time-out.
    sender = asyncio.create_task(
        conn.trickle([b"GET /healthz HTTP/1.1\r\n"] + [b"X-A: 1\r\n"] * 100, every_s=0.2)
    )
    await conn.closed_by_hub()
    sender.cancel()
    conn.close()
    assert status_of(conn.received) == 408, conn.received[:200]
