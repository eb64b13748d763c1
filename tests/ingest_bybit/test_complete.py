"""A 10,000-liquidation run of multi-liquidation pushes through dropped connections and a missed pong."""

from __future__ import annotations

import time

import httpx
import redis.asyncio as aioredis

from liq_exchange_sim import SimConfig, Simulator
from liq_ingest_bybit.app import BybitIngest
from liq_ingest_bybit.feed import BybitFeed
from tests.conftest import Streams
from tests.ingest_bybit.sim import settings_for
from tests.ingest_common.faults import deliver_chunks
from tests.ingest_common.harness import open_connections, running, stream_events
from tests.ingest_common.truth import delivered_totals, in_chunks, prices, published_totals, records
from tests.waiting import eventually

CHUNK = 500
FEEDS = {"linear": "bybit_linear", "inverse": "bybit_inverse"}


async def test_ten_thousand_through_drops_and_a_missed_pong(redis: aioredis.Redis, streams: Streams) -> None:
    """Drops every 300 pushes and one stalled link: the stream equals the delivered ledger, no duplicates."""
    start = int(time.time() * 1000) - 3_600_000
    async with Simulator(SimConfig(bybit_push_interval_ms=20)) as sim, httpx.AsyncClient() as http:
        for feed in FEEDS.values():
            sim.set_faults(feed, drop_after_frames=300)
        chunks = in_chunks(
            {
                "linear": records("bybit", "linear", prices(sim, "bybit_linear"), 7000, start),
                "inverse": records("bybit", "inverse", prices(sim, "bybit_inverse"), 3000, start),
            },
            CHUNK,
        )
        ingest = BybitIngest(settings_for(sim, streams.events, heartbeat_interval=1.0), redis, http)
        linear_link = ingest.feeds["linear"].connections

        def subscribed(market: str) -> bool:
            """The market has an open connection and every topic acknowledged, so emitted pushes are delivered."""
            return open_connections(sim, FEEDS[market]) >= 1 and _acked(ingest.feeds[market])

        async def missed_pong() -> None:
            """Halfway: the linear link stalls (no data, no pong); the heartbeat must replace it."""
            (stalled,) = [c for c in sim.connections("bybit_linear") if not c.closed.is_set()]
            stalled.faults.stall = True
            await eventually(
                lambda: linear_link[0].supervisor.reasons["pong_timeout"] == 1, timeout=10, what="a missed pong"
            )

        async with running(ingest.run):
            await deliver_chunks(sim, redis, streams.events, "bybit", chunks, subscribed, missed_pong)
        events = await stream_events(redis, streams.events)
    # The faults happened: drops, and the stalled linear link replaced after one missed pong ...
    assert sim.stats.closes["drop_fault"] >= 3
    assert linear_link[0].supervisor.reasons["connection_lost"] >= 1
    assert linear_link[0].supervisor.reasons["pong_timeout"] == 1
    # ... and lost or doubled nothing the simulator delivered.
    delivered = delivered_totals(sim, "bybit")
    assert published_totals(events) == delivered
    assert len(events) == len({e.event_id for e in events})
    assert sum(count for count, _ in delivered.values()) >= 8_500


def _acked(feed: BybitFeed) -> bool:
    """Every topic of the feed is acknowledged on an open connection (so emitted frames are delivered)."""
    return bool(feed.topics) and feed.acked_topics() == feed.topics
