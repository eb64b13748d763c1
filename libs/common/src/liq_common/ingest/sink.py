"""The last step of every ingestor: drop overlap duplicates, record feed metrics, log, publish.

Normalisers produce :class:`~liq_common.events.Liquidation` events; the feed hands them to its
:class:`LiquidationSink`, which queues them on the batching :class:`~liq_common.streams.StreamProducer`
(one pipelined ``XADD`` round trip per batch, never one per event).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from liq_common.events import Liquidation
from liq_common.ingest.dedup import RecentIds
from liq_common.ingest.metrics import FeedMetrics
from liq_common.ingest.tiers import TieredLog
from liq_common.streams import StreamProducer


class LiquidationSink:
    """Publishes the liquidations of one feed exactly once per event id (within ``dedup_window``).

    Args:
        producer: Batching producer of the events stream.
        metrics: The feed's metric children.
        tiers: Tiered log lines.
        dedup_window: Number of recent event ids remembered.
    """

    def __init__(self, producer: StreamProducer, metrics: FeedMetrics, tiers: TieredLog, dedup_window: int) -> None:
        self.producer = producer
        self.metrics = metrics
        self.tiers = tiers
        self.recent = RecentIds(dedup_window)
        self.published = 0
        self.duplicates = 0

    async def publish(self, events: Iterable[Liquidation]) -> int:
        """Queue the events not seen before; returns how many were queued."""
        fresh: list[Liquidation] = []
        metrics = self.metrics
        add = self.recent.add
        for event in events:
            if not add(event.event_id):
                self.duplicates += 1
                metrics.duplicates.inc()
                continue
            fresh.append(event)
            metrics.lag.observe((event.recv_ts - event.ts) / 1000.0)
            usd = float(event.notional_usd)
            if event.side == "long":
                metrics.notional_long.inc(usd)
            else:
                metrics.notional_short.inc(usd)
            self.tiers.record(event)
        if fresh:
            await self.producer.put_many(fresh)
            self.published += len(fresh)
            metrics.published.inc(len(fresh))
            metrics.last_event.set(time.time())
        return len(fresh)
