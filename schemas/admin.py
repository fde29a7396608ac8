"""Wire models of the operators' admin API (`/api/v1/admin/...`): what the dashboard shows, as
JSON. `hub.dashboard.api` replies through them and the OpenAPI document is built from them.

Times are ISO 8601 strings (UTC). Reasons, records, bodies and payloads are masked before they
leave the hub. Request models describe the bodies the handlers check (`hub.dashboard.checks`
words the errors). This module must never depend on the runtime.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.api import ActiveAlert, ConnectorState, OutageOut, Reply
from schemas.canonical import DossierRecord

Circuit = Literal["closed", "opened", "half-opened"]
Role = Literal["viewer", "operator", "admin"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- session ---------------------------------------------------------------------------------


class LoginRequest(_In):
    username: str = Field(max_length=64)
    password: str


class LoginReply(Reply):
    """Logged in: the session cookie is set; send `csrf_token` in X-CSRF-Token to act."""

    user: str
    role: Role
    csrf_token: str
    expires_at: float = Field(description="unix time")


# -- connectors ------------------------------------------------------------------------------


class Completeness(Reply):
    dossiers: int
    confirmed: int = Field(description="dossiers whose newest version DVCQG confirmed")
    unconfirmed: int
    ratio: float | None = Field(description="confirmed / dossiers; null with no dossier")
    min_ratio: float = Field(description="alerts.completeness_min_ratio")
    below_min: bool = Field(description="the ratio is under min_ratio")


class Lag(Reply):
    window_h: float = Field(description="changes confirmed in the last window_h hours")
    samples: int
    p50_s: float | None
    p95_s: float | None
    p95_max_s: float = Field(description="alerts.lag_p95_max_s")
    over_max: bool = Field(description="p95_s is over p95_max_s")


class Card(Reply):
    """One connector's card."""

    name: str
    kind: Literal["queue", "calls"] = Field(
        description="queue: it consumes a queue; calls: it only calls (a poller)"
    )
    circuit: Circuit
    state: ConnectorState
    since: str | None
    reason: str = Field(description="masked")
    reason_code: str = Field(
        "",
        description="the reason as a code the dashboard has words for: an outage's cause "
        "(timeout, connect_error, http_5xx …) or a state reason (paused, error_rate …); empty "
        "when it has none",
    )
    reason_args: dict[str, Any] = Field(
        default_factory=dict, description="values the reason's words name (by, note, share …)"
    )
    outage: OutageOut | None = Field(description="the current one")
    last_success_at: str | None
    throughput_per_min: float | None = Field(
        description="messages delivered (not skipped) per minute over the last rate_window_s"
    )
    error_rate: float | None = Field(
        description="share of the messages settled in the last rate_window_s that failed"
    )
    rate_window_s: int | None = Field(
        description="the rates' window: five minutes, or since the process started if less"
    )
    queue_depth: int | None = Field(
        description="messages in the work queue and its delay tiers as the broker counts them "
        "now (ready plus held unacknowledged by the consumer)"
    )
    oldest_waiting_s: float | None = Field(
        description="age of the oldest message the consumer holds; null when it holds none"
    )
    dead_letters: int | None = Field(
        description="messages in the parking queue as the broker counts them now"
    )
    stats_since: str | None = Field(description="when this process began the *_since_start")
    delivered_since_start: int | None
    retried_since_start: int | None
    parked_since_start: int | None
    skipped_since_start: int | None = Field(
        description="messages that were none of this connector's business (acked, not counted "
        "as throughput)"
    )


class HeldDuty(Reply):
    name: str = Field(description="the duty: outbox-sweep, alerts, <connector>-<what>")
    expires_at: str | None = Field(
        description="when its lease lapses unless renewed (the store's clock); null when "
        "the store could not be read"
    )
    remaining_s: float | None = Field(description="seconds until then, on the store's clock")


class Replica(Reply):
    name: str = Field(description="the replica as a lease holder (`/readyz`'s `replica`)")
    this: bool = Field(description="the replica that answered")
    duties: list[HeldDuty] = Field(description="the duties it holds a live lease of")


class UnheldDuty(Reply):
    name: str
    last_holder: str | None = Field(
        description="the replica whose lease of it lapsed, if the store still names one"
    )
    lapsed_at: str | None


