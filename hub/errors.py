"""The hub's one error tree.

Every failure the hub reasons about is a `HubError`. The two branches decide what happens to a
message: a `TransientError` is retried (in process with tenacity, then through the delay
queues), a `PermanentError` goes to the connector's parking queue with its reason. Library
exceptions are translated into this tree in one function per adapter (for example
`hub.resilience.translate_http_error`), never caught ad hoc in business code.

    HubError
    ├── ConfigError                 configuration is invalid (start-up refuses to go on)
    ├── ValidationFailed            one inbound item is invalid (never reaches a queue)
    ├── TransientError              retry later (a handler crash: delay tiers, then parking)
    │   └── Unavailable             an outage, not a fault of the message: wait, never park
    │       ├── DestinationUnavailable  5xx, 429, connection refused, timeout, "99"
    │       ├── CredentialsRefused      the destination refuses the hub's own credentials
    │       ├── CircuitOpen             the connector is down and this call is not its probe
    │       ├── BrokerUnavailable       RabbitMQ did not confirm a publish
    │       └── StoreUnavailable        the store failed a read or a commit
    └── PermanentError              retrying cannot help: park the message with its reason
        ├── DestinationRejected     the destination refused the item by its business rules
        ├── UnreadableReply         a reply the hub must not or cannot read (bad XML, entities,
        │                           oversized, not what the WSDL says)
        └── UndecodableMessage      a queued message the hub cannot read (a bug or tampering)

This module must never import anything from the rest of the hub.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub raises on purpose. `code`, when it has one, is a stable
    machine code of what went wrong (the destination's own refusal code, or the hub's): the
    dashboard shows words for it, and the delivery journal and the parking queue keep it
    beside the message, which is for the logs and the technical reader."""

    def __init__(
        self, message: str, *, connector: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.connector = connector
        self.code = code


class ConfigError(HubError):
    """The configuration tree is invalid; `problems` lists each one, located."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class ValidationFailed(HubError):
    """One inbound item is invalid. `field` names where, `code` is a stable machine code."""

    code: str

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid") -> None:
        super().__init__(message, code=code)
        self.field = field


class TransientError(HubError):
    """Worth retrying: the cause may go away by itself."""


class Unavailable(TransientError):
    """Something the message needs is not there (a destination, the broker, the store).

    A queue consumer holds the message and waits for the outage to end (`hub.outage`); no
    retry budget is spent and nothing is parked, however long the outage lasts."""


class DestinationUnavailable(Unavailable):
    """The destination did not answer usefully. `cause` says how, for logs and metrics:
    http (see `http_status`), timeout, connect_error, bad_reply or busy (its own "try later")."""

    def __init__(
        self,
        message: str,
        *,
        connector: str | None = None,
        http_status: int | None = None,
        cause: str | None = None,
    ) -> None:
        super().__init__(message, connector=connector)
        self.http_status = http_status
        self.cause = cause or ("http" if http_status is not None else "bad_reply")


class CredentialsRefused(Unavailable):
    """The destination refuses the hub's login, token or client credentials. Only an operator
    can fix it (the configuration), but no message is at fault: they wait, none is parked."""


class CircuitOpen(Unavailable):
    """The destination is down and this call is not the one probe allowed through."""


class BrokerUnavailable(Unavailable):
    """RabbitMQ refused or did not confirm a publish."""


class StoreUnavailable(Unavailable):
    """The store could not read or commit (disk full, locked, I/O error)."""


class PermanentError(HubError):
    """Retrying cannot help; the message is parked with this reason."""


class DestinationRejected(PermanentError):
    def __init__(
        self,
        message: str,
        *,
        connector: str | None = None,
        dossier_code: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, connector=connector, code=code)
        self.dossier_code = dossier_code


class UnreadableReply(PermanentError):
    """A destination's reply that is refused unread or cannot be understood; `code` is a
    stable machine code (invalid_xml, entities, oversized, wsdl_mismatch, invalid_json)."""

    code: str

    def __init__(self, message: str, *, connector: str | None = None, code: str) -> None:
        super().__init__(message, connector=connector, code=code)


class UndecodableMessage(PermanentError):
    """A queued message whose body or headers the hub cannot read."""


class SyncBusy(HubError):
    """Another live process or task is running a catalogue sync; try again later."""
