"""Reconciliation (đối soát) of one local day's payments.

Three accounts of the day are compared: what the platform confirmed (its listing, §3 of the
protocol), what the hub recorded, and what the one-stop system acknowledged (a 2xx for the
`payment.paid` event, recorded by its subscriber), against the fees expected for each
dossier when they are known (the dossier's own fee list, else the procedure's online-channel
fee when it is unambiguous). The report lists, one finding each:

| kind | meaning |
|---|---|
| `missing_at_hub` | the platform confirmed a payment the hub never heard of (its callback was |
|   | lost): the hub records it now and delivers it |
| `missing_at_one_stop` | the hub holds a payment the one-stop system has not acknowledged |
| `unconfirmed_by_platform` | the hub holds a payment the platform does not list as paid |
| `status_mismatch` | the platform and the hub disagree on the outcome |
| `amount_mismatch` | the platform and the hub disagree on the amount |
| `time_mismatch` | the two disagree on when it happened by more than `time_tolerance_s`; a |
|   | difference of whole hours is named a probable clock error (a time zone, a 12-hour clock) |
| `currency_mismatch` | a currency other than VND, or the two disagree |
| `fee_mismatch` | what was paid for a dossier differs from the fees expected for it |
| `duplicate` | more than one paid transaction for one payment reference, or one listed twice |
| `pending_too_long` | a transaction still pending after `pending_too_long_s` |
| `unreadable` | a listed transaction the hub cannot read (named, with the reason) |

Running it again for the same day replaces the stored report; it never delivers twice.
This module must never speak HTTP or SQL itself.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol, get_args, runtime_checkable

import structlog

from connectors.payment_platform.client import PlatformClient
from connectors.payment_platform.config import PaymentPlatformConfig
from connectors.payment_platform.mapping import PaymentCodes, read_listed
from connectors.payment_platform.models import FindingKind
from connectors.payment_platform.store import SqlitePayments
from hub.files import private_dir, write_private
from hub.store.base import Relay
from hub.store.sqlite import SqliteStore
from hub.validation import VN_TZ, Validator, item_error
from schemas.payment import PaymentOutcome, PaymentRecord, PaymentResult

log = structlog.get_logger(__name__)

# The kinds of finding, in the report's order: the reply model's (one list, not two).
KINDS: tuple[str, ...] = get_args(FindingKind)
CSV_COLUMNS = (
    "kind",
    "dossier_code",
    "reference",
    "transaction_id",
    "hub_outcome",
    "platform_outcome",
    "hub_amount_vnd",
    "platform_amount_vnd",
    "expected_vnd",
    "currency",
    "detail",
)


@dataclass(frozen=True)
class Finding:
    kind: str
    dossier_code: str = ""
    reference: str = ""
    transaction_id: str = ""
    hub_outcome: str = ""
    platform_outcome: str = ""
    hub_amount_vnd: int | None = None
    platform_amount_vnd: int | None = None
    expected_vnd: int | None = None
    currency: str = ""
    detail: str = ""


def expected_fee(record: dict[str, Any] | None, procedure: dict[str, Any] | None) -> int | None:
    """The fees due for a dossier, when known: its own fee list, else the procedure's.

    From the procedure only the online channel (2) counts, and only when every time limit of
    it carries the same total: anything ambiguous is "not known", never guessed.
    """
    if record is not None:
        amounts = [f.get("amount_vnd") for f in record.get("fees", [])]
        if amounts and all(isinstance(a, int) for a in amounts):
            return sum(a for a in amounts if isinstance(a, int))
    if procedure is None:
        return None
    totals = {
        sum(int(fee.get("amount_vnd", 0)) for fee in limit.get("fees", []))
        for channel in procedure.get("channels", [])
        if channel.get("channel") == 2
        for limit in channel.get("time_limits", [])
        if limit.get("fees")
    }
    return totals.pop() if len(totals) == 1 else None


UNKNOWN_DOSSIER = "the dossier is unknown to the hub: not delivered"
RECORDED_NOW = "no callback arrived: recorded now and sent to the one-stop system"
RESOLVED = "the hub held it as pending: the platform's outcome is applied and sent now"


class CatalogueRow(Protocol):
    @property
    def record(self) -> dict[str, Any]: ...


@runtime_checkable
class Catalogue(Protocol):
    """The procedure catalogue's store slice (kept by the DVCQG connector), for the fees due;
    without it, fees are not compared."""

    async def procedure(self, code: str) -> CatalogueRow | None: ...


class Reconciler:
    def __init__(
        self,
        config: PaymentPlatformConfig,
        client: PlatformClient,
        store: SqliteStore,
        codes: PaymentCodes,
        validator: Validator,
        relay: Relay,
    ) -> None:
        self.config = config
        self.client = client
        self.store = store
        self.codes = codes
        self.validator = validator
        self.relay = relay

    async def run(self, day: date, now: datetime | None = None) -> dict[str, Any]:
        """Reconcile `day`, store the report and write it as CSV and JSON; return it."""
        now = now or datetime.now(UTC)
        log.info("reconciliation_started", day=day.isoformat())
        findings: list[Finding] = []
        listed = await self._listed(day, findings)
        payments = self.store.slice("payments", SqlitePayments)
        recorded_now = await self._record_missing(listed, findings)
        hub = {r.result.key: r for r in await payments.on_day(day.isoformat())}
        self._compare(listed, hub, recorded_now, findings)
        self._check_hub(listed, hub, recorded_now, findings)
        await self._fees(hub, findings)
        end_of_day = datetime.combine(day + timedelta(days=1), time(), VN_TZ)
        cutoff = min(
            now - timedelta(seconds=self.config.reconciliation.pending_too_long_s), end_of_day
        )
        for record in await payments.pending_before(cutoff):
            findings.append(
                _finding(
                    "pending_too_long",
                    record.result,
                    detail=f"pending since {record.result.paid_at.isoformat()}",
                )
            )
        report = _report(day, now, listed, hub, findings)
        await payments.save_report(day.isoformat(), report)
        self._write(day, report)
        log.info("reconciliation_done", day=day.isoformat(), **report["summary"]["findings"])
        return report

    async def _listed(self, day: date, findings: list[Finding]) -> list[PaymentResult]:
        results: list[PaymentResult] = []
        seen: set[tuple[str, str]] = set()
        for item in await self.client.listing(day):
            try:
                result = read_listed(
                    item,
                    self.codes,
                    self.validator,
                    self.config.reference_suffix,
                    strict_currency=False,
                )
            except Exception as exc:
                findings.append(
                    Finding(
                        "unreadable",
                        reference=str(item.get("MaThamChieu", ""))[:100],
                        transaction_id=str(item.get("MaGiaoDich", ""))[:100],
                        detail=item_error(exc).message,
                    )
                )
                continue
            if result.key in seen:
                findings.append(
                    _finding("duplicate", None, result, detail="listed twice by the platform")
                )
                continue
            seen.add(result.key)
            results.append(result)
        return results

    async def _record_missing(
        self, listed: list[PaymentResult], findings: list[Finding]
    ) -> set[tuple[str, str]]:
        """Paid or failed transactions the hub never heard of, or holds as pending: applied now.

        Like a status check, the platform's word settles them, and the one-stop system is
        told; each is also listed, because a callback went missing.
        """
        payments = self.store.slice("payments", SqlitePayments)
        applied: set[tuple[str, str]] = set()
        for result in listed:
            held = await payments.get(*result.key)
            if not result.outcome.final or result.currency != "VND":
                continue  # pending stays pending; a currency mismatch is never delivered
            if held is not None and held.result.outcome.final:
                continue
            if held is None and result.outcome is not PaymentOutcome.PAID:
                continue  # a failed attempt the hub never saw changes nothing for anyone
            known = await payments.known_dossiers([result.dossier_code])
            if held is None and self.config.require_known_dossier and not known:
                findings.append(_finding("missing_at_hub", None, result, detail=UNKNOWN_DOSSIER))
                continue
            outcome = await payments.record(result, None)
            await self.relay(outcome.outbox)
            applied.add(result.key)
            if held is None:
                findings.append(_finding("missing_at_hub", None, result, detail=RECORDED_NOW))
            else:
                findings.append(_finding("status_mismatch", held.result, result, detail=RESOLVED))
        return applied

    def _compare(
        self,
        listed: list[PaymentResult],
        hub: dict[tuple[str, str], PaymentRecord],
        recorded_now: set[tuple[str, str]],
        findings: list[Finding],
    ) -> None:
        for result in listed:
            record = hub.get(result.key)
            if result.currency != "VND":
                findings.append(
                    _finding(
                        "currency_mismatch",
                        record.result if record else None,
                        result,
                        detail=f"the platform lists {result.currency}",
                    )
                )
                continue
            if record is None or result.key in recorded_now:
                continue  # listed already, as missing_at_hub or status_mismatch
            held = record.result
            if held.outcome is not result.outcome:
                findings.append(_finding("status_mismatch", held, result))
            elif held.amount_vnd != result.amount_vnd:
                findings.append(_finding("amount_mismatch", held, result))
            elif detail := time_difference(
                held.paid_at, result.paid_at, self.config.reconciliation.time_tolerance_s
            ):
                findings.append(_finding("time_mismatch", held, result, detail=detail))

    def _check_hub(
        self,
        listed: list[PaymentResult],
        hub: dict[tuple[str, str], PaymentRecord],
        recorded_now: set[tuple[str, str]],
        findings: list[Finding],
    ) -> None:
        by_key = {r.key: r for r in listed}
        paid_by_reference: dict[str, list[PaymentRecord]] = defaultdict(list)
        for key, record in hub.items():
            held = record.result
            if held.outcome is not PaymentOutcome.PAID:
                continue
            paid_by_reference[held.reference].append(record)
            platform = by_key.get(key)
            if platform is None:
                findings.append(
                    _finding(
                        "unconfirmed_by_platform", held, detail="the platform does not list it"
                    )
                )
            if record.acknowledged_at is None and key not in recorded_now:
                findings.append(
                    _finding(
                        "missing_at_one_stop",
                        held,
                        platform,
                        detail="not acknowledged by the one-stop system",
                    )
                )
        for reference, records in sorted(paid_by_reference.items()):
            if len(records) > 1:
                ids = ", ".join(r.result.transaction_id for r in records)
                for record in records:
                    findings.append(
                        _finding(
                            "duplicate",
                            record.result,
                            by_key.get(record.result.key),
                            detail=f"{len(records)} paid transactions for {reference}: {ids}",
                        )
                    )

    async def _fees(
        self, hub: dict[tuple[str, str], PaymentRecord], findings: list[Finding]
    ) -> None:
        dossiers = sorted(
            {r.result.dossier_code for r in hub.values() if r.result.outcome is PaymentOutcome.PAID}
        )
        for code in dossiers:
            view = await self.store.dossier(code)  # its record and every payment of it
            paid = [p.result for p in view.payments if p.result.outcome is PaymentOutcome.PAID]
            record = view.snapshot.record if view.snapshot else None
            procedure = None
            catalogue = self.store.slices.get("procedures")
            if record is not None and record.procedure_code and isinstance(catalogue, Catalogue):
                row = await catalogue.procedure(record.procedure_code)
                procedure = row.record if row else None
            expected = expected_fee(record.model_dump(mode="json") if record else None, procedure)
            total = sum(p.amount_vnd for p in paid)
            if expected is not None and total != expected:
                findings.append(
                    Finding(
                        "fee_mismatch",
                        dossier_code=code,
                        hub_amount_vnd=total,
                        expected_vnd=expected,
                        currency="VND",
                        detail=f"paid {total} đồng in {len(paid)} transaction(s), {expected} due",
                    )
                )

    def _write(self, day: date, report: dict[str, Any]) -> None:
        # Payment records: a folder the hub makes is 0700, the files 0600 (an existing
        # folder keeps the mode its operator gave it: it may be shared on purpose).
        folder = private_dir(Path(self.config.reconciliation.output_dir))
        stem = folder / f"reconciliation-{day.isoformat()}"
        write_private(stem.with_suffix(".json"), json.dumps(report, ensure_ascii=False, indent=2))
        write_private(stem.with_suffix(".csv"), to_csv(report))
        report["files"] = [str(stem.with_suffix(".json")), str(stem.with_suffix(".csv"))]


def time_difference(hub: datetime, platform: datetime, tolerance_s: float) -> str:
    """How far apart the hub's and the platform's times of one transaction are, in words;
    empty within `tolerance_s`. A difference of whole hours (to a minute) is most likely a
    clock set to another time zone or read on a 12-hour dial, and is named so."""
    apart = (platform - hub).total_seconds()
    if abs(apart) <= tolerance_s:
        return ""
    shown = "%Y-%m-%d %H:%M:%S"
    local = f"hub {hub.astimezone(VN_TZ):{shown}}, platform {platform.astimezone(VN_TZ):{shown}}"
    hours, rest = divmod(abs(apart), 3600)
    if hours >= 1 and min(rest, 3600 - rest) <= 60:
        whole = round(abs(apart) / 3600)
        later = "later" if apart > 0 else "earlier"
        return f"the platform's time is {whole} h {later} ({local}): probably a clock error"
    return f"{abs(apart):.0f} s apart ({local})"


def _finding(
    kind: str, held: PaymentResult | None, platform: PaymentResult | None = None, detail: str = ""
) -> Finding:
    some = held or platform
    assert some is not None
    return Finding(
        kind,
        dossier_code=some.dossier_code,
        reference=some.reference,
        transaction_id=some.transaction_id,
        hub_outcome=held.outcome.value if held else "",
        platform_outcome=platform.outcome.value if platform else "",
        hub_amount_vnd=held.amount_vnd if held else None,
        platform_amount_vnd=platform.amount_vnd if platform else None,
        currency=some.currency if held is None or platform is None else platform.currency,
        detail=detail,
    )


def _report(
    day: date,
    now: datetime,
    listed: list[PaymentResult],
    hub: dict[tuple[str, str], PaymentRecord],
    findings: list[Finding],
) -> dict[str, Any]:
    confirmed = [r for r in listed if r.outcome is PaymentOutcome.PAID]
    paid = [r for r in hub.values() if r.result.outcome is PaymentOutcome.PAID]
    counts = Counter(f.kind for f in findings)
    order = {k: i for i, k in enumerate(KINDS)}
    findings = sorted(findings, key=lambda f: (order[f.kind], f.dossier_code, f.transaction_id))
    return {
        "day": day.isoformat(),
        "generated_at": now.isoformat(),
        "summary": {
            "platform_confirmed": len(confirmed),
            "platform_total_vnd": sum(r.amount_vnd for r in confirmed),
            "hub_paid": len(paid),
            "hub_total_vnd": sum(r.result.amount_vnd for r in paid),
            "acknowledged_by_one_stop": sum(1 for r in paid if r.acknowledged_at is not None),
            "findings": {k: counts.get(k, 0) for k in KINDS},
        },
        "findings": [asdict(f) for f in findings],
    }


def to_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for finding in report["findings"]:
        writer.writerow({k: "" if v is None else v for k, v in finding.items()})
    return out.getvalue()


def previous_day(now: datetime) -> date:
    return now.astimezone(VN_TZ).date() - timedelta(days=1)


def next_run(now: datetime, run_at: str) -> datetime:
    """The next local `HH:MM` strictly after `now`."""
    hour, minute = (int(p) for p in run_at.split(":"))
    local = now.astimezone(VN_TZ)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate


class Reconciles(Protocol):
    config: PaymentPlatformConfig

    async def run(self, day: date, now: datetime | None = None) -> dict[str, Any]: ...


async def run_daily(
    reconciler: Reconciles,
    retry_after_s: float = 600.0,
    attempts: int = 6,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Every day at `run_at`, reconcile the previous day; a failed run is tried again
    `attempts` times, `retry_after_s` apart, then left to the operator (logged)."""
    cfg = reconciler.config.reconciliation
    while True:
        at = next_run(clock(), cfg.run_at)
        await sleep(max((at - clock()).total_seconds(), 0))
        day = previous_day(at)
        for attempt in range(1, attempts + 1):
            try:
                await reconciler.run(day)
                break
            except Exception as exc:
                log.error(
                    "reconciliation_failed", day=day.isoformat(), attempt=attempt, error=repr(exc)
                )
                await sleep(retry_after_s)
