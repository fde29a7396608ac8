"""Which taken messages went with their channel (pure logic; the broker-level case is
tests/e2e/test_broker_cluster.py, where the node under the hub is killed)."""

from __future__ import annotations

from typing import Any, cast

import aiormq
from aio_pika.abc import AbstractIncomingMessage

from hub.consumer import Envelope, _taken_on_lost_channel


class _Raw:
    def __init__(self, closed: bool | None) -> None:
        self.closed = closed

    @property
    def channel(self) -> Any:
        if self.closed is None:  # what aio-pika 10 does once the channel is gone
            raise aiormq.exceptions.ChannelInvalidStateError
        return type("Channel", (), {"is_closed": self.closed})()


def envelope(closed: bool | None) -> Envelope:
    return Envelope("m", {}, 1, {}, cast(AbstractIncomingMessage, _Raw(closed)))


def test_a_message_whose_channel_is_gone_or_closed_is_lost_and_an_open_one_is_not() -> None:
    assert _taken_on_lost_channel(envelope(None)) is True
    assert _taken_on_lost_channel(envelope(True)) is True
    assert _taken_on_lost_channel(envelope(False)) is False