class Replicas(Reply):
    """The hub's replicas as the store's leases know them, and which holds which duty."""

    this_replica: str
    store_read: bool = Field(
        description="false when the store did not answer: nobody's duties are known then, "
        "and only what this replica runs is listed"
    )
    replicas: list[Replica] = Field(
        description="this replica first, then every other holding a live lease; a replica "
        "holding nothing is not in the store, so only this one can appear without duties"
    )
    unheld: list[UnheldDuty] = Field(
        description="duties no replica holds: they run nowhere until one takes them"
    )


class Overview(Reply):
    """Sync completeness, sync lag, one card per connector, and the replicas' duties."""

    generated_at: str
    completeness: Completeness
    lag: Lag
    connectors: list[Card]
    alerts: list[ActiveAlert] = Field(default_factory=list, description="alerts now firing")
    replicas: Replicas | None = Field(
        None, description="who runs the once-only duties (null outside a running hub)"
    )


class SeriesPoint(Reply):
    at: str
    throughput_per_min: float | None
    errors_per_min: float | None
    error_rate: float | None
    queue_depth: int | None
    dead_letters: int | None


class LagPoint(Reply):
    at: str
    p50_s: float | None
    p95_s: float | None
    samples: int


class RecentFailure(Reply):
    at: str
    outcome: Literal["retry", "parked"]
    reason: str = Field(description="masked")
    message_id: str
    dossier_code: str | None


class ConnectorDetail(Reply):
    """One connector: its card, samples over time, recent failures, outages (newest first)."""

    card: Card
    hours: float
    interval_s: float = Field(description="the interval between two samples of `series`")
    series: list[SeriesPoint]
    recent_failures: list[RecentFailure]
    lag_series: list[LagPoint] = Field(description="DVCQG's sync lag; empty for the others")
    lag_step_s: float = Field(description="the span of time one point of `lag_series` covers")
    outages: list[OutageOut]


class PauseRequest(_In):
    """Optional: why (shown with the state and written to the audit log)."""

    reason: str | None = Field(None, max_length=200, description="one printable line")


class PauseResult(Reply):
    """The connector's state after the act."""

    connector: str
    state: ConnectorState
    changed: bool = Field(description="false: it already was so; nothing was written")


# -- dossiers --------------------------------------------------------------------------------


class DossierHit(Reply):
    code: str
    status: str = Field(description="the canonical status name, - when unknown")
    updated_at: str
    procedure_code: str | None
    owner_name: str | None = Field(description="masked")
    matched: Literal["code", "procedure", "owner"] = Field(
        description="what matched: part of the code, the procedure code, the owner's name"
    )


class DossierHits(Reply):
    """Dossiers whose code holds q (any case), whose procedure code starts with q, or whose
    owner's whole name is q (accents and case aside): one page, by code, and the total."""

    q: str
    total: int
    page: int
    pages: int
    size: int
    items: list[DossierHit]


_REASON_CODE = (
    "the reason as a code the dashboard has words for (never the words): for a journaled "
    "outcome (refused, failed, retry, parked, replayed) the refusal's code, the destination's "
    "own (DVCQG's 07 …) or the hub's (retry_budget, unknown_dossier …), null for lines "
    "journaled before the hub kept codes; while waiting, the destination's state reason as a "
    "code (as a card's)"
)


class StuckFilterOut(Reply):
    destination: str | None
    agency: str | None
    procedure: str | None
    status: str | None
    older_than_s: float | None


class StuckDossier(Reply):
    code: str
    destination: str = Field(description="the connector that has not confirmed it")
    destination_state: ConnectorState | None
    since: str = Field(description="since when it lacks the newest state (or is in trouble)")
    age_s: int | None
    status: str
    procedure_code: str | None
    version: int
    confirmed_version: int | None = Field(
        description="the newest version it confirmed (destinations keeping state; null: none)"
    )
    outcome: str = Field(
        description="refused, failed, retry, parked, replayed (journaled); waiting (the "
        "destination is not up); queued (on its way)"
    )
    reason: str = Field(description="masked")
    reason_code: str | None = Field(None, description=_REASON_CODE)
    reason_args: dict[str, Any] = Field(
        default_factory=dict, description="values the reason's words name (by, note, share …)"
    )
    reason_at: str | None


