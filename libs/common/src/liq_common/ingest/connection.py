"""The websocket connection supervisor every exchange feed runs.

:class:`WsSupervisor` keeps one connection open and hands it to a *session* coroutine that reads it:

* Reconnects with exponential backoff and full jitter, capped (:class:`~liq_common.backoff.Backoff`);
  the attempts reset once a connection has stayed up for ``reset_after`` seconds.
* An HTTP 418 or 429 answer to the handshake (rate limited / IP banned, exchange-feeds.md §1.8) waits
  ``rate_limited_backoff`` seconds, or the server's ``Retry-After`` if longer: reconnecting fast would
  turn a rate limit into a ban.
* A silent market is not a dead link: with ``protocol_pings`` the supervisor pings every ``ping_interval``
  and declares the link dead when the pong has not come back within ``ping_timeout`` (websockets'
  keepalive). Feeds with an application-level heartbeat (Bybit's ``{"op":"ping"}``) do that in their
  session instead and return a reason.
* Proactive rotation (``rotate_after``): before the exchange's forced close (Binance: 24 h,
  exchange-feeds.md §1.8) a successor connection is opened while the old one keeps reading for
  ``overlap`` seconds, so nothing falls into a gap; the session de-duplicates the overlap by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidHandshake, InvalidStatus, InvalidURI

from liq_common.backoff import Backoff
from liq_common.ingest.health import SlotHealth
from liq_common.ingest.metrics import FeedMetrics
from liq_common.observability import Health

log = structlog.get_logger(__name__)

Session = Callable[[ClientConnection], Awaitable[str | None]]
"""Reads one open connection until it closes (raising ``ConnectionClosed``) or returns a reason to drop it."""

RATE_LIMITED = frozenset({418, 429})


@dataclass(frozen=True)
class ConnectOptions:
    """How to open and watch connections (seconds)."""

    open_timeout: float = 10.0
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    protocol_pings: bool = True
    rate_limited_backoff: float = 300.0
    rotate_after: float | None = None
    overlap: float = 5.0
    max_queue: int = 1024
    max_size: int = 16 << 20
    """Hard cap of one frame; feeds reject smaller oversized frames themselves, so a huge frame costs a
    counted reject instead of the connection (and the good frames queued behind it)."""


@dataclass(eq=False)
class _Live:
    ws: ClientConnection
    task: asyncio.Task[str]
    opened_at: float = field(default_factory=time.monotonic)


class WsSupervisor:
    """Keeps a feed connected to ``url`` and runs ``session`` on each connection.

    Args:
        url: Websocket URL, or a callable returning it (read at each connect).
        session: Coroutine reading one connection.
        metrics: The feed's metrics (connected gauge, reconnects by reason).
        options: Timeouts, keepalive and rotation.
        backoff: Reconnect delays; defaults to 1 s base, 60 s cap, reset after 60 s healthy.
        health: When given, check ``<exchange>_<market>`` follows the connection state.
        name: Extra label for log lines when a feed runs several connections (e.g. a shard number).
        slot: When given, lifecycle events are published and each connection is watched for silence
            (:mod:`liq_common.ingest.health`).
    """

    def __init__(
        self,
        url: str | Callable[[], str],
        session: Session,
        metrics: FeedMetrics,
        options: ConnectOptions,
        *,
        backoff: Backoff | None = None,
        health: Health | None = None,
        name: str = "",
        slot: SlotHealth | None = None,
    ) -> None:
        self._url = url
        self.slot = slot
        self.session = session
        self.metrics = metrics
        self.options = options
        self.backoff = backoff or Backoff(base=1.0, cap=60.0, reset_after=60.0)
        self.health = health
        self.opened = 0
        self.reasons: Tally[str] = Tally()
        self.connected = asyncio.Event()
        self._live: set[_Live] = set()
        self._closing: set[ClientConnection] = set()
        self._health_name = f"{metrics.exchange}_{metrics.market}{f'_{name}' if name else ''}"
        self._log = log.bind(exchange=metrics.exchange, market=metrics.market, conn=name or None)

    @property
    def url(self) -> str:
        """The URL the next connection goes to."""
        return self._url() if callable(self._url) else self._url

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until ``stop`` is set; then close every connection and return."""
        current: _Live | None = None
        retiring: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                if current is None:
                    current = await self._open(stop)
                    if current is None:
                        return
                outcome = await self._watch(current, stop)
                if outcome == "stop":
                    return
                if outcome == "rotate":
                    self._count("rotation")
                    successor = await self._open(stop, rotation=True)
                    if successor is None:
                        return
                    task = asyncio.create_task(self._retire(current, stop))
                    retiring.add(task)
                    task.add_done_callback(retiring.discard)
                    current = successor
                    continue
                reason = current.task.result()
                self._count(reason)
                if self.slot is not None:
                    await self.slot.closed(reason)
                self.backoff.healthy_since(current.opened_at)
                current = None
                await self._pause(stop, self.backoff.next_delay())
        finally:
            was_up = bool(self._live)
            for live in list(self._live):
                await self._close(live)
            for task in list(retiring):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if was_up and self.slot is not None:
                await self.slot.closed("shutdown")

    async def _open(self, stop: asyncio.Event, rotation: bool = False) -> _Live | None:
        """Connect, retrying with backoff until it works; None when ``stop`` is set first."""
        opts = self.options
        while not stop.is_set():
            url = self.url
            try:
                ws = await connect(
                    url,
                    open_timeout=opts.open_timeout,
                    ping_interval=opts.ping_interval if opts.protocol_pings else None,
                    ping_timeout=opts.ping_timeout if opts.protocol_pings else None,
                    close_timeout=2.0,
                    compression=None,
                    max_queue=opts.max_queue,
                    max_size=opts.max_size,
                )
            except InvalidStatus as exc:
                status = exc.response.status_code
                reason = f"http_{status}"
                if status in RATE_LIMITED:
                    delay = max(self.backoff.penalty(opts.rate_limited_backoff), _retry_after(exc))
                else:
                    delay = self.backoff.next_delay()
                self._log.warning("ws_handshake_refused", status=status, retry_in=round(delay, 3))
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                reason = "connect_failed"
                delay = self.backoff.next_delay()
                self._log.warning("ws_connect_failed", error=repr(exc), retry_in=round(delay, 3))
            else:
                if self.slot is not None:
                    await self.slot.opened(rotation)  # before the session starts: it watches the new session
                live = _Live(ws=ws, task=asyncio.create_task(self._serve(ws)))
                self._live.add(live)
                self.opened += 1
                self.metrics.connected.inc()
                self.connected.set()
                if self.health is not None:
                    self.health.set(self._health_name, True)
                self._log.info("ws_connected", url=url, connection=self.opened)
                return live
            self._count(reason)
            await self._pause(stop, delay)
        return None

    async def _serve(self, ws: ClientConnection) -> str:
        """Run the session on ``ws``; returns why the connection ended."""
        reason = "closed"
        slot = self.slot
        watcher = asyncio.create_task(slot.watch(ws)) if slot is not None else None
        try:
            reason = await self.session(ws) or "closed"
        except ConnectionClosedOK:
            reason = "closed_by_us" if ws in self._closing else "server_closed"
        except ConnectionClosed as exc:
            reason = "ping_timeout" if "keepalive ping timeout" in str(exc) else "connection_lost"
        except Exception as exc:  # noqa: BLE001 - a session bug must cost a reconnect, not the feed
            reason = "session_error"
            self._log.exception("ws_session_failed", error=repr(exc))
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await ws.close()
            self._closing.discard(ws)
            self.metrics.connected.dec()
        if slot is not None and slot.tripped is not None and reason != "session_error":
            reason = "silent"
        self._log.info("ws_closed", reason=reason, code=ws.close_code)
        return reason

    async def _watch(self, live: _Live, stop: asyncio.Event) -> Literal["closed", "rotate", "stop"]:
        rotate_after = self.options.rotate_after
        timeout = None if rotate_after is None else max(0.0, live.opened_at + rotate_after - time.monotonic())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((live.task, stopper), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if live.task.done():
            self._forget(live)
            return "closed"
        return "stop" if stop.is_set() else "rotate"

    async def _retire(self, old: _Live, stop: asyncio.Event) -> None:
        """Keep the old connection reading for the overlap, then close it."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.options.overlap):
                await stop.wait()
        await self._close(old)
        self._log.info("ws_rotated", overlap=self.options.overlap)

    async def _close(self, live: _Live) -> None:
        self._closing.add(live.ws)
        await live.ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await live.task
        self._forget(live)

    def _forget(self, live: _Live) -> None:
        self._live.discard(live)
        if not self._live:
            self.connected.clear()
            if self.health is not None:
                self.health.set(self._health_name, False, "disconnected")

    def _count(self, reason: str) -> None:
        self.reasons[reason] += 1
        self.metrics.reconnect(reason)

    @staticmethod
    async def _pause(stop: asyncio.Event, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stop.wait()


def _retry_after(exc: InvalidStatus) -> float:
    """Seconds from the response's ``Retry-After`` header (0 when absent or not a number)."""
    value = exc.response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return 0.0
