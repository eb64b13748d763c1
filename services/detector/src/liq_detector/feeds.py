"""Keeping the detector's feed timeline current from the feed-status stream (``FEED_STATUS_STREAM``).

Read without a consumer group (every detector, and every shard, needs every entry) from a cursor, by a
background task every ``FEED_REFRESH_MS`` and once after a restart, so publishing a cascade never waits
for Redis to stamp its coverage (:mod:`.coverage`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import cast

import redis.asyncio as aioredis
import structlog

from liq_common.codec import FEED_STATUS, EntryDecodeError
from liq_common.streams import REDIS_DOWN
from liq_detector import metrics
from liq_detector.coverage import FeedTimeline

Entries = list[tuple[bytes, dict[bytes, bytes]]]
PAGE = 1_000


class FeedStatusReader:
    """Applies new feed-status entries to ``timeline``; at first from ``timeline.keep_ms`` before ``clock()``."""

    def __init__(
        self,
        client: aioredis.Redis,
        stream: str,
        timeline: FeedTimeline,
        clock: Callable[[], float],
        log: structlog.stdlib.BoundLogger,
    ) -> None:
        self.client = client
        self.stream = stream
        self.timeline = timeline
        self.clock = clock
        self._log = log
        self._cursor: str | None = None

    async def run(self, stop: asyncio.Event, every_s: float) -> None:
        """Read every ``every_s`` seconds until ``stop``."""
        while not stop.is_set():
            await self.read()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)

    async def read(self) -> None:
        """Apply the entries published since the last read; Redis being down only logs (coverage is then
        computed from what is known, and the next read catches up)."""
        if self._cursor is None:
            self._cursor = str(max(0, int(self.clock() * 1000) - self.timeline.keep_ms))
        try:
            while True:
                entries = cast(Entries, await self.client.xrange(self.stream, min=self._cursor, max="+", count=PAGE))
                for entry_id, fields in entries:
                    self._cursor = "(" + entry_id.decode()
                    try:
                        self.timeline.apply(FEED_STATUS.decode(fields))
                    except EntryDecodeError as exc:
                        metrics.FEED_STATUS_BAD.inc()
                        self._log.warning("feed_status_undecodable", id=entry_id.decode(), error=str(exc))
                if len(entries) < PAGE:
                    break
        except REDIS_DOWN as exc:
            self._log.warning("feed_status_unread", error=str(exc))
        self.timeline.prune()
