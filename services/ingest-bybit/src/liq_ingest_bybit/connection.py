"""One Bybit websocket connection: subscribe its shard's topics, keep the heartbeat, read frames.

On every (re)connect all topics of the shard are subscribed again. A housekeeping task sends
``{"op":"ping"}`` every ``heartbeat_interval`` and drops the connection when the pong does not come
within ``pong_timeout`` (Bybit cuts idle connections, and a quiet market sends no data, so the
heartbeat is what tells a dead link from silence, exchange-feeds.md §3.4); it also re-sends failed
or unanswered subscriptions and subscribes topics added to the shard while connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from liq_common.backoff import Backoff
from liq_common.ingest.connection import ConnectOptions, WsSupervisor
from liq_common.ingest.health import SlotHealth
from liq_common.ingest.metrics import FeedMetrics
from liq_common.observability import Health
from liq_ingest_bybit.subscriptions import Acks, Shard
from liq_ingest_bybit.wire import ping_request, unsubscribe_request

log = structlog.get_logger(__name__)

FrameHandler = Callable[[bytes, int, "Link"], Awaitable[None]]


@dataclass(frozen=True)
class Heartbeat:
    """Timers of one connection (seconds)."""

    interval: float = 20.0
    pong_timeout: float = 10.0
    ack_timeout: float = 10.0
    subscribe_retry: float = 30.0
    subscribe_batch: int = 10


class Link:
    """The state of one open connection: its acks and its heartbeat."""

    def __init__(
        self,
        ws: ClientConnection,
        acks: Acks,
        on_failed: Callable[[list[str], str], None],
        slot: SlotHealth | None = None,
    ) -> None:
        self.ws = ws
        self.slot = slot
        self.acks = acks
        self.on_failed = on_failed
        self.pong = asyncio.Event()
        self.drop_reason: str | None = None
        self.requested: set[str] = set()
        """Topics this connection asked for and has not unsubscribed."""
        self.shard_version = -1
        """The shard version ``requested`` was last brought in line with."""
        self.unsubscribes = 0

    def on_reply(self, req_id: str, success: bool, ret_msg: str) -> None:
        """Record a subscribe reply; failed topics are counted and retried later."""
        failed = self.acks.on_reply(req_id, success, ret_msg)
        if failed:
            self.on_failed(failed, ret_msg)


class BybitConnection:
    """Keeps one shard of topics subscribed on one connection.

    Args:
        shard: The topics this connection carries (may grow while running).
        url: Websocket URL of the market.
        on_frame: Handles every frame received (the feed's parser).
        metrics: The feed's metrics.
        options: Connection options (``protocol_pings`` off: Bybit uses its JSON heartbeat).
        heartbeat: Heartbeat and subscription timers.
        slot: Lifecycle events and silence watch of this connection slot (None: neither).
    """

    def __init__(
        self,
        shard: Shard,
        url: str,
        on_frame: FrameHandler,
        metrics: FeedMetrics,
        options: ConnectOptions,
        heartbeat: Heartbeat,
        *,
        backoff: Backoff | None = None,
        health: Health | None = None,
        slot: SlotHealth | None = None,
    ) -> None:
        self.shard = shard
        self.slot = slot
        self.on_frame = on_frame
        self.metrics = metrics
        self.heartbeat = heartbeat
        self.link: Link | None = None
        self.sessions = 0
        self.subscribe_failures = 0
        self.pongs = 0
        self.supervisor = WsSupervisor(
            url, self.session, metrics, options, backoff=backoff, health=health, name=str(shard.index), slot=slot
        )
        self._log = log.bind(exchange="bybit", market=metrics.market, conn=shard.index)

    @property
    def acked(self) -> set[str]:
        """Topics acknowledged on the current connection (empty while disconnected)."""
        return self.link.acks.acked if self.link is not None else set()

    async def session(self, ws: ClientConnection) -> str | None:
        """Subscribe the shard, then read frames until the connection ends or the heartbeat fails."""
        self.sessions += 1
        link = Link(
            ws,
            Acks(self.heartbeat.subscribe_batch, prefix=f"{self.shard.index}.{self.sessions}."),
            self.failed,
            self.slot,
        )
        self.link = link
        housekeeping = asyncio.create_task(self._housekeeping(link))
        try:
            while True:
                raw = await ws.recv(decode=False)
                await self.on_frame(raw, int(time.time() * 1000), link)
        except ConnectionClosed:
            if link.drop_reason is not None:
                return link.drop_reason
            raise
        finally:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
            self.link = None

    def failed(self, topics: list[str], reason: str) -> None:
        """Count failed topic subscriptions (they are retried by the housekeeping task)."""
        self.subscribe_failures += len(topics)
        self.metrics.subscribe_failures.inc(len(topics))
        self._log.warning("subscribe_failed", topics=topics[:5], count=len(topics), reason=reason)

    async def _housekeeping(self, link: Link) -> None:
        hb = self.heartbeat
        tick = min(1.0, hb.interval / 4, hb.pong_timeout / 4)
        next_ping = time.monotonic() + hb.interval
        next_retry = time.monotonic() + hb.subscribe_retry
        pong_due: float | None = None
        try:
            while True:
                await self._sync_topics(link)
                now = time.monotonic()
                if pong_due is None and now >= next_ping:
                    link.pong.clear()
                    await link.ws.send(ping_request(f"ping.{self.shard.index}"))
                    pong_due = now + hb.pong_timeout
                elif pong_due is not None and link.pong.is_set():
                    self.pongs += 1
                    pong_due, next_ping = None, now + hb.interval
                elif pong_due is not None and now >= pong_due:
                    self._log.warning("pong_missing", waited=hb.pong_timeout)
                    link.drop_reason = "pong_timeout"
                    await link.ws.close(code=1001, reason="pong timeout")
                    return
                late = link.acks.expire(hb.ack_timeout, now)
                if late:
                    self.failed(late, "no reply")
                if link.acks.failed and now >= next_retry:
                    next_retry = now + hb.subscribe_retry
                    for frame in link.acks.take_retries():
                        await link.ws.send(frame)
                await asyncio.sleep(tick)
        except ConnectionClosed:
            return

    async def _sync_topics(self, link: Link) -> None:
        """Bring the connection in line with its shard: subscribe new topics (all of them at first),
        unsubscribe delisted ones. Only looks when the shard changed."""
        shard = self.shard
        if link.shard_version == shard.version:
            return
        link.shard_version = shard.version
        wanted = shard.topics
        new = [t for t in wanted if t not in link.requested]
        gone = sorted(link.requested.difference(wanted))
        if new:
            link.requested.update(new)
            for frame in link.acks.requests(new):
                await link.ws.send(frame)
        if gone:
            link.requested.difference_update(gone)
            link.acks.forget(gone)
            link.unsubscribes += 1
            await link.ws.send(unsubscribe_request(f"{link.acks.prefix}u{link.unsubscribes}", gone))
            self._log.info("topics_unsubscribed", topics=gone[:5], count=len(gone))
