"""Where the hub's own alerts (`hub.alerts`) are sent: webhooks and e-mail.

Each target (`alerts.webhooks.<name>`, `alerts.email`) has a `Courier`: a bounded queue and a
task of its own that delivers its notifications one at a time, in the order they were
published (so a "resolved" never overtakes its "firing"). `Notifier.publish` only queues: the
hub never waits for a receiver. A delivery that fails for a reason that may pass (a 5xx, 408
or 429, a time-out, a refused connection, an SMTP 4xx) is tried again after
`alerts.retry_initial_s`, doubling up to `retry_max_s`, for at most `give_up_after_s`; one the
receiver refuses for good (another 4xx, an SMTP 5xx) is not repeated. Either way it is logged
and the next one goes. A webhook receives the notification as JSON with `X-Hub-Event-Id` and
`X-Hub-Event-Type` headers (the id stays the same across retries, for the receiver to
de-duplicate); an e-mail carries its two sentences (Vietnamese, then English) and the figures.

This module must never log a token, a password or a notification's recipients' secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import ssl
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

import aiohttp
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from hub.config import AlertEmail, AlertsConfig, AlertWebhook
from hub.errors import DestinationRejected, DestinationUnavailable, HubError
from hub.httputil import dumps, read_capped
from hub.resilience import translate_http_error
from hub.tls import client_context

log = structlog.get_logger(__name__)

EVENT_ID_HEADER = "X-Hub-Event-Id"
EVENT_TYPE_HEADER = "X-Hub-Event-Type"
QUEUE_MAX = 1000  # notifications waiting per target; past that the oldest is dropped
_RETRYABLE = frozenset({408, 425, 429})
MAX_DETAIL_BYTES = 64 * 1024


class Target(Protocol):
    name: str

    async def send(self, notice: dict[str, Any]) -> None:
        """Deliver one notification: `DestinationUnavailable` if worth trying again, another
        `HubError` if not."""
        ...


class WebhookTarget:
    def __init__(self, name: str, config: AlertWebhook, http: aiohttp.ClientSession) -> None:
        self.name = f"webhook.{name}"
        self.config = config
        self.http = http
        self.ssl = client_context(config.tls)

    def _headers(self, notice: dict[str, Any]) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: str(notice["event_id"]),
            EVENT_TYPE_HEADER: str(notice["type"]),
        }
        if self.config.token is not None:
            headers["Authorization"] = f"Bearer {self.config.token.get_secret_value()}"
        return headers

    async def send(self, notice: dict[str, Any]) -> None:
        try:
            async with self.http.post(
                self.config.url,
                data=dumps(notice).encode("utf-8"),
                headers=self._headers(notice),
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
                ssl=self.ssl,
            ) as response:
                if 200 <= response.status < 300:
                    return
                raw = await read_capped(response.content, MAX_DETAIL_BYTES)
                detail = (raw or b"")[:300].decode("utf-8", "replace")
                message = f"{self.name} answered HTTP {response.status}: {detail}".strip()
                if response.status >= 500 or response.status in _RETRYABLE:
                    raise DestinationUnavailable(message, http_status=response.status)
                raise DestinationRejected(message, code=str(response.status))
        except HubError:
            raise
        except Exception as exc:
            raise translate_http_error(exc, self.name, self.name) from exc


class EmailTarget:
    """One message per notification through an SMTP relay (`smtplib`, on a thread: the
    exchange is a few blocking round trips, never on the event loop)."""

    def __init__(self, config: AlertEmail) -> None:
        self.name = "email"
        self.config = config
        context = client_context(config.tls)
        self.ssl = context if isinstance(context, ssl.SSLContext) else ssl.create_default_context()

    def message(self, notice: dict[str, Any]) -> EmailMessage:
        cfg = self.config
        status = "ĐÃ HẾT / RESOLVED" if notice["status"] == "resolved" else "CẢNH BÁO / FIRING"
        about = f" – {notice['connector']}" if notice.get("connector") else ""
        msg = EmailMessage()
        msg["Subject"] = f"[{notice['instance']}] {status}: {notice['rule']}{about}"
        msg["From"] = cfg.sender
        msg["To"] = ", ".join(cfg.to)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(idstring=str(notice["event_id"])[:16])
        figures = "\n".join(
            f"{key}: {notice.get(key)}"
            for key in ("rule", "connector", "value", "threshold", "since", "resolved_at", "detail")
        )
        summary = notice["summary"]
        msg.set_content(f"{summary['vi']}\n\n{summary['en']}\n\n{figures}\n")
        return msg

    async def send(self, notice: dict[str, Any]) -> None:
        msg = self.message(notice)
        try:
            await asyncio.to_thread(self._send, msg)
        except HubError:
            raise
        except smtplib.SMTPResponseException as exc:
            text = f"SMTP {exc.smtp_code} from {self.config.host}"
            if 400 <= exc.smtp_code < 500:
                raise DestinationUnavailable(text, cause="http") from exc
            raise DestinationRejected(text, code=str(exc.smtp_code)) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise DestinationRejected(f"{self.config.host} refused every recipient") from exc
        except (smtplib.SMTPException, OSError) as exc:  # timeouts and refusals are OSErrors
            raise DestinationUnavailable(
                f"cannot send by {self.config.host}: {type(exc).__name__}: {exc}",
                cause="connect_error",
            ) from exc

    def _send(self, msg: EmailMessage) -> None:
        cfg = self.config
        smtp: smtplib.SMTP
        if cfg.security == "tls":
            smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s, context=self.ssl)
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
        with smtp:
            if cfg.security == "starttls":
                smtp.starttls(context=self.ssl)
            if cfg.username is not None and cfg.password is not None:
                smtp.login(cfg.username, cfg.password.get_secret_value())
            smtp.send_message(msg)


class Courier:
    """One target's notifications, delivered in order on a task of their own."""

    def __init__(self, target: Target, config: AlertsConfig) -> None:
        self.target = target
        self.config = config
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_MAX)
        self.sent = self.dropped = 0

    def post(self, notice: dict[str, Any]) -> None:
        if self.queue.full():  # a receiver away for very long: keep the newest
            lost = self.queue.get_nowait()
            self.dropped += 1
            log.error("alert_notification_dropped", target=self.target.name, **_about(lost))
        self.queue.put_nowait(notice)

    async def run(self) -> None:
        while True:
            notice = await self.queue.get()
            await self.deliver(notice)

    async def deliver(self, notice: dict[str, Any]) -> bool:
        cfg = self.config
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(DestinationUnavailable),
            wait=wait_exponential(multiplier=cfg.retry_initial_s, max=cfg.retry_max_s),
            stop=stop_after_delay(cfg.give_up_after_s),
            before_sleep=self._will_retry(notice),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self.target.send(notice)
        except HubError as exc:
            self.dropped += 1
            log.error(
                "alert_notification_dropped",
                target=self.target.name,
                error=exc.message[:300],
                **_about(notice),
            )
            return False
        self.sent += 1
        log.info("alert_notification_sent", target=self.target.name, **_about(notice))
        return True

    def _will_retry(self, notice: dict[str, Any]) -> Any:
        def note(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "alert_notification_failed",
                target=self.target.name,
                attempt=state.attempt_number,
                retry_in_s=round(state.upcoming_sleep, 1),
                error=error.message[:300] if isinstance(error, HubError) else repr(error),
                **_about(notice),
            )

        return note


def _about(notice: dict[str, Any]) -> dict[str, Any]:
    return {
        "rule": notice.get("rule"),
        "status": notice.get("status"),
        "connector": notice.get("connector"),
        "event_id": notice.get("event_id"),
    }


class Notifier:
    """Every target's courier; `publish` queues a notification for each and returns."""

    def __init__(self, couriers: list[Courier]) -> None:
        self.couriers = couriers

    def publish(self, notice: dict[str, Any]) -> None:
        for courier in self.couriers:
            courier.post(notice)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, config: AlertsConfig) -> AsyncIterator[Notifier]:
        """The targets of `config`, their couriers running until exit (what is still queued
        then is not sent: the hub is stopping)."""
        async with contextlib.AsyncExitStack() as stack:
            targets: list[Target] = []
            if config.webhooks:
                http = await stack.enter_async_context(aiohttp.ClientSession())
                targets += [WebhookTarget(n, w, http) for n, w in config.webhooks.items()]
            if config.email is not None:
                targets.append(EmailTarget(config.email))
            couriers = [Courier(t, config) for t in targets]
            tasks = [asyncio.create_task(c.run(), name=f"alerts-{c.target.name}") for c in couriers]
            try:
                yield cls(couriers)
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
