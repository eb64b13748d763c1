"""The detector process: Redis in and out around the Sans-I/O :class:`~liq_detector.engine.Engine`.

* Consumes ``events_stream`` as group ``group`` (``group.{index}of{count}`` for a shard, :mod:`.shard`) with the
  shared runner; each batch goes through the engine, the resulting cascade states are published to
  ``cascades_stream`` by the batching producer.
* Dashboard state is coalesced in memory and written in one pipeline at most every ``DASH_FLUSH_MS``.
* When no event arrived for ``idle_ms`` (wall clock) the watermark advances with the wall clock (to now -
  lateness, or the last event time plus the quiet time when events ran ahead of the clock), so cascades
  close when the market goes quiet; not before the first event (or an adopted cascade), when it would
  only run ahead of a stream that is behind the clock.
* Every published state carries ``coverage``: per feed known to carry its base asset, the fraction of
  the cascade's window the feed was connected, from the feed-status stream (:mod:`.feeds`).
* On start it replays the recent stream silently and reconciles with the cascade states already
  published (:mod:`.rebuild`), so a restart neither loses nor duplicates a cascade.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable, Sequence
from typing import cast

import msgspec
import redis.asyncio as aioredis
import structlog
from redis.exceptions import ResponseError

from liq_common import rawpipe
from liq_common.backoff import Backoff
from liq_common.codec import LIQUIDATIONS
from liq_common.consumer import ConsumerRunner
from liq_common.events import Cascade, Liquidation
from liq_common.streams import REDIS_DOWN, StreamProducer
from liq_detector import metrics
from liq_detector.config import EngineConfig
from liq_detector.coverage import FeedTimeline
from liq_detector.dashboard import Dashboard
from liq_detector.engine import Engine
from liq_detector.feeds import FeedStatusReader
from liq_detector.rebuild import inherit_position, rebuild
from liq_detector.settings import Settings
from liq_detector.shard import Routed, RoutingDecoder, Shard, split

log = structlog.get_logger(__name__)

Entries = list[tuple[bytes, dict[bytes, bytes]]]


def tune_gc() -> None:
    """Collect garbage less often: the detector allocates ~10 short-lived objects per event.

    With CPython's default first-generation threshold (700) the collector runs every ~70 events and its
    older generations keep rescanning the windows' live objects; a 100,000 threshold cut the CPU per
    event by 25-40 % in ``bench/bench_detector.py``. Reference cycles are rare here, so memory is not
    held longer in practice. Called once by ``main`` (and the benchmark).
    """
    gc.set_threshold(100_000, 50, 100)


class Detector:
    """Wires the engine to Redis.

    Args:
        settings: Service settings.
        client: Redis client (bytes replies).
        clock: Wall clock in seconds; tests pass a fixed one to keep idle advancement out of the way.
        dash_flush_ms: Shortest interval between two dashboard pipelines (default ``settings.dash_flush_ms``).
    """

    def __init__(
        self,
        settings: Settings,
        client: aioredis.Redis,
        *,
        clock: Callable[[], float] = time.time,
        dash_flush_ms: int | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.clock = clock
        self.dash_flush_ms = settings.dash_flush_ms if dash_flush_ms is None else dash_flush_ms
        self.engine = Engine(EngineConfig.from_settings(settings))
        self.dashboard = Dashboard(
            settings.dash_prefix, settings.dash_ttl_s, settings.bucket_pct, settings.large_usd, settings.large_keep
        )
        self.producer = StreamProducer(client, settings.cascades_stream, settings.stream_maxlen)
        self.shard = Shard(settings.shard_index, settings.shard_count)
        self.runner: ConsumerRunner[Liquidation | Routed] = ConsumerRunner(
            client,
            stream=settings.events_stream,
            group=settings.consumer_group,
            consumer=settings.consumer,
            codec=LIQUIDATIONS if self.shard.count == 1 else RoutingDecoder(self.shard),
            handler=self.handle,
            dead_stream=settings.dead_stream,
            transient=REDIS_DOWN,
            batch_size=settings.batch_size,
            block_ms=500,
        )
        self.timeline = FeedTimeline(keep_ms=settings.rebuild_max_ms + settings.window_ms)
        self.processed = 0
        self.published = 0
        self._last_arrival = time.monotonic()
        # Event time and injected wall clock at the last arrival: while idle, event time moves on at the
        # wall clock's pace from there (see _idle_loop).
        self._arrival_watermark = 0
        self._arrival_wall = self.clock()
        self._last_flush = 0.0
        self.idle_rounds = 0
        """Rounds of the idle loop so far (tests wait on it instead of sleeping)."""
        self._open: set[str] = set()
        self._flush_lock = asyncio.Lock()
        self._log = log.bind(group=settings.consumer_group, consumer=settings.consumer)
        self.feeds = FeedStatusReader(client, settings.feed_status_stream, self.timeline, clock, self._log)

    # --- running ----------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Rebuild, then consume until ``stop``; drains the producer and the dashboard before returning."""
        backoff = Backoff(base=0.5, cap=10.0, reset_after=0)
        while not stop.is_set():
            try:
                await self.rebuild()
                break
            except REDIS_DOWN as exc:  # Redis not up yet: wait for it rather than exit
                self._log.warning("rebuild_waiting_for_redis", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff.next_delay())
        producer_stop = asyncio.Event()
        producer = asyncio.create_task(self.producer.run(producer_stop), name="detector-producer")
        idle = asyncio.create_task(self._idle_loop(stop), name="detector-idle")
        feeds = asyncio.create_task(
            self.feeds.run(stop, self.settings.feed_refresh_ms / 1000), name="detector-feed-status"
        )
        try:
            await self.runner.run(stop)
        finally:
            await idle
            await feeds
            try:
                await self._flush_dashboard(force=True)
            except REDIS_DOWN as exc:
                self._log.error("dashboard_unflushed_on_exit", error=str(exc))
            producer_stop.set()
            await producer
            self._log.info("detector_stopped", processed=self.processed, published=self.published)

    async def handle(self, batch: Sequence[tuple[bytes, Liquidation | Routed]]) -> None:
        """Consumer handler: one batch through the engine, states to the producer, dashboard coalesced.

        A shard's batch also holds the routing fields of other shards' entries: their event times only
        move the watermark.
        """
        if self.shard.count == 1:
            events = cast(list[Liquidation], [ev for _, ev in batch])
        else:
            events, elsewhere = split(ev for _, ev in batch)
            self.engine.note_time(elsewhere)
        late, dup = self.engine.late, self.engine.duplicates
        states = self.engine.ingest(events)
        self.dashboard.add(self.engine.accepted)  # duplicates (redeliveries) are not counted twice
        self._last_arrival = time.monotonic()
        self._arrival_watermark, self._arrival_wall = self.engine.watermark, self.clock()
        self.processed += len(events)
        metrics.EVENTS.inc(len(events))
        metrics.LATE.inc(self.engine.late - late)
        metrics.DUPLICATES.inc(self.engine.duplicates - dup)
        await self._publish(states)
        if states:
            # The batch is acknowledged when this returns: the states it produced must be in Redis by then,
            # or a crash right after the ack would lose them.
            await self.producer.drained()
        await self._flush_dashboard()

    async def _publish(self, states: list[Cascade]) -> None:
        if not states:
            return
        now_ms = int(self.clock() * 1000)
        cover = self.timeline.coverage
        stamped = [
            msgspec.structs.replace(
                s,
                emitted_ts=now_ms,
                coverage=cover(self.engine.feeds(s.base), s.window_start, s.window_end),
            )
            for s in states
        ]
        await self.producer.put_many(stamped)
        self.dashboard.cascades(stamped)
        for s in stamped:
            metrics.CASCADES.labels(s.status, s.tier).inc()
            if s.status == "close":
                self._open.discard(s.cascade_id)
            else:
                self._open.add(s.cascade_id)
            if s.status != "update":
                self._log.info(f"cascade_{s.status}", id=s.cascade_id, tier=s.tier, score=s.score, usd=str(s.usd))
        self.published += len(stamped)
        metrics.OPEN.set(len(self._open))

    async def _flush_dashboard(self, force: bool = False) -> None:
        """Write the dashboard changes in one pipeline, at most every ``dash_flush_ms`` unless forced.

        Raises a Redis connection error after putting the writes back (the next flush retries them).
        """
        async with self._flush_lock:  # the idle loop and the handler both flush
            now = time.monotonic()
            if not force and (now - self._last_flush) * 1000 < self.dash_flush_ms:
                return
            self._last_flush = now
            self.dashboard.baselines(self.engine.baseline_updates())
            if not self.dashboard.pending:
                return
            cmds, taken = self.dashboard.commands()
            try:
                await rawpipe.execute(self.client, cmds)
            except REDIS_DOWN:
                self.dashboard.requeue(taken)
                raise
            except ResponseError as exc:
                # E.g. WRONGTYPE on a key someone else wrote. Dashboard state is derived: log and carry on
                # rather than fail the batch (which would dead-letter good events).
                metrics.DASHBOARD_ERRORS.inc()
                self._log.error("dashboard_write_rejected", error=str(exc))
        self._gauges()

    def _gauges(self) -> None:
        now = self.clock()
        if self.engine.max_ts > 0:
            metrics.LAG.set(max(now - self.engine.max_ts / 1000, 0.0))
            metrics.WATERMARK_LAG.set(max(now - self.engine.watermark / 1000, 0.0))
        metrics.WINDOW_EVENTS.set(self.engine.window_events)
        metrics.ASSETS.set(len(self.engine.assets))
        metrics.RING_EVENTS.set(self.engine.rings.events)
        metrics.STALE.set(self.dashboard.stale)

    async def _idle_loop(self, stop: asyncio.Event) -> None:
        """Advance the watermark by wall clock while the stream is idle; flush the dashboard."""
        idle_s = self.settings.idle_ms / 1000
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(idle_s, 1.0))
            try:
                # Nothing to move on before the first event (or an adopted cascade): advancing to "now" then
                # would leave the watermark ahead of a stream that runs behind the clock (a replay, a
                # synthetic market), and every event after it would wait for the next idle spell.
                if self.engine.has_work and time.monotonic() - self._last_arrival >= idle_s:
                    # Quiet market: event time moves on as the wall clock does. Usually that means "now -
                    # lateness"; when the events ran ahead of this host's clock (a replay faster than real
                    # time, a skewed clock) it means "the last event time + the quiet time so far", so open
                    # cascades still close after QUIET_MS of real quiet instead of waiting for the clock.
                    wall = self.clock()
                    quiet_ms = int((wall - self._arrival_wall) * 1000 * self.settings.idle_speed)
                    target = max(int(wall * 1000) - self.settings.lateness_ms, self._arrival_watermark + quiet_ms)
                    await self._publish(self.engine.advance_to(target))
                await self._flush_dashboard()
            except REDIS_DOWN as exc:
                self._log.warning("dashboard_write_failed", error=str(exc))
            self.idle_rounds += 1

    # --- restart ----------------------------------------------------------------------------------
    async def rebuild(self) -> None:
        """Restore windows, baselines and open cascades after a restart (:mod:`.rebuild`), then publish
        what the crash lost. A new group (after a change of ``SHARD_COUNT``) starts where the old ones stood."""
        inherited = await inherit_position(self.client, self.settings)
        if inherited is not None:
            self._log.info("detector_group_created", start=inherited.decode())
        done = await rebuild(self.client, self.settings, self.shard, self.engine, self.dashboard)
        await self.feeds.read()
        self._open = set(self.engine.open_cascades())
        self._arrival_watermark, self._arrival_wall = self.engine.watermark, self.clock()
        await self._publish(done.todo)
        self._log.info(
            "detector_rebuilt",
            replayed=done.replayed,
            published_seen=done.published,
            republished=len(done.todo),
            open=len(self._open),
        )
