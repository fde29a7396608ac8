"""A dossier's journey through the hub as one ordered list of hops, for the dossier page.

Built from what the store keeps of a dossier (`DossierView`): each accepted event gives the
hops "received" (from which system), "mapped" (the vendor's status and the canonical one it
became) and "queued" (sent on, or kept as late history when a newer state was already held);
a destination's confirmation of a step (DVCQG's, say) gives "confirmed"; every line of the
delivery journal gives its own hop (delivered, refused, retry, parked, replayed, discarded)
with the connector; payments give "payment". Payloads are masked here, before anything leaves
the hub. Pure logic.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from hub.masking import mask, mask_text
from hub.store.base import DossierView
from schemas.canonical import DossierStatus


@dataclass(frozen=True)
class Hop:
    at: str
    kind: str
    actor: str  # the system or connector the hop is about
    label: str  # a short English description (pages translate the kind)
    detail: str = ""
    payload: Any = None  # masked
    event_id: int | None = None  # the history row a "received" hop comes from
    count: int = 1  # retries of one destination in a row, shown as one hop
    first_at: str | None = None  # the first of them (`at` is the last)
    # A journal line's reason as a code, with the values its words name (decision 0090):
    # the page words it; `detail` keeps the hub's own text.
    reason_code: str | None = None
    reason_args: dict[str, Any] = field(default_factory=dict)
    # The label and the detail as words the page says in its language (`hop.label.*`,
    # `hop.detail.*` with their values; `pages.hop_words`); `label`/`detail` stay the English
    # the admin API and the logs carry.
    label_words: tuple[str, dict[str, Any]] | None = None
    detail_words: tuple[str, dict[str, Any]] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "kind": self.kind,
            "actor": self.actor,
            "label": self.label,
            "detail": self.detail,
            "payload": self.payload,
            "count": self.count,
            "first_at": self.first_at,
            "reason_code": self.reason_code,
            "reason_args": self.reason_args,
            "label_words": self.label_words,
            "detail_words": self.detail_words,
        }


def status_name(code: int | None) -> str:
    try:
        return DossierStatus(code).name if code is not None else "-"
    except ValueError:
        return str(code)


@dataclass(frozen=True)
class Page:
    hops: list[Hop]
    total: int  # hops in the whole timeline
    first: int  # index of the page's first hop in the whole timeline


def timeline_page(view: DossierView, size: int, page: int) -> Page:
    """One page of the timeline, newest hop first (page 0 holds the newest `size` hops), with
    a destination's retries in a row collapsed into one hop that counts them.

    Only the page's payloads are masked (the costly part of a long history: masking 2,000
    payloads took 177 ms), and a long history shows page by page.
    """
    hops = collapse_retries(timeline(view))
    hops.reverse()
    start = min(len(hops), page * size)
    end = min(len(hops), start + size)
    payloads = {h.id: h.event for h in view.history}
    shown = [
        replace(hop, payload=mask(payloads[hop.event_id]))
        if hop.kind == "received" and hop.event_id in payloads
        else hop
        for hop in hops[start:end]
    ]
    return Page(shown, len(hops), start)


def collapse_retries(hops: list[Hop]) -> list[Hop]:
    """Retries of one destination in a row (oldest first) as one hop: the last one's time and
    reason, the first one's time, and how many there were."""
    out: list[Hop] = []
    for hop in hops:
        last = out[-1] if out else None
        if last is not None and hop.kind == "retry" == last.kind and hop.actor == last.actor:
            out[-1] = replace(hop, count=last.count + 1, first_at=last.first_at or last.at)
        else:
            out.append(hop)
    return out


def timeline(view: DossierView) -> list[Hop]:
    """Every hop, oldest first, without payloads (`timeline_page` adds the page's, masked,
    and shows them newest first)."""
    hops: list[Hop] = []
    for h in view.history:
        event = h.event
        name = status_name(h.status)
        hops.append(
            Hop(
                h.received_at,
                "received",
                h.source_system,
                f"{h.kind} event",
                f"event {event.get('event_id', '?')}, happened {h.occurred_at}",
                event_id=h.id,
                label_words=("hop.label.event", {"kind": h.kind}),
                detail_words=(
                    "hop.detail.event",
                    {"event_id": event.get("event_id", "?"), "happened": h.occurred_at},
                ),
            )
        )
        vendor = event.get("vendor_status")
        mapped = f"{vendor} → {name}" if vendor else name
        if event.get("sub_status"):
            mapped += f" ({event['sub_status']})"
        words = {"vendor": vendor or "", "status": name, "sub": event.get("sub_status") or ""}
        key = "hop.label.mapped" if vendor else "hop.label.mapped_plain"
        hops.append(Hop(h.received_at, "mapped", "hub", mapped, label_words=(key, words)))
        if h.applied:
            hops.append(Hop(h.received_at, "queued", "hub", "queued for delivery"))
        else:
            hops.append(
                Hop(h.received_at, "late", "hub", "kept in history only: a newer state is held")
            )
        for destination, sent_at in sorted(h.confirmed.items()):
            hops.append(Hop(sent_at, "confirmed", destination, "confirmed"))
    for d in view.deliveries:
        hops.append(
            Hop(
                d.at,
                d.outcome,
                d.connector,
                d.outcome,
                mask_text(d.detail or ""),
                reason_code=d.reason_code,
                reason_args={
                    k: mask_text(v) if isinstance(v, str) else v for k, v in d.reason_args.items()
                },
            )
        )
    for p in view.payments:
        r = p.result
        hops.append(
            Hop(
                p.updated_at.isoformat(),
                "payment",
                str(r.source),
                f"payment {r.outcome} {r.amount_vnd:,} {r.currency}",
                f"transaction {r.transaction_id}, reference {r.reference}",
                label_words=(
                    "hop.label.payment",
                    {"outcome": str(r.outcome), "amount": r.amount_vnd, "currency": r.currency},
                ),
                detail_words=(
                    "hop.detail.payment",
                    {"transaction": r.transaction_id, "reference": r.reference},
                ),
            )
        )
    return sorted(hops, key=_when)


def _when(hop: Hop) -> datetime:
    try:
        at = datetime.fromisoformat(hop.at)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)
