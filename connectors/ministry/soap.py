"""Talks to a ministry system's SOAP service with zeep's asynchronous transport (httpx).

The WSDL is read once at start, from a file or a URL (zeep reads WSDLs synchronously, so it
runs on a worker thread); `soap.address` overrides the address it names. Replies are guarded
before zeep parses them: a reply larger than `max_reply_bytes` is refused while it streams in,
and one that declares a DTD or entities (`<!DOCTYPE`, `<!ENTITY`: billion laughs, external
references) is refused unread. zeep then parses strictly, with DTDs, entities and external
references forbidden, and checks the reply against the WSDL.

Every zeep and httpx exception is translated in `_translate`, most specific first: a SOAP
Server (Receiver) fault, 408/429/5xx, timeouts and connection failures are transient; a
Client (Sender) fault or another HTTP status is the system refusing; invalid XML, entities, an
oversized reply or a reply that does not match the WSDL is an `UnreadableReply`. This module
must never decide what to send or what a reply means: the mapping does.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import structlog
import zeep
import zeep.exceptions
import zeep.helpers
from zeep.transports import AsyncTransport
from zeep.wsse.username import UsernameToken

from connectors.ministry import wsdl
from connectors.ministry.config import MinistryConfig, SoapConfig
from connectors.ministry.mapping import MinistryMapping
from connectors.ministry.wsdl import Locate
from hub.errors import (
    ConfigError,
    CredentialsRefused,
    DestinationRejected,
    DestinationUnavailable,
    HubError,
    UnreadableReply,
)
from hub.resilience import Guard
from hub.tls import client_context

log = structlog.get_logger(__name__)

_RETRYABLE = frozenset({408, 425, 429})
_DECLARATIONS = (b"<!DOCTYPE", b"<!ENTITY")
_SCAN_BYTES = 64 * 1024  # a declaration must come before the root element


class _RefusedReply(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _OutageReply(Exception):
    """An HTTP 5xx (or 408/425/429) whose body is no SOAP fault: a gateway's or a server's
    error page, even when it is XML. zeep reads such XML as an "Unknown fault", which would
    be a refusal of the item; it is the system being away."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status} without a SOAP fault")
        self.status = status


# A SOAP 1.1 or 1.2 Fault element, whatever its prefix.
_FAULT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?Fault[\s>/]")


class WsdlTooLarge(ValueError):
    """A WSDL (or a document it imports) past the system's `max_reply_bytes`: not usable."""


