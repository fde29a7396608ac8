"""Whether a destination can be called right now, and the record of when it could not.

A `Gate` belongs to one destination (one `hub.resilience.Guard`). It is open while the
destination answers. A failed call that is an outage (`hub.errors.Unavailable`: 5xx, 429,
time-out, connection refused, refused credentials) closes it once `failure_threshold` calls in a
row failed, or at once when a queue consumer reports a batch that failed after its in-process
retries. While it is closed:

* calls are refused without trying (`CircuitOpen`), except one probe at a time, allowed when
  the probe is due: first `first_probe_s` after the outage began, then at a doubling interval
  capped at `max_probe_interval_s`;
* queue consumers hold what they took (unacknowledged, bounded by their prefetch) and wait in
  `admit`; nothing is retried through the delay queues and nothing is parked;
* the first successful call opens it again and every waiting lane goes on at once.

An operator may also pause a destination (a planned maintenance window): lanes wait as in an
outage, every call is refused (pollers' too), and no probe is made until it is resumed.

Each outage is kept in a short log (`outages`): when it began and ended, its first cause, the
last error, how many calls were refused and how many messages were held at most. This module
must never talk to the network or the broker; it only keeps time and state.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum

import structlog

from hub import metrics
from hub.errors import (
    BrokerUnavailable,
    CircuitOpen,
    CredentialsRefused,
    DestinationUnavailable,
    HubError,
    PermanentError,
    StoreUnavailable,
)

log = structlog.get_logger(__name__)

OUTAGE_LOG = 20  # outages remembered per destination
_PROBE_OF: ContextVar[Gate | None] = ContextVar("hub_probe_of", default=None)


class State(StrEnum):
    """A connector's state, one at a time, most serious first in `worst`."""

    up = "up"  # answering; nothing to report
    degraded = "degraded"  # delivering, but some calls or messages fail
    down = "down"  # the destination is unavailable: holding messages, probing
    credentials_refused = "credentials_refused"  # it refuses the hub's credentials
    paused = "paused"  # an operator paused it


class Cause(StrEnum):
    """What kind of outage, for words a person reads (the dashboard's `cause.<code>`); the
    error's own text stays beside it for the technical reader."""

    credentials_refused = "credentials_refused"  # it refuses the hub's credentials
    timeout = "timeout"  # no answer in time
    connect_error = "connect_error"  # cannot be reached (refused, reset, no route)
    http_429 = "http_429"  # it asks the hub to slow down
    http_5xx = "http_5xx"  # a server error
    http_4xx = "http_4xx"  # another HTTP refusal of the call (not of an item)
    busy = "busy"  # its own "try again later" (DVCQG's 99)
    bad_reply = "bad_reply"  # an answer the hub could not use
    broker = "broker"  # RabbitMQ did not confirm
    store = "store"  # the store failed
    other = "other"


class Claim(StrEnum):
    open = "open"
    probe = "probe"
    inside_probe = "inside_probe"
    refused = "refused"


class Admission(StrEnum):
    open = "open"  # call as usual
    probe = "probe"  # a probe is due: try once
    expired = "expired"  # waited past the caller's deadline


@dataclass
class Outage:
    started_at: float
    cause: str
    last_error: str
    ended_at: float | None = None
    cause_code: Cause = Cause.other
    last_code: Cause = Cause.other
    refused_calls: int = 0
    held_max: int = 0
    probes: int = 0

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at

    def as_json(self) -> dict[str, object]:
        return {
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 1),
            "cause": self.cause,
            "cause_code": str(self.cause_code),
            "last_error": self.last_error,
            "last_error_code": str(self.last_code),
            "probes": self.probes,
            "refused_calls": self.refused_calls,
            "held_max": self.held_max,
        }


@dataclass
class Pause:
    by: str
    at: float
    reason: str


