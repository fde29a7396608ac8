"""Taking a batch of results from a ministry system, pushed or polled.

Each item is mapped on its own (`MinistryMapping.result`); one that cannot be mapped (an
expression of the mapping that fails on it included: `mapping_error`, counted by
`hub_ministry_mapping_errors_total`), whose time is implausible (ahead of the hub's clock by
more than `validation.max_future_skew_s`, or before `validation.earliest_year`: `future_date`,
`implausible_date`, as at every door), that names a dossier which is not the system's, or that
reuses the id of an earlier result about another dossier (a ministry's numbering started
again), is quarantined with its reason (personal data masked) and never forwarded, while the
rest of the batch goes on. A system's dossiers are those handed off to it and those of the
procedures configured for it (`procedures`, `result_procedures`); any other code, held by the
hub or not, gets one and the same answer (`not_handed_to_system`, counted by
`hub_ministry_foreign_results_total`), so a system learns nothing of other dossiers
(decision 0053). A whole reply the mapping cannot read is quarantined the same way
(`quarantine_reply`). The good ones
are committed together (`SqliteMinistries.record_results`, with the poll cursor when there is
one) and only then published; a result the hub already has is a duplicate and changes nothing.
This module must never talk to a ministry system: the door and the poller bring the items.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from connectors.ministry.mapping import MappingFailed, MinistryMapping, as_json
from connectors.ministry.store import Holder, SqliteMinistries
from hub import metrics
from hub.errors import ValidationFailed
from hub.masking import mask
from hub.store.base import Relay
from hub.store.sqlite import SqliteStore
from hub.validation import Validator
from schemas.canonical import content_id
from schemas.ministry import MinistryResult

log = structlog.get_logger(__name__)

Verdict = Literal["accepted", "duplicate", "quarantined"]
NOT_OURS = "not_handed_to_system"


@dataclass(frozen=True)
class ItemOutcome:
    index: int
    verdict: Verdict
    result_id: str | None = None
    dossier_code: str | None = None
    code: str | None = None  # why it was quarantined: not_handed_to_system, missing, ...
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class ResultIntake:
    def __init__(
        self,
        system: str,
        mapping: MinistryMapping,
        store: SqliteStore,
        relay: Relay,
        procedures: Iterable[str],
        validator: Validator,
    ) -> None:
        self.system = system
        self.validator = validator  # a result's time: not ahead of now, not before the year
        self.mapping = mapping
        self.store = store
        self.relay = relay
        # Besides the dossiers handed to it, the system may report on these procedures'.
        self.procedures = frozenset(procedures)

    async def accept(
        self, items: list[Any], via: str, cursor: str | None = None
    ) -> list[ItemOutcome]:
        """One outcome per item, in order; the cursor is saved with the accepted ones."""
        outcomes: dict[int, ItemOutcome] = {}
        mapped: list[tuple[int, MinistryResult]] = []
        now = datetime.now(UTC)
        for index, item in enumerate(items):
            try:
                result = self.mapping.result(self.system, item)
                self.validator.happened(result.occurred_at, "occurred_at", now)
                mapped.append((index, result))
            except ValidationFailed as exc:
                if isinstance(exc, MappingFailed):
                    metrics.MINISTRY_MAPPING_ERRORS.labels(self.system, exc.at).inc()
                outcomes[index] = await self._quarantine(index, item, via, exc.code, exc.message)
        holders = await self.store.slice("ministries", SqliteMinistries).holders(
            self.system, sorted({r.dossier_code for _, r in mapped})
        )
        good: list[tuple[int, MinistryResult]] = []
        for index, result in mapped:
            holder = holders.get(result.dossier_code)
            if holder is not None and (
                holder.handed_off or holder.procedure_code in self.procedures
            ):
                good.append((index, result))
                continue
            outcomes[index] = await self._not_ours(index, items[index], via, result, holder)
        outcomes |= await self._record(good, cursor, items, via)
        return [outcomes[i] for i in range(len(items))]

    async def _not_ours(
        self, index: int, item: Any, via: str, result: MinistryResult, holder: Holder | None
    ) -> ItemOutcome:
        """A result about a dossier that is not this system's: the same answer whether the
        hub holds the dossier or not (no oracle of which codes exist, nor of whose they are);
        only the operators' copy says which it was."""
        code = result.dossier_code
        answer = (
            f"dossier {code} was not handed to {self.system} and is not of a procedure "
            f"configured for it (ministries.{self.system}.procedures)"
        )
        if holder is None:
            why = "the hub holds no such dossier (yet: push it again once it has arrived)"
        else:
            why = f"the hub holds it, of procedure {holder.procedure_code or 'unknown'}"
        metrics.MINISTRY_FOREIGN_RESULTS.labels(self.system).inc()
        return await self._quarantine(
            index, item, via, NOT_OURS, answer, result, kept_reason=f"{answer}; {why}"
        )

    async def _record(
        self,
        good: list[tuple[int, MinistryResult]],
        cursor: str | None,
        items: list[Any],
        via: str,
    ) -> dict[int, ItemOutcome]:
        if not good and cursor is None:
            return {}
        results = [r for _, r in good]
        recorded = await self.store.slice("ministries", SqliteMinistries).record_results(
            self.system, results, cursor
        )
        await self.relay(recorded.outbox)
        out: dict[int, ItemOutcome] = {}
        for index, result in good:
            earlier = recorded.conflicts.get((result.event_id, result.dossier_code))
            if earlier is not None:
                reason = f"result id {result.result_id} was used before for dossier {earlier}"
                out[index] = await self._quarantine(
                    index, items[index], via, "conflicting_id", reason, result
                )
                continue
            verdict: Verdict = "accepted" if result.event_id in recorded.new else "duplicate"
            metrics.MINISTRY_RESULTS.labels(self.system, verdict).inc()
            log.info(
                "ministry_result_" + verdict,
                system=self.system,
                dossier_code=result.dossier_code,
                result_id=result.result_id,
                status=result.status.name,
            )
            out[index] = ItemOutcome(index, verdict, result.result_id, result.dossier_code)
        return out

    async def quarantine_reply(self, document: Any, via: str, exc: MappingFailed) -> None:
        """A whole reply (or pushed body) the mapping could not read, kept where operators see
        it with the reason, and counted; the same reply again only counts `seen`."""
        kept, fingerprint = _kept(document)
        await self.store.slice("ministries", SqliteMinistries).quarantine(
            self.system, fingerprint, via, exc.code, exc.message, None, kept
        )
        metrics.MINISTRY_MAPPING_ERRORS.labels(self.system, exc.at).inc()
        log.warning(
            "ministry_reply_quarantined", system=self.system, via=via, code=exc.code,
            reason=exc.message,
        )  # fmt: skip

    async def _quarantine(
        self,
        index: int,
        item: Any,
        via: str,
        code: str,
        reason: str,
        result: MinistryResult | None = None,
        kept_reason: str | None = None,
    ) -> ItemOutcome:
        """Keep the item for operators (with `kept_reason` when they may learn more than the
        system is told) and answer `reason`."""
        masked, content = _kept(item)
        fingerprint = result.result_id if result else content
        dossier = result.dossier_code if result else None
        kept = kept_reason or reason
        await self.store.slice("ministries", SqliteMinistries).quarantine(
            self.system, fingerprint, via, code, kept, dossier, masked
        )
        metrics.MINISTRY_RESULTS.labels(self.system, "quarantined").inc()
        log.warning(
            "ministry_result_quarantined",
            system=self.system,
            code=code,
            reason=kept,
            dossier_code=dossier,
        )
        return ItemOutcome(
            index, "quarantined", result.result_id if result else None, dossier, code, reason
        )


def _kept(value: Any) -> tuple[Any, str]:
    """What operators are shown of a refused item or reply (plain JSON, masked) and its
    fingerprint; one nested too deep to be made plain is kept as the reason alone."""
    try:
        plain = as_json(value)
    except MappingFailed as exc:
        plain = {"unreadable": exc.message}
    return mask(plain), content_id(plain)