class GuardedTransport(AsyncTransport):
    """zeep's async transport, reading replies with a size cap and refusing declarations."""

    def __init__(
        self,
        max_reply_bytes: int,
        timeout_s: float,
        wsdl_timeout_s: float,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        # `verify` reaches both httpx clients (the WSDL's and the calls'): the system's CA and
        # the hub's client certificate (`tls`).
        super().__init__(  # type: ignore[no-untyped-call]
            timeout=wsdl_timeout_s, operation_timeout=timeout_s, verify_ssl=verify
        )
        self.max_reply_bytes = max_reply_bytes

    def _load_remote_data(self, url: str) -> bytes:
        """A WSDL or a schema it imports, fetched by URL: refused past `max_reply_bytes` as it
        streams in (zeep's own reads it whole, however large)."""
        with self.wsdl_client.stream("GET", url) as reply:
            if reply.status_code >= 400:
                raise zeep.exceptions.TransportError(status_code=reply.status_code)  # type: ignore[no-untyped-call]
            body = bytearray()
            for chunk in reply.iter_bytes():
                body += chunk
                if len(body) > self.max_reply_bytes:
                    raise WsdlTooLarge(f"{url} is larger than {self.max_reply_bytes} bytes")
        return bytes(body)

    async def post(self, address: str, message: bytes, headers: dict[str, str]) -> httpx.Response:
        async with self.client.stream("POST", address, content=message, headers=headers) as reply:
            body = bytearray()
            async for chunk in reply.aiter_bytes():
                body += chunk
                if len(body) > self.max_reply_bytes:
                    raise _RefusedReply(
                        "oversized", f"reply larger than {self.max_reply_bytes} bytes"
                    )
            head = bytes(body[:_SCAN_BYTES]).upper()
            if any(d in head for d in _DECLARATIONS):
                raise _RefusedReply("entities", "reply declares a DTD or entities")
            status = reply.status_code
            if (status >= 500 or status in _RETRYABLE) and not _FAULT.search(body):
                raise _OutageReply(status)
            kept = {
                k: v
                for k, v in reply.headers.items()
                if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
            }
            return httpx.Response(
                reply.status_code, headers=kept, content=bytes(body), request=reply.request
            )


def wsdl_location(config: SoapConfig, mappings_dir: Path) -> str:
    """A URL as is; a relative path from mappings_dir if it is there, else as given."""
    if config.wsdl.startswith(("http://", "https://")):
        return config.wsdl
    path = Path(config.wsdl)
    if not path.is_absolute() and (mappings_dir / path).is_file():
        path = mappings_dir / path
    if not path.is_file():
        raise ConfigError(f"WSDL not found: {config.wsdl}", [f"soap.wsdl: no file {path}"])
    return str(path)


class SoapClient:
    """One system's SOAP client. A WSDL fetched by URL that cannot be read at start is read
    again at the next call (the system is treated as unavailable until then), so a ministry
    that is down when the hub starts does not stop the hub. Once read, the WSDL is checked
    against the configuration and, given one, the mapping (`connectors.ministry.wsdl`)."""

    def __init__(
        self,
        system: str,
        config: MinistryConfig,
        guard: Guard,
        mappings_dir: Path,
        mapping: MinistryMapping | None = None,
        locate: Locate = ".".join,
    ) -> None:
        assert config.soap is not None
        self.system = system
        self.mapping = mapping
        self.locate = locate
        self.connector = guard.name
        self.config = config
        self.soap: SoapConfig = config.soap
        self.guard = guard
        self.location = wsdl_location(self.soap, mappings_dir)
        self.transport = GuardedTransport(
            config.max_reply_bytes,
            config.timeout_s,
            self.soap.wsdl_timeout_s,
            client_context(config.tls),
        )
        self._service: Any = None
        self._slots: dict[str, dict[str, wsdl.Slot]] = {}
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read the WSDL now; `ConfigError` if zeep cannot use it or it lacks an operation the
        configuration names (a URL that does not answer is read again at the first call)."""
        try:
            await self._ensure()
        except DestinationUnavailable:
            if not self.location.startswith(("http://", "https://")):
                raise
            log.warning("ministry_wsdl_deferred", connector=self.connector, wsdl=self.location)

    async def _ensure(self) -> Any:
        async with self._lock:
            if self._service is None:
                self._service = await self._read_wsdl()
            return self._service

    async def _read_wsdl(self) -> Any:
        soap = self.soap
        settings = zeep.Settings(
            strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
        wsse = None
        if soap.wsse is not None:
            wsse = UsernameToken(soap.wsse.username, soap.wsse.password.get_secret_value())  # type: ignore[no-untyped-call]
        try:
            client = await asyncio.to_thread(
                zeep.AsyncClient,
                self.location,
                wsse=wsse,
                transport=self.transport,
                settings=settings,
            )
            service = _service(client, soap)
        except (httpx.HTTPError, OSError, zeep.exceptions.TransportError) as exc:
            raise DestinationUnavailable(
                f"cannot read the WSDL of {self.system} at {self.location}: {exc!r}",
                connector=self.connector,
            ) from None
        except Exception as exc:
            raise ConfigError(
                f"the WSDL of ministry system {self.system} is not usable",
                [f"ministries.{self.system}.soap.wsdl ({self.location}): {exc}"],
            ) from None
        problems = missing_operations(self.system, self.config, service, self.location, self.locate)
        if not problems and self.mapping is not None:
            problems = wsdl.fit_problems(
                self.system,
                self.config,
                self.mapping,
                service._binding._operations,
                self.location,
                self.locate,
            )
        if problems:
            raise ConfigError(f"the WSDL of ministry system {self.system} does not fit", problems)
        self._slots = {n: wsdl.slots(op) for n, op in service._binding._operations.items()}
        return service

    async def submit(self, request: dict[str, Any]) -> Any:
        assert self.config.submit is not None
        return await self.call(self.config.submit.operation, request)

    async def poll(self, params: dict[str, Any]) -> Any:
        """The poll operation, its parameters written in the types the WSDL declares (the
        cursor is kept as text: an `xsd:dateTime` goes out as ISO 8601 with a T)."""
        assert self.config.poll is not None
        return await self.call(self.config.poll.operation, params, typed=True)

    async def call(self, operation: str, params: dict[str, Any], typed: bool = False) -> Any:
        return await self.guard.call(partial(self._call, operation, params, typed))

    async def close(self) -> None:
        await self.transport.aclose()  # type: ignore[no-untyped-call]

    async def _call(self, operation: str, params: dict[str, Any], typed: bool = False) -> Any:
        try:
            service = await self._ensure()
        except ConfigError as exc:  # a WSDL URL first read now, that does not fit
            detail = "; ".join(exc.problems) or exc.message
            raise DestinationRejected(detail, connector=self.connector, code="wsdl") from None
        if typed:
            params = wsdl.typed_params(self._slots.get(operation, {}), params)
        async with self.guard.limiter:
            try:
                reply = await service[operation](**params)
            except Exception as exc:
                raise self._translate(exc) from exc
        return zeep.helpers.serialize_object(reply, target_cls=dict)  # type: ignore[no-untyped-call]

    def _translate(self, exc: BaseException) -> HubError:
        """Every zeep and httpx exception of one call, most specific first."""
        name, connector = self.system, self.connector
        if isinstance(exc, HubError):
            return exc
        if isinstance(exc, _OutageReply):
            return _http_status(exc.status, name, connector)
        if isinstance(exc, _RefusedReply):
            return UnreadableReply(
                f"{name}: {exc}; refused unread", connector=connector, code=exc.reason
            )
        if isinstance(exc, zeep.exceptions.Error):
            return _zeep_error(exc, name, connector)
        if isinstance(exc, TypeError | ValueError):  # arguments the WSDL does not take
            return _mismatch(exc, name, connector)
        if isinstance(exc, httpx.TimeoutException):
            return DestinationUnavailable(f"{name} did not answer in time", connector=connector)
        if isinstance(exc, httpx.HTTPError | OSError):
            return DestinationUnavailable(f"cannot reach {name}: {exc!r}", connector=connector)
        return DestinationUnavailable(
            f"unexpected failure talking to {name}: {exc!r}", connector=connector
        )


def _zeep_error(exc: zeep.exceptions.Error, name: str, connector: str) -> HubError:
    if isinstance(exc, zeep.exceptions.Fault):
        return _fault(exc, name, connector)
    if isinstance(exc, zeep.exceptions.DTDForbidden | zeep.exceptions.EntitiesForbidden):
        return UnreadableReply(f"{name}: {exc}", connector=connector, code="entities")
    if isinstance(exc, zeep.exceptions.XMLSyntaxError) or (
        # zeep's word for a 2xx body it could not parse as XML
        isinstance(exc, zeep.exceptions.TransportError) and 200 <= exc.status_code < 300
    ):
        return UnreadableReply(
            f"{name} replied with invalid XML: {str(exc)[:200]}",
            connector=connector,
            code="invalid_xml",
        )
    if isinstance(exc, zeep.exceptions.TransportError):
        return _http_status(exc.status_code, name, connector)
    return _mismatch(exc, name, connector)  # XMLParseError, ValidationError, ...


def _mismatch(exc: Exception, name: str, connector: str) -> HubError:
    return UnreadableReply(
        f"{name}: the exchange does not match the WSDL: {exc}",
        connector=connector,
        code="wsdl_mismatch",
    )


def _service(client: Any, soap: SoapConfig | None) -> Any:
    assert soap is not None
    service = client.bind(soap.service, soap.port)
    if soap.address is None:
        return service
    # AsyncClient.create_service would return a synchronous proxy: build the right kind.
    return type(service)(client, service._binding, address=soap.address)


# WS-Security's fault codes (OASIS WSS 1.1, §12): the hub's credentials, not the dossier.
WSSE_FAULTS = frozenset(
    {"FailedAuthentication", "InvalidSecurity", "InvalidSecurityToken", "FailedCheck"}
)


def _fault(exc: zeep.exceptions.Fault, name: str, connector: str) -> HubError:
    code = str(exc.code or "")
    message = f"{name} answered a SOAP fault {code}: {exc.message}"[:500]
    local = code.rsplit(":", 1)[-1]
    if local in ("Server", "Receiver"):
        return DestinationUnavailable(message, connector=connector)
    if local in WSSE_FAULTS:  # wait for an operator to correct them; nothing parked
        return CredentialsRefused(message, connector=connector)
    return DestinationRejected(message, connector=connector, code=code or "fault")


def _http_status(status: int, name: str, connector: str) -> HubError:
    if status >= 500 or status in _RETRYABLE:
        return DestinationUnavailable(
            f"{name} answered HTTP {status}", connector=connector, http_status=status
        )
    return DestinationRejected(
        f"{name} refused with HTTP {status}", connector=connector, code=str(status)
    )


def wsdl_problems(
    system: str,
    config: MinistryConfig,
    mappings_dir: Path,
    mapping: MinistryMapping | None = None,
    locate: Locate = ".".join,
) -> list[str]:
    """For `hub check-config`: what is wrong with the system's WSDL file (missing, unusable,
    lacking a configured operation) and, given the mapping, how the mapping and the
    configuration do not fit it. A WSDL URL is checked when the hub first reads it."""
    assert config.soap is not None
    at = f"ministries.{system}"
    try:
        location = wsdl_location(config.soap, mappings_dir)
    except ConfigError as exc:
        return [f"{at}.{p}" for p in exc.problems]
    if location.startswith(("http://", "https://")):
        return []
    settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True)
    try:
        client = zeep.Client(location, settings=settings)  # type: ignore[no-untyped-call]
        service = _service(client, config.soap)
    except Exception as exc:
        return [f"{at}.soap.wsdl: {location} is not a usable WSDL: {exc}"]
    missing = missing_operations(system, config, service, location, locate)
    if missing or mapping is None:
        return missing
    operations = service._binding._operations
    return wsdl.fit_problems(system, config, mapping, operations, location, locate)


def missing_operations(
    system: str, config: MinistryConfig, service: Any, location: str, locate: Locate = ".".join
) -> list[str]:
    """The configured submit and poll operations the bound service does not have."""
    known = set(service._binding._operations)
    wanted = [("submit", config.submit), ("poll", config.poll)]
    return [
        f"{locate(('ministries', system, name, 'operation'))}: {section.operation!r} is not an "
        f"operation of {location} (it has {', '.join(sorted(known))})"
        for name, section in wanted
        if section is not None and section.operation not in known
    ]
