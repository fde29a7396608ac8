"""Token buckets by key (`hub.ratelimit.Buckets`), on a clock the test moves."""

from __future__ import annotations

import pytest

from hub.ratelimit import Buckets


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate_and_the_wait_until_the_next_token() -> None:
    clock = Clock()
    buckets = Buckets(rate_per_s=2, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("a") == 0
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0  # every key has its own bucket


def test_a_refused_take_spends_nothing_and_a_bucket_never_fills_past_its_burst() -> None:
    clock = Clock()
    buckets = Buckets(rate_per_s=1, burst=2, clock=clock)
    buckets.take("a")
    buckets.take("a")
    for _ in range(5):
        assert buckets.take("a") == pytest.approx(1.0)
    clock.now += 1000
    assert [buckets.take("a") for _ in range(3)] == [0, 0, pytest.approx(1.0)]


def test_at_most_max_keys_are_kept_least_recently_used_dropped_first() -> None:
    clock = Clock()
    buckets = Buckets(rate_per_s=0.001, burst=1, max_keys=2, clock=clock)
    buckets.take("a")
    buckets.take("b")
    buckets.take("c")  # "a" is dropped: it starts again full
    assert buckets.take("a") == 0
    assert buckets.take("c") > 0