class StuckPage(Reply):
    """Dossiers whose newest state a destination has not confirmed, oldest first."""

    filter: StuckFilterOut
    destinations: list[str]
    total: int
    page: int
    pages: int
    size: int
    items: list[StuckDossier]


class Hop(Reply):
    at: str
    kind: str = Field(
        description="received, mapped, queued, late, confirmed, delivered, refused, retry, "
        "parked, replayed, discarded, payment"
    )
    actor: str = Field(description="the system or connector the hop is about")
    label: str
    detail: str
    payload: Any = Field(description="masked")
    count: int = Field(description="retries in a row shown as this one hop")
    first_at: str | None = Field(description="the first of those retries")
    reason_code: str | None = Field(
        None,
        description="a journal line's reason as a code: the destination's refusal code (DVCQG's "
        "07 …) or the hub's own (retry_budget, delivery_limit, unknown_dossier …); null for "
        "lines journaled without one (their detail says it)",
    )
    reason_args: dict[str, Any] = Field(
        default_factory=dict, description="values the reason's words name (by, tiers …)"
    )
    label_words: tuple[str, dict[str, Any]] | None = Field(
        None,
        description="the label as a words key (`hop.label.*`) and its values (a status, an "
        "event kind, an amount), for a page to say in its language; null: the kind says it",
    )
    detail_words: tuple[str, dict[str, Any]] | None = Field(
        None, description="the detail likewise (`hop.detail.*`); null: `detail` as it is"
    )


class DestinationWhy(Reply):
    name: str
    confirmed: bool = Field(description="it has the dossier's newest state")
    keeps_state: bool = Field(description="it is sent every dossier (DVCQG)")
    confirmed_version: int | None
    outcome: str | None = Field(description="its trouble, or waiting while it is not up")
    reason: str = Field(description="masked")
    reason_code: str | None = Field(None, description=_REASON_CODE)
    reason_args: dict[str, Any] = Field(
        default_factory=dict, description="values the reason's words name (by, note, share …)"
    )
    at: str | None
    state: ConnectorState | None


class LastError(Reply):
    destination: str
    outcome: str
    reason: str = Field(description="masked")
    reason_code: str | None = Field(None, description="the journaled reason as a code, if any")
    reason_args: dict[str, Any] = Field(default_factory=dict, description="its words' values")
    at: str
    since: str = Field(description="the first line of this trouble")
    destination_state: ConnectorState | None
    cause: str = Field(description="the destination's own reason while it is not up")
    cause_code: str = Field("", description="that reason as a code (as a card's reason_code)")
    cause_args: dict[str, Any] = Field(default_factory=dict, description="its words' values")


class Why(Reply):
    """Why a dossier is where it is: who has its newest state, the last error."""

    status: str | None
    version: int
    confirmed_by_all: bool
    destinations: list[DestinationWhy]
    last_error: LastError | None
    parked_at: list[str] = Field(description="connectors whose parking queue holds it")


class DossierDetail(Reply):
    """A dossier's state, why, and one page of its timeline (page 0 the newest, newest first)."""

    code: str
    status: str | None
    status_at: str | None
    version: int
    portal_version: int
    portal_confirmed: bool
    why: Why
    record: DossierRecord | None = Field(description="masked")
    timeline: list[Hop]
    timeline_total: int
    timeline_first: int = Field(description="index of the page's first hop, newest first")
    timeline_page: int
    timeline_pages: int


# -- dead letters ----------------------------------------------------------------------------


class ParkedRow(Reply):
    connector: str
    message_id: str
    reason: str = Field(description="masked")
    code: str | None = Field(description="the destination's refusal code, when it gave one")
    parked_at: str
    attempts: int = Field(description="the first try and each retry tier")
    dossier_code: str | None


class DeadLetterPage(Reply):
    """Parked messages, newest first."""

    items: list[ParkedRow]


class DeadLetter(ParkedRow):
    """One parked message, body and headers masked."""

    body: dict[str, Any]
    headers: dict[str, Any]


class ActRequest(_In):
    message_ids: list[str] = Field(min_length=1, max_length=1000)


class ActResult(Reply):
    """What was replayed or discarded, and the ids no longer parked."""

    done: list[str]
    missing: list[str]


