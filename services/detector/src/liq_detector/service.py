"""The detector process: Redis in and out around the Sans-I/O :class:`~liq_detector.engine.Engine`.

* Consumes ``events_stream`` as group ``group`` with the shared runner; each batch goes through the
  engine, the resulting cascade states are published to ``cascades_stream`` by the batching producer.
* Dashboard state is coalesced in memory and written in one pipeline at most every ``DASH_FLUSH_MS``.
* When no event arrived for ``idle_ms`` (wall clock) the watermark advances with the wall clock (to now -
  lateness, or the last event time plus the quiet time when events ran ahead of the clock), so cascades
  close when the market goes quiet.
* Every published state carries ``coverage``: per feed known to carry its base asset, the fraction of
  the cascade's window the feed was connected, from the feed-status stream (read without a consumer
  group every ``feed_refresh_ms`` by a background task, so publishing never waits for it).
* On start it replays the recent stream silently and reconciles with the cascade states already
  published (see :meth:`Detector.rebuild`), so a restart neither loses nor duplicates a cascade.
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
from liq_common.codec import CASCADES, FEED_STATUS, LIQUIDATIONS, EntryDecodeError
from liq_common.consumer import ConsumerRunner
from liq_common.events import Cascade, Liquidation
from liq_common.streams import REDIS_DOWN, StreamProducer
from liq_detector import metrics
from liq_detector.config import EngineConfig
from liq_detector.coverage import FeedTimeline
from liq_detector.dashboard import Dashboard
from liq_detector.engine import Engine
from liq_detector.settings import Settings

log = structlog.get_logger(__name__)

READ_CHUNK = 5_000


Entries = list[tuple[bytes, dict[bytes, bytes]]]


async def _xrevrange(client: aioredis.Redis, stream: str, top: bytes | str, count: int) -> Entries:
    """XREVRANGE from ``top`` down, typed for a bytes-reply client."""
    return cast(Entries, await client.xrevrange(stream, max=top, min="-", count=count))


class _Saved(msgspec.Struct):
    first: int
    through: int
    minutes: dict[int, list[float]]


_saved_decoder = msgspec.json.Decoder(_Saved)


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
        self.runner: ConsumerRunner[Liquidation] = ConsumerRunner(
            client,
            stream=settings.events_stream,
            group=settings.group,
            consumer=settings.consumer,
            codec=LIQUIDATIONS,
            handler=self.handle,
            dead_stream=settings.dead_stream,
            transient=REDIS_DOWN,
            batch_size=settings.batch_size,
            block_ms=500,
        )
        self.timeline = FeedTimeline(keep_ms=settings.rebuild_max_ms + settings.window_ms)
        self._feed_cursor: str | None = None
        self.processed = 0
        self.published = 0
        self._last_arrival = time.monotonic()
        # Event time and injected wall clock at the last arrival: while idle, event time moves on at the
        # wall clock's pace from there (see _idle_loop).
        self._arrival_watermark = 0
        self._arrival_wall = self.clock()
        self._last_flush = 0.0
        self._open: set[str] = set()
        self._flush_lock = asyncio.Lock()
        self._log = log.bind(group=settings.group, consumer=settings.consumer)

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
        feeds = asyncio.create_task(self._feed_loop(stop), name="detector-feed-status")
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

    async def handle(self, batch: Sequence[tuple[bytes, Liquidation]]) -> None:
        """Consumer handler: one batch through the engine, states to the producer, dashboard coalesced."""
        events = [ev for _, ev in batch]
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

    async def _feed_loop(self, stop: asyncio.Event) -> None:
        """Read the feed-status stream every ``feed_refresh_ms`` until ``stop``."""
        while not stop.is_set():
            await self._read_feed_status()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.feed_refresh_ms / 1000)

    async def _read_feed_status(self) -> None:
        """Apply the feed-status entries published since the last read (from ``keep_ms`` back at first)."""
        if self._feed_cursor is None:
            self._feed_cursor = str(max(0, int(self.clock() * 1000) - self.timeline.keep_ms))
        try:
            while True:
                entries = cast(
                    Entries,
                    await self.client.xrange(
                        self.settings.feed_status_stream, min=self._feed_cursor, max="+", count=1000
                    ),
                )
                for entry_id, fields in entries:
                    self._feed_cursor = "(" + entry_id.decode()
                    try:
                        self.timeline.apply(FEED_STATUS.decode(fields))
                    except EntryDecodeError as exc:
                        metrics.FEED_STATUS_BAD.inc()
                        self._log.warning("feed_status_undecodable", id=entry_id.decode(), error=str(exc))
                if len(entries) < 1000:
                    break
        except REDIS_DOWN as exc:  # coverage from what is known; the next publish reads again
            self._log.warning("feed_status_unread", error=str(exc))
        self.timeline.prune()

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
                if time.monotonic() - self._last_arrival >= idle_s:
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

    # --- restart ----------------------------------------------------------------------------------
    async def rebuild(self) -> None:
        """Restore windows, baselines and open cascades after a restart.

        1. Load the baseline history saved in ``{dash_prefix}baselines``.
        2. Read back the latest published state of each recent cascade from ``cascades_stream``.
        3. Replay, without publishing, the events this group already received (up to its last delivered
           id), from the start of the oldest open cascade's window (at most ``rebuild_max_ms`` back).
        4. Publish only what the replay produced beyond the published states (:meth:`Engine.reconcile`).
        Entries still pending are redelivered afterwards and ignored as duplicates by the engine.
        """
        s = self.settings
        last_id = await self._last_delivered()
        if last_id is None:
            return
        newest = await _xrevrange(self.client, s.events_stream, last_id, 1)
        if not newest:
            return
        last_ts = LIQUIDATIONS.decode(newest[0][1]).ts
        oldest_allowed = last_ts - s.rebuild_max_ms
        published = await self._published(oldest_allowed)
        saved_all = cast(dict[bytes, bytes], await self.client.hgetall(self.dashboard.key("baselines")))
        for base, raw in saved_all.items():
            saved = _saved_decoder.decode(raw)
            self.engine.restore_baseline(base.decode(), saved.first, saved.through, saved.minutes)
        hour = last_ts - last_ts % 3_600_000
        levels = cast(dict[bytes, bytes], await self.client.hgetall(self.dashboard.key("levels", hour)))
        self.dashboard.restore_levels(hour, levels)
        starts = [p.window_start for p in published.values() if p.status != "close"]
        # Replay far enough back to rebuild the baselines too: an asset whose history was not saved yet (a
        # detector younger than its first save, or a new asset) would otherwise restart cold, unable to open
        # a cascade that is under way. Minutes restored from Redis are frozen, so replaying them again never
        # counts an event twice.
        warm = last_ts - s.warmup_minutes * 60_000
        start = min([last_ts, warm, *starts]) - s.window_ms - s.lateness_ms
        start = max(start - start % 60_000, oldest_allowed)
        events = await self._read_back(last_id, start)
        replayed: list[Cascade] = []
        for i in range(0, len(events), READ_CHUNK):
            chunk = events[i : i + READ_CHUNK]
            replayed.extend(self.engine.ingest(chunk))
            self.dashboard.add(self.engine.accepted, write=False)
        self.engine.baseline_updates()  # already saved before the restart
        metrics.REPLAYED.inc(len(events))
        todo = self.engine.reconcile(replayed, published)
        await self._read_feed_status()
        self._open = set(self.engine.open_cascades())
        self._arrival_watermark, self._arrival_wall = self.engine.watermark, self.clock()
        await self._publish(todo)
        self._log.info(
            "detector_rebuilt",
            replayed=len(events),
            published_seen=len(published),
            republished=len(todo),
            open=len(self._open),
        )

    async def _last_delivered(self) -> bytes | None:
        try:
            groups = await self.client.xinfo_groups(self.settings.events_stream)
        except ResponseError:
            return None  # no stream yet
        for info in groups:
            name = info.get("name")
            if name in (self.settings.group, self.settings.group.encode()):
                last = info.get("last-delivered-id")
                if isinstance(last, bytes) and last != b"0-0":
                    return last
        return None

    async def _published(self, oldest_allowed: int) -> dict[str, Cascade]:
        """Latest published state per cascade id, for cascades that ended after ``oldest_allowed``."""
        latest: dict[str, Cascade] = {}
        top: bytes | str = "+"
        while True:
            entries = await _xrevrange(self.client, self.settings.cascades_stream, top, 1000)
            if not entries:
                return latest
            older = 0
            for _, fields in entries:
                try:
                    state = CASCADES.decode(fields)
                except EntryDecodeError:
                    continue
                if state.window_end < oldest_allowed:
                    older += 1
                latest.setdefault(state.cascade_id, state)
            if older == len(entries):
                return {k: v for k, v in latest.items() if v.window_end >= oldest_allowed}
            top = "(" + entries[-1][0].decode()

    async def _read_back(self, last_id: bytes, start_ts: int) -> list[Liquidation]:
        """Events up to ``last_id`` (inclusive) back to event time ``start_ts``, oldest first."""
        out: list[Liquidation] = []
        top: bytes | str = last_id
        lateness = self.settings.lateness_ms
        while True:
            entries = await _xrevrange(self.client, self.settings.events_stream, top, READ_CHUNK)
            if not entries:
                break
            newest_in_chunk = -1
            for _, fields in entries:
                try:
                    ev = LIQUIDATIONS.decode(fields)
                except EntryDecodeError:
                    continue  # the runner dead-lettered it the first time
                newest_in_chunk = max(newest_in_chunk, ev.ts)
                if ev.ts >= start_ts:
                    out.append(ev)
            if newest_in_chunk < start_ts - lateness:
                break
            top = "(" + entries[-1][0].decode()
        out.reverse()
        return out
