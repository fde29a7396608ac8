"""Prometheus metrics, served at `/metrics`. Names follow `hub_<what>_<unit>`.

Defined once here so every module counts the same way; this module must never label with
personal data or unbounded values (dossier codes never become labels).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INBOUND_ITEMS = Counter(
    "hub_inbound_items_total",
    "Inbound items by door and outcome (accepted, duplicate, refused)",
    ["door", "outcome"],
)
MESSAGES = Counter(
    "hub_messages_total",
    "Queued messages settled by connector and outcome (done, retry, parked; shelved: held "
    "through an outage longer than broker.hold_max_s and put back at the end of the queue; "
    "skipped: none of the connector's business, acked and not delivered)",
    ["connector", "outcome"],
)
PORTAL_CALLS = Counter(
    "hub_portal_calls_total",
    "Calls to DVCQG by service and outcome",
    ["service", "outcome"],
)
DELIVERY_LAG = Histogram(
    "hub_delivery_lag_seconds",
    "From the hub receiving a change to the destination confirming it",
    ["connector"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200),
)
CIRCUIT_OPEN = Gauge(
    "hub_circuit_open",
    "1 while the breaker refuses calls (the destination is down and no probe is on its way); "
    "one label per breaker: a connector's consumer and its pollers have their own",
    ["breaker"],
)
OUTBOUND_CALLS = Counter(
    "hub_outbound_calls_total",
    "Outbound calls by breaker and outcome (ok, http_5xx, http_4xx, timeout, connect_error, "
    "bad_reply, item_refused, auth_refused, circuit_open, error)",
    ["breaker", "outcome"],
)
OUTBOUND_CALL_SECONDS = Histogram(
    "hub_outbound_call_seconds",
    "Time of outbound calls that reached the network, by breaker",
    ["breaker"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CONNECTOR_STATE = Gauge(
    "hub_connector_state",
    "1 for the connector's current state (up, degraded, down, credentials_refused, paused)",
    ["connector", "state"],
)
QUEUE_MESSAGES = Gauge(
    "hub_queue_messages",
    "Messages in a connector's queues as the broker counts them (kind: waiting, parked), "
    "read at each scrape",
    ["connector", "kind"],
)
CONSUMERS_READY = Gauge(
    "hub_consumer_ready", "1 while the connector's consumer is subscribed", ["connector"]
)
SLOW_CLIENTS = Counter(
    "hub_http_slow_clients_total",
    "Connections closed because a request's head or body arrived too slowly (part: head, body)",
    ["part"],
)
RATE_LIMITED = Counter(
    "hub_http_rate_limited_total",
    "Requests refused with 429 by door and by what was over its limit (address, source)",
    ["door", "by"],
)
OUTBOX_PENDING = Gauge("hub_outbox_pending", "Outbox rows waiting to be published")
PAYMENT_CALLBACKS = Counter(
    "hub_payment_callbacks_total",
    "Payment platform callbacks by verdict (accepted, duplicate, refused) and refusal code",
    ["verdict", "code"],
)
PAYMENT_REFUSALS_UNLOGGED = Counter(
    "hub_payment_refusals_unlogged_total",
    "Refused payment callbacks answered but not kept in the callback log: their address had "
    "spent its budget (connectors.payment_platform.callback_limits.refusals_per_address_per_min)",
)
PAYMENT_CHECKS = Counter(
    "hub_payment_status_checks_total",
    "Status checks of pending transactions by result (paid, failed, pending, error)",
    ["result"],
)
MINISTRY_RESULTS = Counter(
    "hub_ministry_results_total",
    "Results from ministry systems by system and verdict (accepted, duplicate, quarantined)",
    ["system", "verdict"],
)
MINISTRY_FOREIGN_RESULTS = Counter(
    "hub_ministry_foreign_results_total",
    "Results a ministry system sent about a dossier that is not its own (not handed off to it, "
    "not of its procedures, or unknown), refused and quarantined, by system",
    ["system"],
)
MINISTRY_HANDOFFS = Counter(
    "hub_ministry_handoffs_total",
    "Dossiers handed off to ministry systems by system and outcome (submitted, refused, failed)",
    ["system", "outcome"],
)
MINISTRY_POLLS = Counter(
    "hub_ministry_polls_total",
    "Poll rounds of ministry systems by system and outcome (ok, failed)",
    ["system", "outcome"],
)
MINISTRY_MAPPING_ERRORS = Counter(
    "hub_ministry_mapping_errors_total",
    "Documents a ministry mapping's expression failed on at run time, by system and the "
    "mapping key (results.items, results.fields.occurred_at, submit.accepted, ...)",
    ["system", "at"],
)
VDXP_ITEMS = Counter(
    "hub_vdxp_items_total",
    "Items taken from the document axis by message type (edoc, status) and verdict "
    "(accepted, duplicate, refused)",
    ["messagetype", "verdict"],
)
VDXP_SENT = Counter(
    "hub_vdxp_sent_total",
    "Documents sent on the axis by outcome (sent, refused, failed)",
    ["outcome"],
)
VDXP_POLLS = Counter(
    "hub_vdxp_polls_total", "Poll rounds of the document axis by outcome (ok, failed)", ["outcome"]
)
SYNC_COMPLETENESS = Gauge(
    "hub_sync_completeness_ratio",
    "Share of dossiers whose newest version DVCQG confirmed, read from the store at each scrape",
)
SYNC_UNCONFIRMED = Gauge(
    "hub_sync_unconfirmed_dossiers",
    "Dossiers whose newest version DVCQG has not confirmed, read from the store at each scrape",
)