@dataclass
class Gate:
    name: str
    failure_threshold: int = 5
    first_probe_s: float = 1.0
    max_probe_interval_s: float = 5.0
    clock: Callable[[], float] = time.time
    outages: deque[Outage] = field(default_factory=lambda: deque(maxlen=OUTAGE_LOG))
    pause: Pause | None = None
    since: float = 0.0  # when the current state began
    _outage: Outage | None = None
    _auth_refused: bool = False
    _failures_in_row: int = 0
    _probe_at: float = 0.0  # monotonic
    _interval_s: float = 0.0
    _probing: bool = False
    _changed: asyncio.Event | None = None
    # A call answered since this process began: until then "up" is only the start-up state,
    # not news that the destination is there (a restored alert waits for it, `hub.alerts`).
    answered: bool = False

    def __post_init__(self) -> None:
        self.since = self.clock()
        metrics.CIRCUIT_OPEN.labels(self.name).set(0)

    # -- what others read -----------------------------------------------------------------------

    @property
    def outage(self) -> Outage | None:
        return self._outage

    def is_open(self) -> bool:
        return self._outage is None and self.pause is None

    def state(self) -> State:
        """up, down, credentials_refused or paused; `degraded` is decided by whoever also
        knows the error rate (`hub.health`)."""
        if self.pause is not None:
            return State.paused
        if self._outage is not None:
            return State.credentials_refused if self._auth_refused else State.down
        return State.up

    def breaker_state(self) -> str:
        """The classic names: closed, opened, half-opened (a probe is on its way)."""
        if self._outage is None:
            return "closed"
        return "half-opened" if self._probing else "opened"

    def reason(self) -> str:
        if self.pause is not None:
            return f"paused by {self.pause.by}" + (
                f": {self.pause.reason}" if self.pause.reason else ""
            )
        if self._outage is not None:
            return self._outage.last_error
        return ""

    def reason_code(self) -> str:
        """`reason()` as a code for words: paused, an outage's `Cause`, or empty."""
        if self.pause is not None:
            return "paused"
        if self._outage is not None:
            return str(self._outage.last_code)
        return ""

    # -- consumers ------------------------------------------------------------------------------

    async def admit(self, deadline: float | None = None) -> Admission:
        """Wait until the gate is open (`open`), a probe is due and nobody else is probing
        (`probe`), or the monotonic `deadline` passed (`expired`)."""
        while True:
            if self.is_open():
                return Admission.open
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return Admission.expired
            if self.pause is None and not self._probing and now >= self._probe_at:
                return Admission.probe
            wake = [deadline - now] if deadline is not None else []
            if self.pause is None and not self._probing:
                wake.append(self._probe_at - now)
            await self._wait(min(wake) if wake else None)

    def note_held(self, count: int) -> None:
        if self._outage is not None:
            self._outage.held_max = max(self._outage.held_max, count)

    # -- calls ----------------------------------------------------------------------------------

    def claim(self) -> Claim:
        """Before a call: go ahead (`open`), go ahead as the probe (`probe`: report how it
        ended with `succeeded` or `probe_failed`), go ahead inside a consumer's probe
        (`inside_probe`), or do not call (`refused`)."""
        if self.pause is not None:
            return Claim.refused  # nothing goes out, pollers' calls included
        if self._outage is None:
            return Claim.open
        if _PROBE_OF.get() is self:
            return Claim.inside_probe
        if self.take_probe():
            return Claim.probe
        self._outage.refused_calls += 1
        return Claim.refused

    def take_probe(self) -> bool:
        """The probe, if it is due and nobody holds it (a consumer calls this when `admit`
        said `probe`, then handles its batch inside `probing()`)."""
        if self._outage is None or self._probing or self.pause is not None:
            return False
        if time.monotonic() < self._probe_at:
            return False
        self._probing = True
        self._outage.probes += 1
        metrics.CIRCUIT_OPEN.labels(self.name).set(0)
        return True

    @contextlib.contextmanager
    def probing(self) -> Iterator[None]:
        """Calls made inside (by this task and the tasks it starts) are the held probe."""
        token = _PROBE_OF.set(self)
        try:
            yield
        finally:
            _PROBE_OF.reset(token)

    def refusal(self) -> CircuitOpen:
        if self.pause is not None:
            return CircuitOpen(f"{self.name} is {self.reason()}", connector=self.name)
        outage = self._outage
        why = f" since {_hhmmss(outage.started_at)}: {outage.last_error}" if outage else ""
        return CircuitOpen(f"{self.name} is down{why}", connector=self.name)

    def release(self) -> None:
        """A probe ended without telling whether the destination is up (it was cancelled, or
        the hub failed around it): the next probe may go at once."""
        if self._probing:
            self._probing = False
            self._probe_at = time.monotonic()
            self._wake()

    def probe_failed(self) -> None:
        """The probe met the outage again: wait longer before the next."""
        self._probing = False
        self._reschedule()

    def succeeded(self) -> None:
        self.answered = True
        self._failures_in_row = 0
        self._probing = False
        if self._outage is None:
            return
        outage, self._outage = self._outage, None
        outage.ended_at = self.clock()
        self._auth_refused = False
        self.since = outage.ended_at
        metrics.CIRCUIT_OPEN.labels(self.name).set(0)
        log.warning(
            "connector_recovered",
            connector=self.name,
            down_s=round(outage.duration_s or 0.0, 1),
            cause=outage.cause,
            probes=outage.probes,
            held_max=outage.held_max,
        )
        self._wake()

    def failed(self, error: HubError, *, at_once: bool = False) -> None:
        """A call or a batch failed with an outage error. `at_once` closes the gate without
        waiting for `failure_threshold` failures in a row (a consumer's batch, whose calls were
        already retried in process). Probes are rescheduled by `probe_failed`, not here."""
        if isinstance(error, CircuitOpen):
            return  # refused here, not by the destination: nothing new to learn
        self._failures_in_row += 1
        text = describe(error)
        if self._outage is not None:
            self._outage.last_error = text
            self._outage.last_code = cause_of(error)
            self._auth_refused = isinstance(error, CredentialsRefused)
            return
        if not at_once and self._failures_in_row < self.failure_threshold:
            return
        self._open_outage(error, text)

    def _open_outage(self, error: HubError, text: str) -> None:
        now = self.clock()
        code = cause_of(error)
        self._outage = Outage(
            started_at=now, cause=text, last_error=text, cause_code=code, last_code=code
        )
        self.outages.appendleft(self._outage)
        self._auth_refused = isinstance(error, CredentialsRefused)
        self.since = now
        self._interval_s = self.first_probe_s
        self._probe_at = time.monotonic() + self._interval_s
        metrics.CIRCUIT_OPEN.labels(self.name).set(1)
        log.warning(
            "connector_down",
            connector=self.name,
            cause=text,
            state=str(self.state()),
            next_probe_s=self._interval_s,
        )
        self._wake()

    def _reschedule(self) -> None:
        self._interval_s = min(
            max(self._interval_s * 2, self.first_probe_s), self.max_probe_interval_s
        )
        self._probe_at = time.monotonic() + self._interval_s
        metrics.CIRCUIT_OPEN.labels(self.name).set(1)
        self._wake()

    # -- operators ------------------------------------------------------------------------------

    def set_pause(self, pause: Pause | None) -> None:
        if (pause is None) == (self.pause is None):
            self.pause = pause
            return
        self.pause = pause
        self.since = self.clock()
        log.warning(
            "connector_paused" if pause else "connector_resumed",
            connector=self.name,
            by=pause.by if pause else None,
        )
        if pause is None and self._outage is not None:
            self.since = self._outage.started_at  # down since the outage began, as before
            self._probe_at = time.monotonic()  # probe at once after a resume
        self._wake()

    # -- waiting --------------------------------------------------------------------------------

    async def _wait(self, timeout_s: float | None) -> None:
        if self._changed is None:
            self._changed = asyncio.Event()
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout_s)

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None  # waiters hold the set event; the next wait gets a new one


