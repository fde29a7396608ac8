"""Wire models of the hub's own REST API (`/api/v1/...`), in English snake_case.

They double as the source of the OpenAPI document (`/api/v1/openapi.json`). Inbound models
forbid unknown fields so a typo is an error, not silently lost data; replies (`Reply`) forbid
them too, so a handler cannot send a field the document does not describe. A reply field with a
default may be absent (`hub.httputil.model_response` sends what was set); one without is
always there.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.canonical import DossierRecord
from schemas.text import PlainObject, Printable


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reply(BaseModel):
    """The base of every reply model: a field it does not name is an error, not sent."""

    model_config = ConfigDict(extra="forbid")


class RecordIn(_In):
    """The whole dossier (all fields optional except what the event carries)."""

    procedure_code: str | None = Field(None, max_length=500)
    procedure_name: str | None = Field(None, max_length=4000)
    field_code: str | None = Field(None, max_length=500)
    field_name: str | None = Field(None, max_length=4000)
    receipt_number: str | None = Field(None, max_length=500)
    owner_name: str | None = Field(None, max_length=500)
    applicant_type: str | None = Field(None, max_length=500)
    applicant_id: str | None = Field(None, max_length=500)
    other_info: str | None = Field(None, max_length=4000)
    email: str | None = Field(None, max_length=500)
    fax: str | None = Field(None, max_length=500)
    phone: str | None = Field(None, max_length=500)
    summary: str | None = Field(None, max_length=4000)
    received_at: AwareDatetime | None = None
    due_at: AwareDatetime | None = None
    returned_at: AwareDatetime | None = None
    return_info: str | None = Field(None, max_length=4000)
    return_method: str | None = Field(None, max_length=500)
    processing_ended_at: AwareDatetime | None = None
    handling_unit: str | None = Field(None, max_length=4000)
    note: str | None = Field(None, max_length=4000)
    submitted_documents: list[PlainObject] = Field(default_factory=list, max_length=200)
    fees: list[PlainObject] = Field(default_factory=list, max_length=200)
    other_attachments: list[PlainObject] = Field(default_factory=list, max_length=200)
    supplements: list[PlainObject] = Field(default_factory=list, max_length=200)
    result_documents: list[PlainObject] = Field(default_factory=list, max_length=200)


class StepIn(_In):
    handler_name: str | None = Field(None, max_length=500)
    handler_title: str | None = Field(None, max_length=500)
    department: str | None = Field(None, max_length=4000)
    content: str | None = Field(None, max_length=4000)
    started_at: AwareDatetime | None = None
    due_at: AwareDatetime | None = None


class DossierEventIn(_In):
    """One event. Give `status` (canonical name) or `vendor_status` (your own code)."""

    event_id: Printable = Field(min_length=1, max_length=200, description="your stable id")
    dossier_code: str = Field(max_length=100)
    kind: Literal["record", "step"]
    occurred_at: AwareDatetime = Field(description="when it happened, ISO 8601 with offset")
    status: str | None = Field(
        None, max_length=50, description="canonical status name, e.g. processing"
    )
    vendor_status: str | None = Field(
        None, max_length=200, description="vendor code, translated by mappings/"
    )
    record: RecordIn | None = Field(None, description="required when kind is record")
    step: StepIn | None = Field(None, description="optional details when kind is step")


class EventsRequest(BaseModel):
    """A batch of events. Each item is validated on its own: an invalid one is rejected in
    `results`, its neighbours go on."""

    events: list[DossierEventIn] = Field(
        description="1 to validation.max_items_per_batch (500) items"
    )


class ItemError(Reply):
    code: str
    field: str | None
    message: str


class ItemResultOut(Reply):
    index: int
    event_id: str | None
    outcome: Literal["accepted", "duplicate", "rejected"]
    error: ItemError | None = None


class EventsResponse(Reply):
    accepted: int
    duplicates: int
    rejected: int
    results: list[ItemResultOut]


class FeedItemOut(Reply):
    cursor: str
    dossier_code: str
    status: int = Field(description="DVCQG's number (TrangThaiHoSo)")
    status_name: str = Field(description="the canonical name, e.g. processing")
    status_at: str
    version: int
    record: DossierRecord | None


class FeedPage(Reply):
    items: list[FeedItemOut]
    next_cursor: str = Field(description="pass as `after` to continue; unchanged when empty")


class ErrorOut(Reply):
    """The APIs' one error shape."""

    error: str = Field(description="a stable code, e.g. bad_query, unknown_connector")
    message: str = Field(description="a sentence saying what to do")


