"""HTTP delivery shared by the platforms: outcome classification, rate-limit parsing and pacing.

A request ends in one :class:`Result`. What the worker does with each kind:

* ``ok``: done. ``wait`` > 0 when the response said the rate-limit bucket is empty
  (``X-RateLimit-Remaining: 0``): hold the destination for ``X-RateLimit-Reset-After`` seconds.
* ``rate_limited`` (429): hold the destination for ``wait`` seconds, then send the same request again.
  Not counted as a failed attempt: a 429 means "not processed", so retrying cannot duplicate.
* ``retry``: the request was provably not processed (connection refused, connect timeout, 5xx
  answer): back off and retry, up to the attempt limit.
* ``unknown``: the request may have been processed but no answer came (read timeout, connection
  dropped mid-response). Edits are idempotent and retried; a *post* is not, see ``worker.py``.
* ``rejected``: the platform refused the payload (400): retrying would fail the same way.
* ``message_gone``: the message to edit was deleted by a user.
* ``gone``: the webhook was deleted or the bot token/chat is invalid (404/401/403): the destination
  is disabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx
import msgspec

from liq_common.events import Cascade

Kind = Literal["ok", "rate_limited", "retry", "unknown", "rejected", "message_gone", "gone"]


def quiet_http_logs() -> None:
    """Raise httpx's and httpcore's log level to WARNING.

    httpx logs every request URL at INFO, and our URLs hold the webhook token or the bot token. Called
    by every sink on creation, so an application that configured logging after import is covered too.
    """
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class Result:
    """Outcome of one HTTP request to a platform.

    Attributes:
        kind: See the module docstring.
        message_id: Id of the posted message (``ok`` on a post).
        wait: Seconds every request to this destination must wait (429, or an exhausted bucket).
        shared: The wait applies to every destination of the platform (Discord global limit).
        status: HTTP status, 0 when no response came.
        detail: Short, redacted reason for logs and dead letters.
    """

    kind: Kind
    message_id: str = ""
    wait: float = 0.0
    shared: bool = False
    status: int = 0
    detail: str = ""


def transport_failure(exc: httpx.TransportError, *, idempotent: bool) -> Result:
    """Classify an exception raised before a response arrived (never includes the URL)."""
    name = type(exc).__name__
    # Connect and pool errors happen before a byte is sent; a write error leaves an incomplete request
    # the server cannot act on. Anything later may have been processed.
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.WriteError):
        return Result("retry", detail=name)
    if isinstance(exc, httpx.WriteTimeout):
        return Result("retry", detail=name)
    return Result("retry" if idempotent else "unknown", detail=name)


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def retry_after(response: httpx.Response, body_value: Any) -> float:
    """Seconds to wait after a 429: the larger of the body's ``retry_after`` and ``Retry-After``.

    A body value a hundred times the header is taken as milliseconds (a reported Discord bug,
    reliability.md §8) and the header wins. With neither present, one second.
    """
    body = _float(body_value)
    header = _float(response.headers.get("Retry-After"))
    if body is not None and header is not None and header > 0 and body > header * 100:
        body = None
    values = [v for v in (body, header) if v is not None]
    return max(values) if values else 1.0


def bucket_wait(response: httpx.Response) -> float:
    """Seconds until the bucket refills when ``X-RateLimit-Remaining`` is 0, else 0."""
    if response.headers.get("X-RateLimit-Remaining") != "0":
        return 0.0
    return _float(response.headers.get("X-RateLimit-Reset-After")) or 0.0


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or an empty dict when it is not one."""
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return {}
    return body if isinstance(body, dict) else {}


class Gate:
    """A time before which no request may start (monotonic seconds)."""

    def __init__(self) -> None:
        self.until = 0.0

    def hold(self, seconds: float) -> None:
        """Forbid requests for ``seconds`` from now (never shortens an existing hold)."""
        self.until = max(self.until, time.monotonic() + seconds)


class Pacer:
    """Spaces the requests of one destination and enforces the holds the platform asks for.

    Args:
        min_interval: Least seconds between the starts of two requests.
        shared: A gate shared by every destination of the platform (global rate limits), if any.
    """

    MARGIN = 0.02
    """Seconds added to every platform-requested wait: a request must arrive after, not at, the limit."""

    def __init__(self, min_interval: float, shared: Gate | None = None, rng: random.Random | None = None) -> None:
        self.min_interval = min_interval
        self.own = Gate()
        self.shared = shared or Gate()
        self._rng = rng or random.Random()

    async def ready(self, stop: asyncio.Event) -> bool:
        """Wait until a request may start; False if ``stop`` was set first."""
        while not stop.is_set():
            delay = max(self.own.until, self.shared.until) - time.monotonic()
            if delay <= 0:
                return True
            # asyncio.timeout, not wait_for: on 3.11 wait_for can lose a cancellation that arrives as
            # its timeout fires, leaving a "cancelled" worker running.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
        return False

    def started(self) -> None:
        """Record that a request starts now."""
        self.own.hold(self.min_interval)

    def obey(self, result: Result) -> None:
        """Apply the wait a response asked for, with up to 5% jitter upwards (never less)."""
        if result.wait > 0:
            seconds = result.wait * (1 + self._rng.uniform(0, 0.05)) + self.MARGIN
            (self.shared if result.shared else self.own).hold(seconds)

    def backoff(self, seconds: float) -> None:
        """Hold this destination for a retry backoff delay."""
        self.own.hold(seconds)


class Sink(Protocol):
    """A platform client for one destination (Discord, Telegram, console)."""

    async def post(self, state: Cascade) -> Result:
        """Send a new message for ``state``."""
        ...

    async def edit(self, message_id: str, state: Cascade) -> Result:
        """Replace message ``message_id`` with ``state``."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def now_ms() -> int:
    """Wall-clock milliseconds (records outlive processes, so not monotonic)."""
    return int(time.time() * 1000)