class DeadLetterFilterIn(_In):
    connector: str | None = None
    reason: str | None = Field(None, max_length=200, description="in the reason or code")
    since: str | None = Field(None, description="parked at or after (ISO 8601; UTC if naive)")
    until: str | None = Field(None, description="parked at or before")
    dossier_prefix: str | None = Field(None, max_length=100)
    dossier: str | None = Field(None, max_length=100, description="one dossier's code")


class DeadLetterFilterOut(Reply):
    connector: str | None
    reason: str | None
    since: str | None
    until: str | None
    dossier_prefix: str | None
    dossier: str | None


class DeadLetterGroup(Reply):
    connector: str
    dossier_code: str | None
    reason: str = Field(description="masked")
    code: str | None
    count: int
    first_parked_at: str
    last_parked_at: str
    message_id: str = Field(description="the group's newest message")
    attempts: int


class DeadLetterSummary(Reply):
    """Every parked message matching the filter, counted and grouped by connector, dossier
    and reason (the biggest groups first)."""

    filter: DeadLetterFilterOut
    parked: int = Field(description="parked in the connectors walked")
    matched: int
    groups_total: int
    groups: list[DeadLetterGroup]


class BulkRequest(_In):
    action: Literal["replay", "discard"]
    filter: DeadLetterFilterIn
    expected: int | None = Field(None, ge=0, description="what the preview counted")
    confirm: bool = Field(False, description="required for discard: it cannot be undone")


class BulkJob(Reply):
    """A bulk replay or discard running on the hub, or ended."""

    id: str
    action: Literal["replay", "discard"]
    filter: DeadLetterFilterOut
    by: str
    expected: int | None
    state: Literal["running", "done", "failed"]
    done: int = Field(description="messages acted on so far")
    started_at: str
    ended_at: str | None
    error: str | None


# -- audit, users, pages ---------------------------------------------------------------------


class AuditEntry(Reply):
    id: int
    at: str
    actor: str
    action: str
    target: str
    detail: dict[str, Any] = Field(description="masked")


class AuditPage(Reply):
    """The audit log, newest first."""

    items: list[AuditEntry]


class User(Reply):
    name: str
    role: Role
    locked: bool
    failures: int


class UserList(Reply):
    """Dashboard users, their roles and lock-outs."""

    items: list[User]


class Unlocked(Reply):
    """The user may log in again."""

    unlocked: str


class SessionsRevoked(Reply):
    """Every session of the user is ended: each of their cookies needs a new log-in."""

    user: str
    sessions_ended: int = Field(description="live sessions ended (0: none was open)")


class FlowColumn(Reply):
    key: str
    kind: Literal[
        "text",
        "id",
        "time",
        "value",
        "connector",
        "dossier",
        "money",
        "number",
        "counts",
        "detail",
    ] = Field(description="how its values read: `time` ISO 8601, `money` in đồng, ...")
    filter: bool = Field(description="whether it may be filtered by its exact value")
    words: str | None = Field(
        None,
        description="a `value` column whose values are codes read in the words of another "
        "column's (`code`: a refusal's code, as the callbacks' and the held-back items')",
    )


class FlowFact(Reply):
    key: str
    kind: str
    value: Any


class FlowTable(Reply):
    """One page of a flow table's rows that match the request's filters, newest first."""

    key: str
    columns: list[FlowColumn]
    rows: list[dict[str, Any]]
    total: int = Field(description="rows matching the filters (among the `read` newest)")
    read: int = Field(description="rows read: the newest ones, at most the window")
    capped: bool = Field(description="the window was full: older rows were not read")
    page: int = Field(description="0 is the newest page")
    pages: int
    per_page: int
    sums: dict[str, float] = Field(description="each money column's sum over `total` rows")
    options: dict[str, list[str]] = Field(description="each filterable column's values")


class FlowConnector(Card):
    """A connector the flow goes through: its card and its newest outages."""

    outages: list[OutageOut]


class FlowPage(Reply):
    """A connector's page: facts, tables, personal data masked, and the state and outages of
    the connectors it goes through; only `enabled` when off."""

    enabled: bool
    facts: list[FlowFact] = Field(default_factory=list)
    tables: list[FlowTable] = Field(default_factory=list)
    connectors: list[FlowConnector] = Field(default_factory=list)