# -- health ----------------------------------------------------------------------------------

ConnectorState = Literal["up", "degraded", "down", "credentials_refused", "paused"]


class Health(Reply):
    """The process is alive."""

    status: Literal["alive"]


class OutageOut(Reply):
    """An outage of a destination: from the first failure to the first success after it."""

    started_at: str
    ended_at: str | None
    duration_s: float | None
    cause: str = Field(description="the failure that began it (masked)")
    cause_code: str = Field(
        "other",
        description="what kind of outage: credentials_refused, timeout, connect_error, "
        "http_429, http_5xx, http_4xx, busy, bad_reply, broker, store or other",
    )
    last_error: str = Field(description="masked")
    last_error_code: str = Field("other", description="the last error's kind, as cause_code")
    probes: int
    refused_calls: int
    held_max: int = Field(description="the most messages held at once during it")


class ConnectorHealth(Reply):
    """A connector's state, as `/readyz`, `hub status` and the dashboard give it."""

    state: ConnectorState
    since: str | None = Field(description="when the state began, if known")
    reason: str = Field(description="why (masked); empty when up")
    reason_code: str = Field(
        "",
        description="the reason as a code the dashboard has words for: an outage's cause "
        "(timeout, connect_error, http_5xx …) or a state reason (paused, error_rate …); empty "
        "when it has none",
    )
    reason_args: dict[str, Any] = Field(
        default_factory=dict, description="values the reason's words name (by, note, share …)"
    )
    consuming: bool | None = Field(description="subscribed to its queue; null without a queue")
    held: int | None = Field(description="messages its consumer holds; null without a queue")
    outage: OutageOut | None
    waiting: int | None = Field(
        None, description="with ?counts=1: its work and retry queues plus what it holds"
    )
    parked: int | None = Field(None, description="with ?counts=1: its parking queue")


AlertRule = Literal[
    "HubConnectorDown",
    "HubDeadLettersGrowing",
    "HubSyncCompletenessLow",
    "HubSyncLagHigh",
    "HubConsumerMissing",
]


class AlertSummary(Reply):
    vi: str
    en: str


class ActiveAlert(Reply):
    """One of the hub's own alerts (`alerts` section), as notifications carry it."""

    rule: AlertRule
    status: Literal["firing", "resolved"]
    connector: str | None = Field(description="the connector concerned; null for the hub's sync")
    value: float | None = Field(description="the figure the rule watches, when last checked")
    threshold: float
    since: str = Field(description="when the condition began (UTC)")
    fired_at: str
    resolved_at: str | None
    detail: str = Field(description="the state and its reason, or the counts (masked)")
    episode: str = Field(description="the same in an episode's firing and resolved messages")
    summary: AlertSummary = Field(description="one sentence in Vietnamese and in English")


class Readiness(Reply):
    """Whether the hub is ready, each check, and each connector's state."""

    ready: bool
    checks: dict[str, str] = Field(
        description="store, broker, consumer.<connector>: ok or failing: <why>"
    )
    broker_node: str | None = Field(
        None,
        description="the broker node (host:port, from broker.url or broker.urls) the hub is "
        "connected to; null while it is not (connecting, or moving to another node)",
    )
    connectors: dict[str, ConnectorHealth]
    alerts: list[ActiveAlert] = Field(
        default_factory=list,
        description="the hub's own alerts now firing (never affect ready); with several "
        "replicas, only the one holding the `alerts` duty checks them and shows them",
    )
    replica: str = Field(
        description="this process as a holder of once-only duties: the configuration's "
        "instance and a suffix drawn at start (another process, or a restart, has another)"
    )
    duties: list[str] = Field(
        description="the once-only duties this replica runs now, by name (it holds their "
        "leases): outbox-sweep, alerts, and the connectors' schedules "
        "(<connector>-<what>, e.g. ministry-poll-civil_status)"
    )
    duty_holders: dict[str, str] | None = Field(
        description="every once-only duty with a live lease and the replica holding it, as "
        "the store says (this replica's and the others'); null when the store cannot be read"
    )
    replicas: list[str] | None = Field(
        default=None,
        description="every live replica on this store, by holder id, this one included, "
        "standing by or not (each renews a presence lease of its own); null when the store "
        "cannot be read",
    )
