"""A stand-in for the national payment platform (Nền tảng thanh toán), for tests and demos.

It plays the platform of PROTOCOL.md on loopback: it keeps its own record of transactions,
answers the hub's status checks and daily listings with signed replies, and sends the hub
result callbacks, honest ones and the broken ones a platform or an attacker might send
(`VARIANTS`). Faults (outages, slow or wrongly signed replies, a truncated listing) and the
record are set from Python or over the `/_sim/...` control endpoints under `base_url`.

It signs with `signing.py` over the connector's `Signatures` configuration (which pulls in
`hub.config_blocks`) and imports no other hub code. It must never bend its rules to suit the
hub, never log or print the secret key, and never be exposed beyond a test or demo machine
(its secret is throwaway and its `_sim` endpoints have no authentication).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from connectors.payment_platform.config import PaymentPlatformConfig, Signatures
from connectors.payment_platform.signing import SIGNATURE_FIELD, sign, verify
from sims.loopback import (
    LoopbackServer,
    apply_changes,
    parse_count,
    parse_seconds,
    read_json,
    serve_until_signalled,
)

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
WIRE_TIME = "%Y%m%d%H%M%S"
SIM_PREFIX = "/_sim"
OK, NOT_FOUND, WRONG_PARTNER, BAD_SIGNATURE, BAD_REQUEST = "00", "01", "97", "98", "99"
PAID, PENDING, FAILED = "1", "3", "4"  # TrangThaiGD
STATES = (PAID, PENDING, FAILED)
RESULT_CODES = {PAID: "00", PENDING: "01", FAILED: "02"}  # TrangThaiGD → callback MaLoi
CALLBACK_TYPE, STATUS_TYPE, LISTING_TYPE = "KetQuaThanhToan", "TruyVanGiaoDich", "DoiSoat"
UNKNOWN_REFERENCE = "KHONG-TON-TAI-01"
DEFAULT_STATUS_PATH = PaymentPlatformConfig.model_fields["status_path"].default
DEFAULT_RECONCILIATION_PATH = PaymentPlatformConfig.model_fields["reconciliation_path"].default

Variant = Literal[
    "good", "duplicate", "triple", "late", "bad_signature", "missing_signature",
    "tampered", "twelve_hour", "stale", "non_numeric_amount", "foreign_currency",
    "unknown_reference",
]  # fmt: skip
VARIANTS: tuple[Variant, ...] = get_args(Variant)
_REPEATS: dict[str, int] = {"duplicate": 2, "triple": 3}

_dumps = partial(json.dumps, ensure_ascii=False)


def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(payload, status=status, dumps=_dumps)


def _field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""


def wire_time(value: datetime) -> str:
    """`yyyyMMddHHmmss`, 24-hour clock, Vietnam time."""
    return value.astimezone(VN_TZ).strftime(WIRE_TIME)


def twelve_hour_time(value: datetime) -> str:
    """The wrong shape some gateways send: a 12-hour clock and an AM/PM marker."""
    local = value.astimezone(VN_TZ)
    marker = "AM" if local.hour < 12 else "PM"  # not %p: it follows the locale
    return f"{local:%Y%m%d}{local.hour % 12 or 12:02d}{local:%M%S}{marker}"


def _wrong_key(secret: str) -> str:
    return f"sai-{secret}"


# -- the record --------------------------------------------------------------------------------


@dataclass
class SimTransaction:
    """One transaction as the platform holds it. `state` is TrangThaiGD: 1 paid, 3 pending,
    4 failed. `info` is ThongTinGiaoDich (it may name the payer)."""

    reference: str
    transaction_id: str
    amount: int
    currency: str = "VND"
    bank: str = "VCB"
    at: datetime = field(default_factory=lambda: datetime.now(VN_TZ).replace(microsecond=0))
    state: str = PAID
    info: str = ""

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("SimTransaction.at must be timezone-aware")
        if self.state not in STATES:
            raise ValueError(f"state must be one of {list(STATES)}, got {self.state!r}")

    def listed(self) -> dict[str, str]:
        """The transaction as status replies and listings carry it."""
        return {
            "MaGiaoDich": self.transaction_id,
            "MaThamChieu": self.reference,
            "SoTien": str(self.amount),
            "MaTienTe": self.currency,
            "MaNganHang": self.bank,
            "ThoiGianGD": wire_time(self.at),
            "TrangThaiGD": self.state,
        }


def _transaction(item: object) -> SimTransaction:
    """A `/_sim/transactions` item as a transaction; raises ValueError on a malformed one."""
    if not isinstance(item, dict):
        raise ValueError("each transaction must be a JSON object")
    amount, reference = item.get("amount"), item.get("reference")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ValueError("amount must be a non-negative whole number of đồng")
    if not isinstance(reference, str) or not reference:
        raise ValueError("reference is required")
    at = item.get("at")
    when = datetime.now(VN_TZ).replace(microsecond=0) if at is None else _parse_wire_time(at)
    texts = {k: item[k] for k in ("currency", "bank", "state", "info") if k in item}
    if not all(isinstance(v, str) for v in texts.values()):
        raise ValueError("currency, bank, state and info must be strings")
    texts.setdefault("info", f"Nop le phi ho so {reference}")
    tx_id = item.get("transaction_id") or _new_transaction_id(when)
    return SimTransaction(reference, str(tx_id), amount, at=when, **texts)


def _parse_wire_time(value: object) -> datetime:
    if not isinstance(value, str) or len(value) != 14 or not value.isdigit():
        raise ValueError(f"at must be yyyyMMddHHmmss, got {value!r}")
    return datetime.strptime(value, WIRE_TIME).replace(tzinfo=VN_TZ)


def _new_transaction_id(at: datetime) -> str:
    return f"GD{at.astimezone(VN_TZ):%y%m%d}{random.randrange(10**8):08d}"


# -- faults ------------------------------------------------------------------------------------


def _parse_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


_FAULT_PARSERS: dict[str, Any] = {
    "status_outage_remaining": parse_count,
    "delay_s": parse_seconds,
    "bad_reply_signature": _parse_bool,
    "truncate_listing": _parse_bool,
}


@dataclass
class SimFaults:
    """What goes wrong with the platform's answers (callbacks the simulator sends are broken
    through `VARIANTS`, not here).

    - `status_outage_remaining`: HTTP 503 to the next N status checks and listings;
    - `delay_s`: wait this long before answering a status check or a listing;
    - `bad_reply_signature`: sign replies with a wrong key;
    - `truncate_listing`: drop the last listed transaction after signing, so `SoGD` and
      `TongTien` no longer match the list (what the listing's signature exists to catch).
    """

    status_outage_remaining: int = 0
    delay_s: float = 0.0
    bad_reply_signature: bool = False
    truncate_listing: bool = False

    def update(self, changes: dict[str, Any]) -> None:
        """Apply the fields present in `changes`; all or nothing (raises ValueError)."""
        apply_changes(self, changes, _FAULT_PARSERS)


@dataclass
class SentCallback:
    variant: str
    body: dict[str, str]
    http_status: int
    reply: dict[str, Any]


# -- the simulator -----------------------------------------------------------------------------


class PaymentPlatformSimulator(LoopbackServer):
    """The platform on loopback: `async with PaymentPlatformSimulator(code, secret) as sim:`,
    point the hub at `sim.base_url`, set `sim.callback_url` to the hub's callback URL."""

    def __init__(
        self,
        partner_code: str,
        secret: str,
        signatures: Signatures | None = None,
        status_path: str = DEFAULT_STATUS_PATH,
        reconciliation_path: str = DEFAULT_RECONCILIATION_PATH,
        callback_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        late_delay_s: float = 0.5,
    ) -> None:
        for path in (status_path, reconciliation_path):
            if not path.startswith("/") or path.startswith(SIM_PREFIX):
                raise ValueError(f"paths must start with '/' and not with {SIM_PREFIX!r}: {path}")
        super().__init__(host, port)
        self.partner_code, self.secret = partner_code, secret
        self.signatures = signatures or Signatures()
        self.status_path, self.reconciliation_path = status_path, reconciliation_path
        self.callback_url, self.late_delay_s = callback_url, late_delay_s
        self.faults = SimFaults()
        self.transactions: dict[str, SimTransaction] = {}
        self.confirmed: dict[date, list[SimTransaction]] = {}
        self.sent: list[SentCallback] = []
        self.status_checks = 0  # every POST on the status path, outages included
        self.checks_by_transaction: Counter[str] = Counter()  # the ones answered, by MaGiaoDich
        self.listings = 0
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10.0))
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        if self._http is not None:
            await self._http.close()
            self._http = None

    def routes(self, app: web.Application) -> None:
        app.router.add_post(self.status_path, self._status)
        app.router.add_post(self.reconciliation_path, self._listing)
        controls = {
            "faults": self._set_faults,
            "transactions": self._add_transactions,
            "callbacks": self._send_callbacks,
            "confirmed": self._set_confirmed,
            "reset": self._reset,
        }
        for name, handler in controls.items():
            app.router.add_post(f"{SIM_PREFIX}/{name}", _control(handler))
        app.router.add_get(f"{SIM_PREFIX}/state", self._get_state)

    # -- the record, from Python ---------------------------------------------------------------

    def add(self, tx: SimTransaction) -> SimTransaction:
        self.transactions[tx.transaction_id] = tx
        return tx

    def new_transaction(
        self,
        reference: str,
        amount: int,
        at: datetime | None = None,
        state: str = PAID,
        currency: str = "VND",
        bank: str = "VCB",
    ) -> SimTransaction:
        """A transaction with a fresh id (GD + digits) and a payer text, added to the record."""
        when = (at or datetime.now(VN_TZ)).replace(microsecond=0)
        tx_id = _new_transaction_id(when)
        while tx_id in self.transactions:
            tx_id = _new_transaction_id(when)
        info = f"Nop le phi ho so {reference}"  # what a payer types: ASCII, no diacritics
        return self.add(SimTransaction(reference, tx_id, amount, currency, bank, when, state, info))

    def set_state(self, transaction_id: str, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {list(STATES)}, got {state!r}")
        self.transactions[transaction_id].state = state

    def confirm_day(self, day: date, transactions: list[SimTransaction]) -> None:
        """The listing of `day` is exactly `transactions` from now on (not the record's)."""
        self.confirmed[day] = list(transactions)

    def listed_on(self, day: date) -> list[SimTransaction]:
        if day in self.confirmed:
            return list(self.confirmed[day])
        on_day = [tx for tx in self.transactions.values() if tx.at.astimezone(VN_TZ).date() == day]
        return sorted(on_day, key=lambda tx: tx.at)

    def state(self) -> dict[str, Any]:
        return {
            "transaction_count": len(self.transactions),
            "transactions": [tx.listed() for tx in self.transactions.values()],
            "confirmed": {
                day.isoformat(): [tx.transaction_id for tx in txs]
                for day, txs in self.confirmed.items()
            },
            "status_checks": self.status_checks,
            "checks_by_transaction": dict(self.checks_by_transaction),
            "listings": self.listings,
            "callbacks_sent": len(self.sent),
            "sent": [asdict(sent) for sent in self.sent],
            "faults": asdict(self.faults),
        }

    def reset(self) -> None:
        """Forget every transaction, confirmed listing, counter, sent callback and fault."""
        self.faults = SimFaults()
        self.transactions.clear()
        self.confirmed.clear()
        self.sent.clear()
        self.status_checks = self.listings = 0
        self.checks_by_transaction.clear()

    # -- callbacks to the hub ------------------------------------------------------------------

    def callback_body(
        self,
        tx: SimTransaction,
        message_type: str = CALLBACK_TYPE,
        result_code: str | None = None,
        *,
        overrides: dict[str, str] | None = None,
        secret: str | None = None,
    ) -> dict[str, str]:
        """The signed result callback of `tx`; `overrides` replace fields before signing."""
        fields = {
            "LoaiBanTin": message_type,
            "MaLoi": result_code or RESULT_CODES[tx.state],
            "MaDoiTac": self.partner_code,
            "MaThamChieu": tx.reference,
            "SoTien": str(tx.amount),
            "MaTienTe": tx.currency,
            "MaGiaoDich": tx.transaction_id,
            "MaNganHang": tx.bank,
            "ThoiGianGD": wire_time(tx.at),
            "ThongTinGiaoDich": tx.info,
            **(overrides or {}),
        }
        # An unconfigured message type is signed like the first configured one, so the hub
        # refuses it for its type, not for its signature.
        callbacks = self.signatures.callbacks
        order = callbacks.get(message_type) or next(iter(callbacks.values()))
        return {**fields, SIGNATURE_FIELD: sign(fields, order, secret or self.secret)}

    def variant_body(
        self,
        tx: SimTransaction,
        variant: Variant,
        message_type: str = CALLBACK_TYPE,
        result_code: str | None = None,
    ) -> dict[str, str]:
        """The body `variant` sends: signed correctly unless the variant is about the signature."""
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {list(VARIANTS)}, got {variant!r}")
        stale = datetime.now(VN_TZ).replace(microsecond=0) - timedelta(days=10)
        overrides = {
            "twelve_hour": {"ThoiGianGD": twelve_hour_time(tx.at)},
            "stale": {"ThoiGianGD": wire_time(stale)},
            "non_numeric_amount": {"SoTien": "12O000"},
            "foreign_currency": {"MaTienTe": "USD"},
            "unknown_reference": {"MaThamChieu": UNKNOWN_REFERENCE},
        }.get(variant)
        secret = _wrong_key(self.secret) if variant == "bad_signature" else self.secret
        body = self.callback_body(tx, message_type, result_code, overrides=overrides, secret=secret)
        if variant == "tampered":
            body["SoTien"] = str(tx.amount + 100_000)
        elif variant == "missing_signature":
            del body[SIGNATURE_FIELD]
        return body

    async def send_callback(
        self,
        tx: SimTransaction,
        variant: Variant = "good",
        message_type: str = CALLBACK_TYPE,
        result_code: str | None = None,
    ) -> list[dict[str, Any]]:
        """Send the callback of `tx` as `variant`; the hub's replies, one per POST."""
        body = self.variant_body(tx, variant, message_type, result_code)
        if variant == "late":
            await self._sleep(self.late_delay_s)
        return [await self.post_callback(body, variant) for _ in range(_REPEATS.get(variant, 1))]

    async def post_callback(self, body: dict[str, str], variant: str = "custom") -> dict[str, Any]:
        """POST one callback body as JSON to `callback_url`; the hub's reply, recorded in `sent`."""
        if self._http is None or not self.callback_url:
            raise RuntimeError("start the simulator and set callback_url before sending callbacks")
        headers = {"Content-Type": "application/json"}
        async with self._http.post(self.callback_url, data=_dumps(body), headers=headers) as resp:
            text = await resp.text()
        try:
            reply = json.loads(text)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            reply = {"http_status": resp.status, "text": text[:500]}
        self.sent.append(SentCallback(variant, dict(body), resp.status, reply))
        return reply

    # -- the platform's endpoints --------------------------------------------------------------

    async def _status(self, request: web.Request) -> web.Response:
        self.status_checks += 1
        body = await self._accepted(request, STATUS_TYPE, self.signatures.status_request)
        if isinstance(body, web.Response):
            return body
        tx_id, reference = _field(body, "MaGiaoDich"), _field(body, "MaThamChieu")
        self.checks_by_transaction[tx_id] += 1
        tx = self.transactions.get(tx_id)
        if tx is None or tx.reference != reference:
            asked = {"MaThamChieu": reference, "MaGiaoDich": tx_id}
            reply = {"MaLoi": NOT_FOUND, "MoTaLoi": "Không tìm thấy giao dịch", **asked}
        else:
            reply = {"MaLoi": OK, "MoTaLoi": "Thành công", **tx.listed()}
        return _json(self._signed_reply(reply, self.signatures.status_reply))

    async def _listing(self, request: web.Request) -> web.Response:
        self.listings += 1
        body = await self._accepted(request, LISTING_TYPE, self.signatures.listing_request)
        if isinstance(body, web.Response):
            return body
        day_text = _field(body, "NgayGD")
        try:
            day = datetime.strptime(day_text, "%Y%m%d").date()
        except ValueError:
            return _json({"MaLoi": BAD_REQUEST, "MoTaLoi": "NgayGD phải có dạng yyyyMMdd"})
        listed = [tx.listed() for tx in self.listed_on(day)]
        total = sum(int(item["SoTien"]) for item in listed)
        reply = {"MaLoi": OK, "MoTaLoi": "Thành công", "NgayGD": day_text}
        reply |= {"SoGD": str(len(listed)), "TongTien": str(total)}
        signed = self._signed_reply(reply, self.signatures.listing_reply)
        if self.faults.truncate_listing and listed:
            listed.pop()
        return _json({**signed, "DanhSachGD": listed})

    async def _accepted(
        self, request: web.Request, kind: str, order: list[str]
    ) -> web.Response | dict[str, Any]:
        """The request's body if the platform serves it, else the platform's refusal."""
        if self.faults.delay_s > 0:
            await self._sleep(self.faults.delay_s)
        if self.faults.status_outage_remaining > 0:
            self.faults.status_outage_remaining -= 1
            return web.Response(status=503, text="Service Unavailable")
        body = await read_json(request)
        if not isinstance(body, dict):
            return _json({"MaLoi": BAD_REQUEST, "MoTaLoi": "Yêu cầu không hợp lệ"}, 400)
        # The partner code says whose secret to check with, so it comes first.
        if _field(body, "MaDoiTac") != self.partner_code:
            return _json({"MaLoi": WRONG_PARTNER, "MoTaLoi": "Sai mã đối tác"})
        if not verify(body, order, self.secret):
            return _json({"MaLoi": BAD_SIGNATURE, "MoTaLoi": "Sai chữ ký"})
        if _field(body, "LoaiBanTin") != kind:
            return _json({"MaLoi": BAD_REQUEST, "MoTaLoi": f"LoaiBanTin phải là {kind}"})
        return body

    def _signed_reply(self, reply: dict[str, str], order: list[str]) -> dict[str, str]:
        reply = {**reply, "MaDoiTac": self.partner_code}
        key = _wrong_key(self.secret) if self.faults.bad_reply_signature else self.secret
        return {**reply, SIGNATURE_FIELD: sign(reply, order, key)}

    # -- control over HTTP (wrapped by `_control`) ---------------------------------------------

    async def _set_faults(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object of fault fields")
        self.faults.update(body)
        return {"faults": asdict(self.faults)}

    async def _add_transactions(self, body: Any) -> dict[str, Any]:
        added = [_transaction(item) for item in (body if isinstance(body, list) else [body])]
        return {"transactions": [self.add(tx).listed() for tx in added]}

    async def _send_callbacks(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or body.get("variant", "good") not in VARIANTS:
            raise ValueError(f'expected {{"transaction_id", "variant"}}, a variant of {VARIANTS}')
        tx = self.transactions.get(str(body.get("transaction_id")))
        if tx is None:
            raise LookupError(f"no transaction {body.get('transaction_id')!r}")
        return {"replies": await self.send_callback(tx, body.get("variant", "good"))}

    async def _set_confirmed(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("transaction_ids"), list):
            raise ValueError('expected {"day": "YYYY-MM-DD", "transaction_ids": [...]}')
        day = date.fromisoformat(str(body.get("day")))
        ids = [str(tx_id) for tx_id in body["transaction_ids"]]
        unknown = [tx_id for tx_id in ids if tx_id not in self.transactions]
        if unknown:
            raise LookupError(f"unknown transaction_ids {unknown}")
        self.confirm_day(day, [self.transactions[tx_id] for tx_id in ids])
        return {"day": day.isoformat(), "transaction_ids": ids}

    async def _reset(self, body: Any) -> dict[str, Any]:
        self.reset()
        return {"message": "transactions, counters and faults cleared"}

    async def _get_state(self, request: web.Request) -> web.Response:
        return _json(self.state())


ControlHandler = Callable[[Any], Awaitable[dict[str, Any]]]


def _control(handler: ControlHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A `/_sim` endpoint: the JSON body in, `{"status": "ok", …}` out, errors as HTTP codes."""

    async def endpoint(request: web.Request) -> web.Response:
        body = await read_json(request) if request.can_read_body else None
        try:
            return _json({"status": "ok", **await handler(body)})
        except LookupError as exc:
            return _json({"error": "not_found", "message": str(exc)}, 404)
        except ValueError as exc:
            return _json({"error": "bad_request", "message": str(exc)}, 400)
        except RuntimeError as exc:  # no callback_url
            return _json({"error": "conflict", "message": str(exc)}, 409)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _json({"error": "hub_unreachable", "message": type(exc).__name__}, 502)

    return endpoint


# -- standalone --------------------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> None:
    sim = PaymentPlatformSimulator(args.partner_code, args.secret, host=args.host, port=args.port)
    sim.callback_url = args.callback_url

    def describe() -> list[str]:
        base = sim.base_url  # the secret is never printed
        return [
            f"payment platform simulator: {base}  (partner {sim.partner_code})",
            f"  status: POST {sim.status_path}  listing: POST {sim.reconciliation_path}",
            f"  callbacks to {sim.callback_url}  control: {base}/_sim/...",
        ]

    await serve_until_signalled(sim, "payment platform simulator", describe)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the payment platform simulator until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8083)
    parser.add_argument("--partner-code", default="DEMO-TINH", help="MaDoiTac")
    parser.add_argument("--secret", default="sim-secret", help="the throwaway signing key")
    parser.add_argument("--callback-url", default=None, help="where callbacks are POSTed")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
