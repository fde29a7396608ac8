"""Structured logging: one JSON event per hop, personal data masked by a processor.

Callers use `structlog.get_logger(__name__)` with snake_case event names and bind context
(dossier code, message id, connector) through `structlog.contextvars`. Masking happens here,
once, so no caller has to remember it. This module must never print secrets: the masking
processor runs last before rendering.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from hub.masking import mask


def _mask_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    masked: dict[str, Any] = mask(event_dict)
    return masked


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogates(_: Any, __: str, line: Any) -> Any:
    """The rendered line with any lone surrogate written as its JSON escape (`\\ud800`).

    Callers log values that came from a request (a user name, a header): JSON may escape a
    lone surrogate, and a header that was not UTF-8 arrives as one. No stream can encode it,
    so, left as it is, it would make the log call fail, and with it the request."""
    if not isinstance(line, str) or _SURROGATE.search(line) is None:
        return line
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


def configure_logging(level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library's root logger (for aiohttp, aio-pika), both
    writing to `stream` (standard error unless given: `hub demo` gives a file)."""
    out = sys.stderr if stream is None else stream
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _mask_processor,
    ]
    structlog.configure(
        processors=[*shared, renderer, _escape_surrogates],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
                _escape_surrogates,
            ],
            foreign_pre_chain=[*shared[:4], structlog.stdlib.add_logger_name, _mask_processor],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
