"""Pure payment logic: the signature, reading callbacks, the ledger, expected fees, schedules."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.payment_platform.config import CALLBACK_FIELDS, PaymentPlatformConfig
from connectors.payment_platform.ledger import Verdict, decide, delivers
from connectors.payment_platform.mapping import (
    CallbackContext,
    PaymentCodes,
    dossier_code_of,
    read_callback,
    read_listed,
    wire_time,
)
from connectors.payment_platform.reconcile import (
    expected_fee,
    next_run,
    previous_day,
    run_daily,
    time_difference,
)
from connectors.payment_platform.routes import loggable
from connectors.payment_platform.signing import sign, signed, verify
from hub.config import ValidationConfig
from hub.errors import ValidationFailed
from hub.subscribers import topic_matches
from hub.validation import VN_TZ, Validator
from schemas.payment import PaymentOutcome, PaymentResult, PaymentSource

SECRET = "khoa-bi-mat"
PARTNER = "000.00.00.H41"
DOSSIER = "000.00.41.H41-261123-0001"
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 14:00 in Hanoi
CODES = PaymentCodes.load(Path("mappings/payment_platform.yaml"))
VALIDATOR = Validator(ValidationConfig())
CONFIG = PaymentPlatformConfig(enabled=True, partner_code=PARTNER, secret_key=SECRET)


def callback(secret: str = SECRET, **changes: str) -> dict[str, Any]:
    fields = {
        "LoaiBanTin": "KetQuaThanhToan",
        "MaLoi": "00",
        "MaDoiTac": PARTNER,
        "MaThamChieu": DOSSIER + "-01",
        "SoTien": "150000",
        "MaTienTe": "VND",
        "MaGiaoDich": "GD000123",
        "MaNganHang": "VCB",
        "ThoiGianGD": "20261123135900",
        "ThongTinGiaoDich": "Nguyen Van A nop le phi",
    }
    fields.update(changes)
    return signed(fields, CALLBACK_FIELDS, secret)


def read(fields: dict[str, Any], config: PaymentPlatformConfig = CONFIG) -> PaymentResult:
    return read_callback(fields, CallbackContext(config, CODES, VALIDATOR, NOW))


def result(outcome: PaymentOutcome, amount: int = 150000) -> PaymentResult:
    return PaymentResult(
        reference=DOSSIER,
        dossier_code=DOSSIER,
        transaction_id="GD1",
        amount_vnd=amount,
        paid_at=NOW,
        outcome=outcome,
        source=PaymentSource.CALLBACK,
    )


# -- signature ----------------------------------------------------------------------------------


def test_signature_is_sha256_of_the_fields_joined_with_the_secret_last() -> None:
    import hashlib

    fields = {"A": "1", "B": "x|y", "C": None}
    expected = hashlib.sha256(b"1|x|y||k").hexdigest()
    assert sign(fields, ["A", "B", "C"], "k") == expected
    assert verify({**fields, "MaXacThuc": expected.upper()}, ["A", "B", "C"], "k")


def test_signature_fails_on_any_change_of_field_order_or_key() -> None:
    body = callback()
    assert verify(body, CALLBACK_FIELDS, SECRET)
    assert not verify(body, list(reversed(CALLBACK_FIELDS)), SECRET)
    assert not verify(body, CALLBACK_FIELDS, SECRET + "x")
    assert not verify({**body, "SoTien": "1500000"}, CALLBACK_FIELDS, SECRET)
    assert not verify({**body, "MaXacThuc": "é" * 64}, CALLBACK_FIELDS, SECRET)
    assert not verify({k: v for k, v in body.items() if k != "MaXacThuc"}, CALLBACK_FIELDS, SECRET)


# -- reading a callback -------------------------------------------------------------------------


def test_a_good_callback_becomes_a_canonical_paid_result() -> None:
    paid = read(callback())
    assert paid.dossier_code == DOSSIER
    assert paid.reference == DOSSIER + "-01"
    assert paid.amount_vnd == 150000
    assert paid.currency == "VND"
    assert paid.outcome is PaymentOutcome.PAID
    assert paid.paid_at == datetime(2026, 11, 23, 13, 59, tzinfo=VN_TZ)
    assert paid.payer_info == "Nguyen Van A nop le phi"
    assert read(callback(MaLoi="01")).outcome is PaymentOutcome.PENDING
    assert read(callback(MaLoi="02")).outcome is PaymentOutcome.FAILED
    assert read(callback(SoTien="150000.00")).amount_vnd == 150000
    assert read(callback(MaTienTe="704")).currency == "VND"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        (callback(secret="wrong"), "bad_signature"),
        ({**callback(), "SoTien": "15000"}, "bad_signature"),  # tampered after signing
        ({k: v for k, v in callback().items() if k != "MaXacThuc"}, "missing"),
        (callback(ThoiGianGD="20261123015900PM"), "bad_date"),  # 12-hour clock
        (callback(ThoiGianGD="2026-11-23 13:59"), "bad_date"),
        (callback(ThoiGianGD="20261313135900"), "bad_date"),
        (callback(ThoiGianGD="20261113135900"), "stale_time"),  # ten days old
        (callback(ThoiGianGD="20261124135900"), "future_time"),  # a day ahead
        (callback(ThoiGianGD="20261123165900"), "future_time"),  # 3 h ahead: a wrong zone
        (callback(SoTien="12O000"), "bad_amount"),
        (callback(SoTien="-5000"), "bad_amount"),
        (callback(SoTien="1500.50"), "bad_amount"),
        (callback(MaTienTe="USD"), "bad_currency"),
        (callback(MaThamChieu="KHONG-TON-TAI-01"), "unknown_reference"),
        (callback(MaDoiTac="000.00.00.H01"), "wrong_partner"),
        (callback(LoaiBanTin="HoanTien"), "unknown_message_type"),
        (callback(MaLoi="77"), "unknown_result_code"),
        (callback(MaGiaoDich=""), "missing"),
    ],
)
def test_bad_callbacks_are_refused_with_a_code(fields: dict[str, Any], code: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        read(fields)
    assert err.value.code == code
    assert "Nguyen" not in err.value.message


def test_the_signed_field_order_is_configuration() -> None:
    order = ["MaGiaoDich", "MaThamChieu", "SoTien", "ThoiGianGD", "MaLoi", "LoaiBanTin"]
    config = CONFIG.model_copy(
        update={"signatures": CONFIG.signatures.model_copy(update={"callbacks": {"TB": order}})}
    )
    body = signed({**callback(), "LoaiBanTin": "TB"}, order, SECRET)
    assert read(body, config).amount_vnd == 150000
    with pytest.raises(ValidationFailed):
        read(callback(), config)  # the default message type is no longer accepted


def test_references_name_a_dossier_with_or_without_a_suffix() -> None:
    suffix = CONFIG.reference_suffix
    assert dossier_code_of(DOSSIER, suffix, VALIDATOR) == DOSSIER
    assert dossier_code_of(DOSSIER + "-02", suffix, VALIDATOR) == DOSSIER
    for bad in (DOSSIER + "-ABC", "HS-01", DOSSIER + "-0001-01-01"):
        with pytest.raises(ValidationFailed):
            dossier_code_of(bad, suffix, VALIDATOR)


def test_listed_items_keep_a_foreign_currency_only_when_asked() -> None:
    item = {
        "MaGiaoDich": "GD9",
        "MaThamChieu": DOSSIER,
        "SoTien": "20000",
        "MaTienTe": "usd",
        "ThoiGianGD": "20261122100000",
        "TrangThaiGD": "1",
    }
    assert read_listed(item, CODES, VALIDATOR, "-[0-9]+", strict_currency=False).currency == "USD"
    with pytest.raises(ValidationFailed):
        read_listed(item, CODES, VALIDATOR, "-[0-9]+")
    with pytest.raises(ValidationFailed):
        read_listed({**item, "MaTienTe": "VND", "TrangThaiGD": "2"}, CODES, VALIDATOR, "-1")


def test_loggable_masks_the_payer_and_shortens_the_signature() -> None:
    shown = loggable({**callback(), "extra": list(range(500))})
    assert "Nguyen" not in str(shown)
    assert len(shown["MaXacThuc"]) == 9
    assert len(shown["extra"]) == 200


# -- ledger -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "incoming", "verdict", "delivered"),
    [
        (None, PaymentOutcome.PAID, Verdict.NEW, True),
        (None, PaymentOutcome.PENDING, Verdict.NEW, False),
        (PaymentOutcome.PENDING, PaymentOutcome.PAID, Verdict.RESOLVED, True),
        (PaymentOutcome.PENDING, PaymentOutcome.FAILED, Verdict.RESOLVED, True),
        (PaymentOutcome.PENDING, PaymentOutcome.PENDING, Verdict.DUPLICATE, False),
        (PaymentOutcome.PAID, PaymentOutcome.PAID, Verdict.DUPLICATE, False),
        (PaymentOutcome.PAID, PaymentOutcome.PENDING, Verdict.DUPLICATE, False),
        (PaymentOutcome.PAID, PaymentOutcome.FAILED, Verdict.CONFLICT, False),
        (PaymentOutcome.FAILED, PaymentOutcome.PAID, Verdict.CONFLICT, False),
    ],
)
def test_ledger(
    held: PaymentOutcome | None, incoming: PaymentOutcome, verdict: Verdict, delivered: bool
) -> None:
    new = result(incoming)
    got = decide(result(held) if held else None, new)
    assert got is verdict
    assert delivers(got, new) is delivered


def test_another_amount_for_a_paid_transaction_is_a_conflict() -> None:
    assert decide(result(PaymentOutcome.PAID), result(PaymentOutcome.PAID, 1)) is Verdict.CONFLICT


def test_event_ids_are_stable_per_transaction_and_outcome() -> None:
    paid = result(PaymentOutcome.PAID)
    assert paid.event_id() == result(PaymentOutcome.PAID, 5).event_id()
    assert paid.event_id() != result(PaymentOutcome.FAILED).event_id()
    event = paid.event()
    assert event["type"] == "payment.paid"
    assert event["dossier_code"] == DOSSIER
    assert event["payment"]["amount_vnd"] == 150000


# -- expected fees, schedules, topics -------------------------------------------------------------


def _procedure(*totals: list[int], channel: int = 2) -> dict[str, Any]:
    limits = [{"fees": [{"amount_vnd": a} for a in fees]} for fees in totals]
    return {"channels": [{"channel": channel, "time_limits": limits}]}


def test_expected_fee_prefers_the_dossier_then_an_unambiguous_procedure() -> None:
    record = {"fees": [{"amount_vnd": 100000}, {"amount_vnd": 50000}]}
    assert expected_fee(record, _procedure([1])) == 150000
    assert expected_fee({"fees": []}, _procedure([30000, 20000])) == 50000
    assert expected_fee({"fees": [{"amount_vnd": None}]}, None) is None
    assert expected_fee(None, _procedure([50000], [50000])) == 50000
    assert expected_fee(None, _procedure([50000], [70000])) is None  # ambiguous
    assert expected_fee(None, _procedure([50000], channel=1)) is None  # in person only
    assert expected_fee(None, None) is None


def test_next_run_is_the_next_local_time() -> None:
    morning = datetime(2026, 11, 23, 1, 0, tzinfo=VN_TZ)
    assert next_run(morning, "01:30") == datetime(2026, 11, 23, 1, 30, tzinfo=VN_TZ)
    assert next_run(morning + timedelta(hours=1), "01:30") == datetime(
        2026, 11, 24, 1, 30, tzinfo=VN_TZ
    )


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("payment.#", "payment.paid", True),
        ("payment.*", "payment.paid", True),
        ("#", "payment.paid", True),
        ("procedure.#", "payment.paid", False),
        ("payment.paid", "payment.failed", False),
        ("*.paid", "payment.paid", True),
        ("payment.*.x", "payment.paid", False),
    ],
)
def test_topic_matching(pattern: str, key: str, matches: bool) -> None:
    assert topic_matches(pattern.split("."), key.split(".")) is matches


def test_wire_time_is_24_hour_local() -> None:
    assert wire_time(datetime(2026, 11, 23, 7, 5, 9, tzinfo=UTC)) == "20261123140509"


def test_the_day_reconciled_is_the_local_previous_day() -> None:
    # 00:30 in Hanoi on the 23rd is still the 22nd in UTC: yesterday is the 22nd, locally.
    assert previous_day(datetime(2026, 11, 22, 17, 30, tzinfo=UTC)).isoformat() == "2026-11-22"


async def test_the_daily_reconciliation_waits_for_run_at_and_retries_a_failed_run() -> None:
    """The schedule's logic, with a recorded clock and sleep (no waiting)."""
    now = [datetime(2026, 11, 23, 0, 0, tzinfo=VN_TZ)]  # midnight in Hanoi
    sleeps: list[float] = []
    days: list[str] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += timedelta(seconds=seconds)
        if len(sleeps) == 4:
            raise asyncio.CancelledError  # end the endless schedule here

    class Flaky:
        config = CONFIG

        async def run(self, day: Any, now: datetime | None = None) -> dict[str, Any]:
            days.append(day.isoformat())
            if len(days) == 1:
                raise RuntimeError("the platform is down")
            return {}

    with pytest.raises(asyncio.CancelledError):
        await run_daily(Flaky(), retry_after_s=600, clock=lambda: now[0], sleep=sleep)
    # 90 minutes until 01:30; the run fails; 10 minutes; it succeeds; the next day's 01:30.
    assert sleeps[:3] == [5400, 600, 86400 - 600]
    assert days == ["2026-11-22", "2026-11-22", "2026-11-23"]


@pytest.mark.parametrize(
    ("platform_offset_s", "words"),
    [
        (0, ""),
        (299, ""),  # within the tolerance
        (-301, "301 s apart"),
        (3 * 3600, "3 h later"),
        (-12 * 3600 + 40, "12 h earlier"),  # a 12-hour clock, to the minute
        (90 * 60, "5400 s apart"),  # an hour and a half is not a clock error
    ],
)
def test_reconciliation_names_a_whole_hours_difference_a_clock_error(
    platform_offset_s: int, words: str
) -> None:
    hub = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    said = time_difference(hub, hub + timedelta(seconds=platform_offset_s), 300.0)
    if not words:
        assert said == ""
        return
    assert words in said
    assert ("clock error" in said) == (" h " in words)
    assert "hub 2026-11-23 10:00:00" in said  # shown in Vietnam's time


def test_every_kind_of_finding_is_described_in_the_reconciler() -> None:
    from connectors.payment_platform import reconcile

    assert "time_mismatch" in reconcile.KINDS
    for kind in reconcile.KINDS:  # the module's table of kinds names each one
        assert f"| `{kind}` |" in (reconcile.__doc__ or ""), kind
