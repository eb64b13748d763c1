"""One Bybit market (linear or inverse): list symbols, spread their topics over connections, publish.

Every frame of every connection goes through :meth:`BybitFeed.on_frame`, the one place that catches
bad input: a frame that does not decode, or carries an impossible liquidation, is counted and skipped,
and the next frame is handled as if nothing happened. The symbol list is refreshed every
``instruments_refresh`` seconds: delisted symbols are unsubscribed, new listings are subscribed on a running
connection (or a new one when the 21,000-character limit is reached), without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import httpx
import msgspec
import structlog

from liq_common.backoff import Backoff
from liq_common.events import Market
from liq_common.ingest.connection import ConnectOptions
from liq_common.ingest.health import SlotHealth
from liq_common.ingest.metrics import FeedMetrics
from liq_common.ingest.rejects import Rejected, Rejects, schema_reason
from liq_common.ingest.sink import LiquidationSink
from liq_common.observability import Health
from liq_ingest_bybit.connection import BybitConnection, Heartbeat, Link
from liq_ingest_bybit.instruments import InstrumentsUnavailable, Symbols, list_symbols
from liq_ingest_bybit.normalise import Normaliser
from liq_ingest_bybit.subscriptions import ARGS_LIMIT, Shard, place, topic_of
from liq_ingest_bybit.wire import ENVELOPE_DECODER, FRAME_DECODER, LIQUIDATION_TOPIC

log = structlog.get_logger(__name__)


class SymbolSource:
    """Where the symbols of a market come from: a fixed list, or REST listings."""

    def __init__(
        self,
        market: Market,
        symbols: Symbols,
        *,
        fixed: list[str] | None,
        http: httpx.AsyncClient | None,
        rest_url: str,
        page_limit: int = 1000,
    ) -> None:
        self.market = market
        self.page_limit = page_limit
        self.symbols = symbols
        self.fixed = fixed
        self.http = http
        self.rest_url = rest_url

    async def list(self) -> list[str]:
        """Current symbols.

        Raises:
            InstrumentsUnavailable: The REST listing failed.
        """
        if self.fixed is not None:
            return list(self.fixed)
        assert self.http is not None
        return await list_symbols(self.http, self.rest_url, self.market, self.symbols, self.page_limit)


class BybitFeed:
    """Every ``allLiquidation`` topic of one Bybit market, over as many connections as the limit needs.

    Args:
        market: ``linear`` or ``inverse``.
        url: Websocket URL of the market.
        source: Where symbols come from.
        sink: Publishing sink (de-duplicates replays).
        options: Connection options.
        heartbeat: Heartbeat and subscription timers.
        backoff_factory: Makes the reconnect backoff of each connection.
        refresh_interval: Seconds between symbol listings.
        args_limit: Characters of topics per connection.
        max_frame_bytes: Larger frames are rejected unparsed.
        health: Service health checks.
        slot_factory: Makes the health slot of each connection from its shard index (None: no slots).
    """

    def __init__(
        self,
        market: Market,
        url: str,
        source: SymbolSource,
        sink: LiquidationSink,
        options: ConnectOptions,
        heartbeat: Heartbeat,
        *,
        backoff_factory: Callable[[], Backoff] | None = None,
        refresh_interval: float = 300.0,
        args_limit: int = ARGS_LIMIT,
        max_frame_bytes: int = 1 << 20,
        health: Health | None = None,
        slot_factory: Callable[[str], SlotHealth] | None = None,
    ) -> None:
        self.market = market
        self.url = url
        self.slot_factory = slot_factory
        self.source = source
        self.sink = sink
        self.metrics: FeedMetrics = sink.metrics
        self.options = options
        self.heartbeat = heartbeat
        self.refresh_interval = refresh_interval
        self.args_limit = args_limit
        self.max_frame_bytes = max_frame_bytes
        self.health = health
        self.rejects = Rejects("bybit", market)
        self.normaliser = Normaliser(market, source.symbols)
        self.shards: list[Shard] = []
        self.connections: list[BybitConnection] = []
        self.topics: set[str] = set()
        self.frames = 0
        self.ignored = 0
        self.listings = 0
        self._backoff = backoff_factory
        self._tasks: list[asyncio.Task[None]] = []
        self._log = log.bind(exchange="bybit", market=market)

    def acked_topics(self) -> set[str]:
        """Topics acknowledged on the currently open connections."""
        acked: set[str] = set()
        for connection in self.connections:
            acked |= connection.acked
        return acked

    @property
    def subscribe_failures(self) -> int:
        """Failed topic subscriptions so far (each retried)."""
        return sum(c.subscribe_failures for c in self.connections)

    async def run(self, stop: asyncio.Event) -> None:
        """List symbols, connect, and keep up with new listings until ``stop`` is set."""
        backoff = Backoff(base=1.0, cap=60.0, reset_after=0)
        while not stop.is_set() and not await self.refresh(stop):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff.next_delay())
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.refresh_interval)
                if not stop.is_set():
                    await self.refresh(stop)
        finally:
            await asyncio.gather(*self._tasks)

    async def refresh(self, stop: asyncio.Event) -> bool:
        """List symbols once and subscribe new ones; False if the listing failed."""
        try:
            symbols = await self.source.list()
        except InstrumentsUnavailable as exc:
            self._log.warning("instruments_unavailable", error=str(exc))
            return False
        self.listings += 1
        listed = [topic_of(s) for s in symbols]
        gone = self.topics.difference(listed)
        if gone:  # delisted (or no longer Trading): each connection unsubscribes its share
            self.topics -= gone
            for shard in self.shards:
                shard.remove(gone)
            self._log.info("topics_removed", count=len(gone), topics=sorted(gone)[:5], total=len(self.topics))
        new = [t for t in listed if t not in self.topics]
        if new:
            self.topics.update(new)
            before = len(self.shards)
            place(self.shards, new, self.args_limit)
            for shard in self.shards[before:]:
                self._start(shard, stop)
            self._log.info("topics_added", count=len(new), total=len(self.topics), connections=len(self.shards))
        return True

    def _start(self, shard: Shard, stop: asyncio.Event) -> None:
        connection = BybitConnection(
            shard,
            self.url,
            self.on_frame,
            self.metrics,
            self.options,
            self.heartbeat,
            backoff=self._backoff() if self._backoff is not None else None,
            health=self.health,
            slot=self.slot_factory(str(shard.index)) if self.slot_factory is not None else None,
        )
        self.connections.append(connection)
        self._tasks.append(asyncio.create_task(connection.supervisor.run(stop)))

    async def on_frame(self, raw: bytes, recv_ts: int, link: Link | None = None) -> None:
        """Handle one frame: a liquidation push, a subscribe reply or a pong; count and skip bad ones."""
        self.frames += 1
        self.metrics.frames.inc()
        if len(raw) > self.max_frame_bytes:
            self.rejects.reject("oversized", raw[:300], f"{len(raw)} bytes > {self.max_frame_bytes}")
            return
        try:
            frame = FRAME_DECODER.decode(raw)
        except msgspec.ValidationError as exc:
            self._misfit(raw, exc)
            return
        except msgspec.DecodeError as exc:
            self.rejects.reject("bad_json", raw, str(exc))
            return
        if frame.data is not None:
            if frame.topic is None or not frame.topic.startswith(LIQUIDATION_TOPIC):
                self.ignored += 1
                return
            try:
                events = self.normaliser.normalise(frame.data, recv_ts)
            except Rejected as exc:
                self.rejects.reject(exc.reason, raw, exc.detail)
                return
            if link is not None and link.slot is not None:
                link.slot.data(recv_ts, liquidation=True)
            await self.sink.publish(events)
        elif frame.op in ("ping", "pong", "subscribe"):
            if link is not None:
                await self._reply(frame.op, frame.req_id, bool(frame.success), frame.ret_msg, recv_ts, link)
        elif frame.op == "unsubscribe":
            if not frame.success:  # the topics are forgotten either way: nothing is retried
                self._log.warning("unsubscribe_failed", ret_msg=frame.ret_msg)
        elif frame.topic is not None:
            self.ignored += 1
        else:
            self.rejects.reject("unexpected_frame", raw, "neither a push nor a reply")

    async def _reply(self, op: str, req_id: str, success: bool, ret_msg: str, recv_ts: int, link: Link) -> None:
        """A pong (the link carries frames) or a subscribe reply (acks and failures) on ``link``."""
        if op != "subscribe":
            link.pong.set()
            if link.slot is not None:
                link.slot.data(recv_ts, liquidation=False)
            return
        link.on_reply(req_id, success, ret_msg)
        self.metrics.subscribed.set(len(self.acked_topics()))
        if link.slot is not None and link.acks.acked:
            await link.slot.acknowledged()

    def _misfit(self, raw: bytes, exc: msgspec.ValidationError) -> None:
        """A JSON frame :class:`Frame` refused: a push on a topic we never asked for, or a bad liquidation."""
        try:
            envelope = ENVELOPE_DECODER.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            self.rejects.reject(schema_reason(exc), raw, str(exc))
            return
        if envelope.topic is not None and not envelope.topic.startswith(LIQUIDATION_TOPIC):
            self.ignored += 1
            return
        self.rejects.reject(schema_reason(exc), raw, str(exc))
