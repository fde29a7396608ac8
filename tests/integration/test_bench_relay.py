"""The bench's relay ceiling on a real node: it measures, and it leaves its quorum queues to
expire on the broker instead of deleting them just after a burst (`bench.relay`'s docstring:
that delete races RabbitMQ's segment writer and can close the connection with INTERNAL_ERROR).
"""

from __future__ import annotations

from bench.relay import EXPIRES_MS, run_relay
from sims.rabbitmq_node import RabbitNode


async def test_the_relay_measures_and_leaves_its_queues_to_expire(
    rabbit_node: RabbitNode, broker_prefix: str
) -> None:
    result = await run_relay(rabbit_node.url, broker_prefix, 300)
    assert result.rate > 0
    listed = rabbit_node.ctl("list_queues", "name", "arguments", "--no-table-headers")
    ours = [line for line in listed.splitlines() if line.startswith(f"{broker_prefix}.relay.")]
    assert len(ours) == 2, listed
    for line in ours:
        assert "x-expires" in line, line
        assert str(EXPIRES_MS) in line, line
        assert "quorum" in line, line
