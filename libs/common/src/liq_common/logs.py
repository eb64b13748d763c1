"""structlog set-up shared by every service: JSON lines to stdout, or a console renderer on a TTY.

Log events are snake_case facts with fields (``batch_flushed``, ``ws_connected``), never f-strings.
Exceptions render without frame locals so settings and payloads never leak into logs.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import msgspec
import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _serializer() -> Any:
    encoder = msgspec.json.Encoder(enc_hook=repr, decimal_format="string")

    def serialize(obj: Any, **_: Any) -> str:
        # structlog passes default=...; msgspec does not take it, so it is dropped here.
        return encoder.encode(obj).decode()

    return serialize


def configure_logging(service: str, level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog (and stdlib logging, for libraries) for one service process.

    Args:
        service: Bound into every line as ``service``.
        level: Minimum level name (``debug``, ``info``, ``warning``, ``error``).
        fmt: ``auto`` (console on a TTY, else JSON), ``json`` or ``console``.

    Raises:
        ValueError: Unknown level or format.
    """
    if level.lower() not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {sorted(_LEVELS)}")
    if fmt not in ("auto", "json", "console"):
        raise ValueError(f"unknown log format {fmt!r}; use auto, json or console")
    numeric = _LEVELS[level.lower()]
    console = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer(serializer=_serializer())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False))
            if not console
            else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries log through stdlib logging; keep them quiet (httpx logs full URLs, which hold secrets).
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr, force=True)
    for noisy in ("httpx", "httpcore", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def truncate(raw: bytes | str, limit: int = 300) -> str:
    """A printable sample of a bad payload for a log line, cut to ``limit`` characters."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text if len(text) <= limit else f"{text[:limit]}…(+{len(text) - limit} chars)"
