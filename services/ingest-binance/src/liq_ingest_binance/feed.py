"""One Binance liquidation feed (USD-M or COIN-M): connection, frame handling, publishing.

Every frame goes through :meth:`BinanceFeed.on_frame`, the one place that catches bad input: a frame
that does not decode, or decodes to an impossible liquidation, is counted and skipped, and the next
frame is handled as if nothing happened. A frame naming a symbol exchangeInfo did not list is parked
while the table is refreshed, then normalised (or rejected as ``unknown_symbol``): never guessed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import msgspec
import structlog
from websockets.asyncio.client import ClientConnection

from liq_common.backoff import Backoff
from liq_common.events import Market
from liq_common.ingest.connection import ConnectOptions, WsSupervisor
from liq_common.ingest.health import SlotHealth
from liq_common.ingest.metrics import FeedMetrics
from liq_common.ingest.rejects import Rejected, Rejects, schema_reason
from liq_common.ingest.sink import LiquidationSink
from liq_common.observability import Health
from liq_ingest_binance.instruments import Instruments
from liq_ingest_binance.normalise import Normaliser, UnknownSymbol
from liq_ingest_binance.subscription import StreamCheck, streams_of
from liq_ingest_binance.wire import FRAME_DECODER, Event, Frame

log = structlog.get_logger(__name__)

CONTROL_MARKER = b"markPrice"
"""Found within the first ``CONTROL_PREFIX`` bytes of every mark-price frame (``{"stream":"!markPrice@arr@1s",...``
or raw ``[{"e":"markPriceUpdate",...``) and never there in a ``forceOrder`` frame, so the control stream is
recognised without parsing its ~600-symbol arrays."""
CONTROL_PREFIX = 40

MAX_PARKED = 10_000
"""Frames waiting for an exchangeInfo refresh; beyond this they are rejected (``unknown_symbol_backlog``)."""


class BinanceFeed:
    """Reads one Binance liquidation stream and publishes what it carries.

    Args:
        market: ``linear`` (USD-M) or ``inverse`` (COIN-M).
        url: Websocket URL (any of the three envelopes).
        instruments: exchangeInfo table of the market.
        sink: Publishing sink (de-duplicates rotation overlap and replays).
        options: Connection options (keepalive, rotation).
        backoff: Reconnect delays.
        refresh_interval: Seconds between periodic exchangeInfo refreshes.
        max_frame_bytes: Larger frames are rejected unparsed.
        subscribe_retry: Seconds between SUBSCRIBE attempts when the stream is not subscribed.
        health: Service health checks.
        slot: Lifecycle events and silence watch of the connection (None: neither).
        control_stream: Control stream subscribed on the same connection (``!markPrice@arr@1s``), or "".
    """

    def __init__(
        self,
        market: Market,
        url: str,
        instruments: Instruments,
        sink: LiquidationSink,
        options: ConnectOptions,
        *,
        backoff: Backoff | None = None,
        refresh_interval: float = 3600.0,
        max_frame_bytes: int = 1 << 20,
        subscribe_retry: float = 30.0,
        health: Health | None = None,
        slot: SlotHealth | None = None,
        control_stream: str = "",
    ) -> None:
        self.market = market
        self.slot = slot
        self.control_stream = control_stream
        self.control_frames = 0
        self.instruments = instruments
        self.sink = sink
        self.metrics: FeedMetrics = sink.metrics
        self.rejects = Rejects("binance", market)
        self.normaliser = Normaliser(market, instruments)
        self.refresh_interval = refresh_interval
        self.max_frame_bytes = max_frame_bytes
        self.frames = 0
        self.streams = streams_of(url)
        self.subscribe_retry = subscribe_retry
        self.subscribe_failures = 0
        self.check: StreamCheck | None = None
        self.parked: list[tuple[Event, bytes, int]] = []
        self.supervisor = WsSupervisor(
            url, self.session, self.metrics, options, backoff=backoff, health=health, slot=slot
        )
        self._resolver: asyncio.Task[None] | None = None
        self._log = log.bind(exchange="binance", market=market)

    async def run(self, stop: asyncio.Event) -> None:
        """Load instruments, then stay connected and publishing until ``stop`` is set."""
        await self.instruments.refresh()
        refresher = asyncio.create_task(self._refresh_periodically(stop))
        try:
            await self.supervisor.run(stop)
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            if self._resolver is not None:
                # Parked frames are resolved before the sink is drained, unless exchangeInfo stays down.
                try:
                    await asyncio.wait_for(self._resolver, timeout=self.instruments.min_refresh_gap + 5.0)
                except TimeoutError:
                    for _, raw, _ in self.parked:
                        self.rejects.reject("unknown_symbol_unresolved", raw, "exchangeInfo unavailable at shutdown")
                    self.parked = []

    async def session(self, ws: ClientConnection) -> str | None:
        """Check the stream is subscribed, then read the connection until it closes, frame by frame."""
        check = StreamCheck(ws, self.streams, self.subscribe_retry, self._subscribe_failed, self.control_stream)
        self.check = check
        try:
            await check.start()
            while True:
                raw = await ws.recv(decode=False)
                await self.on_frame(raw, int(time.time() * 1000), check)
        finally:
            check.close()

    async def on_frame(self, raw: bytes, recv_ts: int, check: StreamCheck | None = None) -> None:
        """Handle one frame of the connection ``check`` belongs to: decode, normalise, publish; count and
        skip it when it is bad."""
        slot = self.slot
        if self.control_stream and raw.find(CONTROL_MARKER, 0, CONTROL_PREFIX) >= 0:  # no slice copy
            self.control_frames += 1
            if slot is not None:
                slot.data(recv_ts, liquidation=False)
            return
        self.frames += 1
        self.metrics.frames.inc()
        if len(raw) > self.max_frame_bytes:
            self.rejects.reject("oversized", raw[:300], f"{len(raw)} bytes > {self.max_frame_bytes}")
            return
        try:
            frame = FRAME_DECODER.decode(raw)
        except msgspec.ValidationError as exc:
            self.rejects.reject(schema_reason(exc), raw, str(exc))
            return
        except msgspec.DecodeError as exc:
            self.rejects.reject("bad_json", raw, str(exc))
            return
        event = frame.event()
        if event is None:
            await self._control(frame, raw, check)
            return
        try:
            liquidation = self.normaliser.normalise(event, recv_ts)
        except Rejected as exc:
            self.rejects.reject(exc.reason, raw, exc.detail)
            return
        except UnknownSymbol as exc:
            self._park(event, raw, recv_ts, exc.symbol)
            return
        if slot is not None:
            slot.data(recv_ts, liquidation=True)
        await self.sink.publish((liquidation,))

    async def _control(self, frame: Frame, raw: bytes, check: StreamCheck | None) -> None:
        """Replies to our LIST_SUBSCRIPTIONS/SUBSCRIBE requests (exchange-feeds.md §1.3)."""
        if check is not None and check.owns(frame.id):
            error = None if frame.code is None else f"code={frame.code} msg={frame.msg!r}"
            await check.on_reply(frame.id, frame.result, error)  # type: ignore[arg-type]
            if check.confirmed and self.slot is not None:
                await self.slot.acknowledged()
        elif frame.code is not None:
            self.rejects.reject("error_reply", raw, f"code={frame.code} msg={frame.msg!r}")
        else:
            self.rejects.reject("unexpected_frame", raw, "neither a forceOrder event nor a reply to our request")

    def _subscribe_failed(self, error: str) -> None:
        self.subscribe_failures += 1
        self.metrics.subscribe_failures.inc()
        self._log.warning("subscribe_failed", streams=self.streams, error=error, retry_in=self.subscribe_retry)

    def _park(self, event: Event, raw: bytes, recv_ts: int, symbol: str) -> None:
        if len(self.parked) >= MAX_PARKED:
            self.rejects.reject("unknown_symbol_backlog", raw, f"{symbol}: {MAX_PARKED} frames already wait")
            return
        self.parked.append((event, raw, recv_ts))
        if self._resolver is None or self._resolver.done():
            self._log.info("unknown_symbol_refresh", symbol=symbol)
            self._resolver = asyncio.create_task(self._resolve_parked())

    async def _resolve_parked(self) -> None:
        """Refresh exchangeInfo (retrying until it answers), then normalise the parked frames."""
        backoff = Backoff(base=self.instruments.min_refresh_gap, cap=60.0, reset_after=0)
        while True:
            gap = self.instruments.min_refresh_gap
            wait = self.instruments.last_fetch + gap - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if await self.instruments.refresh():
                break
            await asyncio.sleep(backoff.next_delay())
        parked, self.parked = self.parked, []
        ready = []
        for event, raw, recv_ts in parked:
            try:
                ready.append(self.normaliser.normalise(event, recv_ts))
            except UnknownSymbol as exc:
                self.rejects.reject("unknown_symbol", raw, f"{exc.symbol} is not in exchangeInfo after a refresh")
            except Rejected as exc:
                self.rejects.reject(exc.reason, raw, exc.detail)
        await self.sink.publish(ready)

    async def _refresh_periodically(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.refresh_interval)
            if not stop.is_set():
                await self.instruments.refresh()
