"""The gate's logic: when a destination counts as down, who may call, when it probes, and
what its outage log and state say. Pure logic: no network, no broker."""

from __future__ import annotations

import asyncio

import pytest

from hub import metrics
from hub.config_blocks import BreakerConfig, RetryConfig
from hub.errors import (
    CircuitOpen,
    CredentialsRefused,
    DestinationRejected,
    DestinationUnavailable,
)
from hub.outage import Admission, Claim, Gate, Pause, State, outcome_of
from hub.resilience import Guard


def down(message: str = "HTTP 503 from DVCQG") -> DestinationUnavailable:
    return DestinationUnavailable(message, http_status=503)


def gauge(name: str) -> float:
    return float(metrics.CIRCUIT_OPEN.labels(name)._value.get())


def test_a_poller_destination_is_down_only_after_the_threshold_and_up_after_one_success() -> None:
    gate = Gate("t.threshold", failure_threshold=3, first_probe_s=60)
    for _ in range(2):
        assert gate.claim() is Claim.open
        gate.failed(down())
    assert gate.state() is State.up
    gate.failed(down())
    assert gate.state() is State.down
    assert gauge("t.threshold") == 1
    assert gate.claim() is Claim.refused  # the probe is not due yet
    assert gate.outage is not None
    assert gate.outage.refused_calls == 1
    assert "HTTP 503" in gate.reason()
    gate.succeeded()
    assert gate.state() is State.up
    assert gauge("t.threshold") == 0
    (outage,) = gate.outages
    assert outage.ended_at is not None
    assert outage.cause == "HTTP 503 from DVCQG"


def test_one_probe_at_a_time_and_the_interval_doubles_up_to_the_cap() -> None:
    gate = Gate("t.probe", first_probe_s=0.0001, max_probe_interval_s=0.0004)
    gate.failed(down(), at_once=True)
    assert gate.state() is State.down
    intervals = []
    for _ in range(5):
        while gate.claim() is not Claim.probe:
            pass  # due within a fraction of a millisecond
        assert gate.breaker_state() == "half-opened"
        assert gate.claim() is Claim.refused  # a second caller waits for the probe
        gate.failed(down())
        gate.probe_failed()
        intervals.append(gate._interval_s)
    assert intervals == [0.0002, 0.0004, 0.0004, 0.0004, 0.0004]
    assert gate.outage is not None
    assert gate.outage.probes == 5


def test_a_refusal_of_the_gate_itself_teaches_nothing() -> None:
    gate = Gate("t.refusal", failure_threshold=1)
    gate.failed(CircuitOpen("x"))
    assert gate.state() is State.up


def test_refused_credentials_are_their_own_state_and_clear_on_success() -> None:
    gate = Gate("t.auth")
    gate.failed(CredentialsRefused("DVCQG refused the hub's login"), at_once=True)
    assert gate.state() is State.credentials_refused
    gate.succeeded()
    assert gate.state() is State.up


async def test_lanes_wait_for_the_gate_and_go_on_when_it_opens() -> None:
    gate = Gate("t.admit", first_probe_s=60)
    gate.failed(down(), at_once=True)
    waiting = asyncio.create_task(gate.admit())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    gate.succeeded()
    assert await asyncio.wait_for(waiting, 1) is Admission.open


async def test_admission_says_probe_when_due_and_expired_past_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    gate = Gate("t.due", first_probe_s=0.05)
    gate.failed(down(), at_once=True)
    assert await asyncio.wait_for(gate.admit(), 1) is Admission.probe
    assert gate.take_probe()
    # Someone holds the probe: the next lane waits; past its deadline it is told so.
    assert await gate.admit(deadline=loop.time() + 0.05) is Admission.expired


async def test_a_paused_gate_never_probes_and_resumes_into_an_immediate_probe() -> None:
    loop = asyncio.get_running_loop()
    gate = Gate("t.pause", first_probe_s=0.01)
    gate.failed(down(), at_once=True)
    gate.set_pause(Pause("operator", 0.0, "maintenance"))
    assert gate.state() is State.paused
    assert "operator" in gate.reason()
    assert "maintenance" in gate.reason()
    assert await gate.admit(deadline=loop.time() + 0.1) is Admission.expired
    assert not gate.take_probe()
    assert gate.claim() is Claim.refused  # pollers' calls too
    assert "paused by operator" in gate.refusal().message
    gate.set_pause(None)
    assert gate.state() is State.down
    assert gate.outage is not None
    assert gate.since == gate.outage.started_at
    assert await asyncio.wait_for(gate.admit(), 1) is Admission.probe


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "ok"),
        (DestinationUnavailable("x", http_status=503), "http_5xx"),
        (DestinationUnavailable("x", http_status=429), "http_4xx"),
        (DestinationUnavailable("x", cause="timeout"), "timeout"),
        (DestinationUnavailable("x", cause="connect_error"), "connect_error"),
        (DestinationUnavailable("x"), "bad_reply"),
        (CredentialsRefused("x"), "auth_refused"),
        (CircuitOpen("x"), "circuit_open"),
        (DestinationRejected("x"), "item_refused"),
        (ValueError("bug"), "error"),
    ],
)
def test_call_outcomes_for_the_metrics(error: BaseException | None, outcome: str) -> None:
    assert outcome_of(error) == outcome


async def test_a_guard_counts_each_call_and_lets_only_the_probe_through() -> None:
    guard = Guard(
        "t.guard",
        RetryConfig(attempts=1),
        BreakerConfig(failure_threshold=2, first_probe_s=0.02, recovery_s=0.05),
        1000,
    )
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise down()

    for _ in range(2):
        with pytest.raises(DestinationUnavailable):
            await guard.call(failing)
    with pytest.raises(CircuitOpen, match=r"t\.guard is down since .*HTTP 503"):
        await guard.call(failing)
    assert calls == 2  # refused without a call

    async def fine() -> str:
        return "ok"

    await asyncio.sleep(0.03)
    assert await guard.call(fine) == "ok"  # the probe
    assert guard.gate.state() is State.up
    counted = metrics.OUTBOUND_CALLS.labels
    assert counted("t.guard", "http_5xx")._value.get() == 2
    assert counted("t.guard", "circuit_open")._value.get() == 1
    assert counted("t.guard", "ok")._value.get() == 1


async def test_calls_are_retried_in_process_while_up_but_a_probe_is_one_call() -> None:
    guard = Guard(
        "t.one_call",
        RetryConfig(attempts=3, initial_backoff_s=0.001, max_backoff_s=0.001),
        BreakerConfig(failure_threshold=3, first_probe_s=0.01, recovery_s=0.01),
        1000,
    )
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise down()

    with pytest.raises(DestinationUnavailable):
        await guard.call(failing)
    assert calls == 3  # up: tenacity's quick retries, and the third failure makes it down
    assert guard.gate.state() is State.down
    await asyncio.sleep(0.02)
    with pytest.raises(DestinationUnavailable):
        await guard.call(failing)
    assert calls == 4  # down: the probe is one call


def test_a_paused_destination_that_is_up_refuses_calls_until_resumed() -> None:
    gate = Gate("t.pause_up")
    gate.set_pause(Pause("operator", 0.0, ""))
    assert gate.claim() is Claim.refused
    gate.set_pause(None)
    assert gate.claim() is Claim.open
