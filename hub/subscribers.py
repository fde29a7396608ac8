"""Who receives the hub's events: one subscriber per system (section `subscribers.<name>`).

A subscriber is a system that receives the hub's events by HTTP POST: the province's one-stop
system's REST endpoint, a sectoral ministry system. Each has its own queue, retries, circuit
breaker and rate limit. Subscribers belong to the core: every flow ends by publishing events
that some subscriber receives, and connectors check their destinations against this section;
the `webhook` connector delivers to them. This module must never read the environment itself.
"""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator

from hub.config_blocks import (
    DEFAULT_DELAY_TIERS_S,
    BreakerConfig,
    ClientTls,
    DelayTiers,
    RetryConfig,
    Section,
)

# AMQP topic patterns over the hub's routing keys (procedure.created, procedure.#, ...).
_PATTERN = re.compile(r"^(\*|#|[a-z_]+)(\.(\*|#|[a-z_]+))*$")


class SubscriberConfig(Section):
    enabled: bool = True
    url: str = Field(description="where events are POSTed, e.g. https://motcua.example/hub/events")
    token: SecretStr | None = Field(None, description="sent as Authorization: Bearer <token>")
    headers: dict[str, str] = Field(
        default_factory=dict, description="extra headers sent with every event (no secrets)"
    )
    events: list[str] = Field(
        default_factory=lambda: ["procedure.#"], description="routing-key patterns to receive"
    )
    timeout_s: float = Field(10.0, gt=0)
    concurrency: int = Field(4, ge=1, le=64, description="events in flight (one per procedure)")
    batch_size: int = Field(20, ge=1, le=500)
    linger_ms: int = Field(50, ge=0)
    rate_limit_per_s: float = Field(200.0, gt=0)
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    delay_tiers_s: DelayTiers = Field(default_factory=lambda: list(DEFAULT_DELAY_TIERS_S))
    tls: ClientTls | None = Field(None, description="CA bundle and client certificate")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @field_validator("events")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one routing-key pattern, e.g. procedure.#")
        for pattern in value:
            if not _PATTERN.fullmatch(pattern):
                raise ValueError(f"{pattern!r} is not a routing-key pattern like procedure.#")
        return value

    def receives(self, routing_key: str) -> bool:
        """True when one of `events` matches `routing_key` (AMQP topic rules)."""
        return any(topic_matches(p.split("."), routing_key.split(".")) for p in self.events)


def topic_matches(pattern: list[str], words: list[str]) -> bool:
    """AMQP topic matching: `*` is one word, `#` zero or more."""
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(topic_matches(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head in ("*", words[0])) and topic_matches(rest, words[1:])


def destination_problems(
    subscribers: dict[str, SubscriberConfig],
    name: str,
    keys: tuple[str, ...],
    where: tuple[str, ...],
    pattern: str,
) -> list[tuple[tuple[str, ...], str]]:
    """Why `name` cannot be where a connector delivers `keys` (a configuration check): it is
    no enabled subscriber, or it does not receive them all (`pattern` would)."""
    sub = subscribers.get(name)
    if sub is None or not sub.enabled:
        return [
            (where, f"names {name!r}, which is not an enabled subscriber (section subscribers)")
        ]
    if not all(sub.receives(key) for key in keys):
        wanted = " and ".join(keys)
        return [(where, f"subscriber {name!r} must receive {wanted}: add {pattern} to its events")]
    return []