def describe(error: HubError) -> str:
    """One line for a log, a page and an outage record: what failed and how."""
    return error.message[:300]


def cause_of(error: HubError) -> Cause:
    """The kind of outage `error` tells of."""
    if isinstance(error, CredentialsRefused):
        return Cause.credentials_refused
    if isinstance(error, BrokerUnavailable):
        return Cause.broker
    if isinstance(error, StoreUnavailable):
        return Cause.store
    if isinstance(error, DestinationUnavailable):
        status = error.http_status
        if status == 429:
            return Cause.http_429
        if status is not None:
            return Cause.http_5xx if status >= 500 else Cause.http_4xx
        known = {c.value for c in Cause}
        return Cause(error.cause) if error.cause in known else Cause.bad_reply
    return Cause.other


def outcome_of(error: BaseException | None) -> str:
    """The `outcome` label of `hub_outbound_calls_total` for a call that raised `error`."""
    if error is None:
        return "ok"
    if isinstance(error, CircuitOpen):
        return "circuit_open"
    if isinstance(error, CredentialsRefused):
        return "auth_refused"
    if isinstance(error, DestinationUnavailable):
        status = error.http_status
        if status is not None:
            return "http_5xx" if status >= 500 else "http_4xx"
        return error.cause if error.cause in ("timeout", "connect_error") else "bad_reply"
    if isinstance(error, PermanentError):
        return "item_refused"
    return "error"


def _hhmmss(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))
