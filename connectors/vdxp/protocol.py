"""The document axis (VDXP) protocol as the hub speaks it: calls, JSON shapes, signing.

Every call is an HTTP `POST` to `<base_url><path>`; the system calling is named by a header
and every request is signed (below). Replies are JSON `{"status": "OK", ...}`; a refusal is a
non-2xx status with `{"status": "FAIL", "errorCode": "...", "error": "..."}`.

* `getReceivedEdocList`: JSON `{"messagetype": "edoc" | "status", "limit": N}`; the reply's
  `data` lists the items waiting for the caller (`ListedItem` below).
* `getEdoc`: JSON `{"docId": "..."}`; the reply is the edXML itself (application/xml), or a
  MIME package (`connectors.vdxp.mime`): a file that is one, or a multipart/related reply.
* `updateStatus`: JSON `{"docId", "status": "done" | "fail", "reason"?}`; `{"status": "OK"}`.
* `sendEdoc`: multipart/form-data with a text part `messagetype` and a file part `file` (the
  edXML, application/xml, or a package, headers included, with the package's Content-Type);
  the reply names the axis's `docId` for it.
* `getAgencyList`: JSON `{}`; `data` lists `{"organId", "organName"}`.

A listed item (`ListedItem`) is `{"docId", "messagetype", "from", "created"}`: `docId` is the
axis's transport id of that item, not the edXML DocumentId (the same document can be listed
again under a new transport id when a sender sends it twice). An item stays listed until it
is acknowledged with `updateStatus` (`done`: taken; `fail`: refused, with the reason).

Signing. Each request carries three headers (names configurable, `SigningScheme`):
the system id, a timestamp in unix seconds, and `hex(HMAC-SHA256(secret, canonical))`.
`canonical` joins the configured components with the separator (default `"\\n"`), in order;
the components are `method` (upper case), `path` (with the query, if any), `timestamp`,
`system` and `body_sha256` (hex SHA-256 of the exact body bytes, multipart included). The
default is `method, path, timestamp, system, body_sha256`. The receiver recomputes it with the
system's secret, compares in constant time and refuses timestamps further than `max_skew_s`
from its clock.

This module must never open a connection, read configuration or import hub code: the axis
client (`connectors.vdxp.client`) and the simulator (`sims.vdxp.simulator`) share it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

LIST_PATH = "/getReceivedEdocList"
GET_PATH = "/getEdoc"
ACK_PATH = "/updateStatus"
SEND_PATH = "/sendEdoc"
AGENCIES_PATH = "/getAgencyList"

MessageType = Literal["edoc", "status"]
MESSAGE_TYPES: tuple[MessageType, ...] = get_args(MessageType)
AckStatus = Literal["done", "fail"]
Component = Literal["method", "path", "timestamp", "system", "body_sha256"]
COMPONENTS: tuple[Component, ...] = get_args(Component)
DEFAULT_COMPONENTS: tuple[Component, ...] = ("method", "path", "timestamp", "system", "body_sha256")

SEND_FILE_FIELD = "file"
SEND_TYPE_FIELD = "messagetype"
EDXML_CONTENT_TYPE = "application/xml"
MAX_REASON_CHARS = 1000


@dataclass(frozen=True)
class SigningScheme:
    system_header: str = "X-Vdxp-System"
    timestamp_header: str = "X-Vdxp-Timestamp"
    signature_header: str = "X-Vdxp-Signature"
    components: tuple[Component, ...] = DEFAULT_COMPONENTS
    separator: str = "\n"
    max_skew_s: float = 300.0

    def canonical(
        self, method: str, path: str, timestamp: str, system: str, body_sha256: str
    ) -> str:
        values: dict[Component, str] = {
            "method": method.upper(),
            "path": path,
            "timestamp": timestamp,
            "system": system,
            "body_sha256": body_sha256,
        }
        return self.separator.join(values[c] for c in self.components)

    def headers(
        self, system: str, secret: str, method: str, path: str, body_sha256: str, now: float
    ) -> dict[str, str]:
        """The three signing headers of one request."""
        timestamp = str(int(now))
        text = self.canonical(method, path, timestamp, system, body_sha256)
        return {
            self.system_header: system,
            self.timestamp_header: timestamp,
            self.signature_header: signature(secret, text),
        }

    def verify(
        self,
        headers: Mapping[str, str],
        secret_of: Callable[[str], str | None],
        method: str,
        path: str,
        body_sha256: str,
        now: float,
    ) -> str:
        """The system that signed the request; `SignatureError` says why it is refused."""
        system = headers.get(self.system_header, "")
        stamp = headers.get(self.timestamp_header, "")
        given = headers.get(self.signature_header, "")
        if not system or not stamp or not given:
            raise SignatureError("missing signing headers")
        secret = secret_of(system)
        if secret is None:
            raise SignatureError(f"unknown system {system[:60]!r}")
        try:
            skew = abs(now - int(stamp))
        except ValueError:
            raise SignatureError("the timestamp is not unix seconds") from None
        if skew > self.max_skew_s:
            raise SignatureError(f"the timestamp is {skew:.0f} s away from now")
        expected = signature(secret, self.canonical(method, path, stamp, system, body_sha256))
        if not hmac.compare_digest(expected.encode(), given.strip().lower().encode()):
            raise SignatureError("the signature does not match")
        return system


class SignatureError(Exception):
    """A request whose signature is missing, stale or wrong."""


def signature(secret: str, canonical: str) -> str:
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def ok(**fields: object) -> dict[str, object]:
    return {"status": "OK", **fields}


def fail(code: str, message: str) -> dict[str, object]:
    return {"status": "FAIL", "errorCode": code, "error": message}
