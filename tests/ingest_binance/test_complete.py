"""A 10,000-liquidation run through dropped connections and a proactive rotation arrives complete."""

from __future__ import annotations

import time

import httpx
import redis.asyncio as aioredis

from liq_exchange_sim import SimConfig, Simulator
from liq_ingest_binance.app import BinanceIngest
from tests.conftest import Streams
from tests.ingest_binance.sim import settings_for
from tests.ingest_common.faults import deliver_chunks
from tests.ingest_common.harness import open_connections, running, stream_events
from tests.ingest_common.truth import delivered_totals, in_chunks, prices, published_totals, records
from tests.waiting import eventually

CHUNK = 500


async def test_ten_thousand_through_drops_and_rotation(redis: aioredis.Redis, streams: Streams) -> None:
    """Drop every 1,000 frames and one rotation with overlap: the stream equals the delivered ledger, no duplicates."""
    start = int(time.time() * 1000) - 3_600_000
    async with Simulator(SimConfig(binance_throttle_ms=1)) as sim, httpx.AsyncClient() as http:
        for feed in ("binance_usdm", "binance_coinm"):
            sim.set_faults(feed, drop_after_frames=1000)
        # Chunks of 500 per feed, so each connection's 1,000th frame ends a chunk and nothing is emitted
        # into a connection that is being dropped (the simulator would discard it, undelivered).
        chunks = in_chunks(
            {
                "binance_usdm": records("binance", "linear", prices(sim, "binance_usdm"), 6000, start),
                "binance_coinm": records("binance", "inverse", prices(sim, "binance_coinm"), 4000, start),
            },
            CHUNK,
        )
        # Client pings stay rare here: a ping reaching the simulator after it stopped reading turns its
        # drop into a TCP reset, which destroys frames it already counted as delivered (see the report).
        settings = settings_for(sim, streams.events, rotate_after=1.5, ping_interval=30.0, ping_timeout=30.0)
        ingest = BinanceIngest(settings, redis, http)
        usdm_feed = ingest.feeds["linear"].supervisor

        def connected(feed: str) -> bool:
            """The feed has a connection the simulator still sends on (not one being dropped)."""
            return open_connections(sim, feed) >= 1

        async def rotated() -> None:
            """Halfway: the USD-M connection reaches its rotation age; the middle chunk lands in the overlap."""
            await eventually(lambda: usdm_feed.reasons["rotation"] >= 1, timeout=10, what="a USD-M rotation")

        async with running(ingest.run):
            await deliver_chunks(sim, redis, streams.events, "binance", chunks, connected, rotated)
        events = await stream_events(redis, streams.events)
    # The faults happened: drops on both feeds, reconnects and a rotation on USD-M ...
    assert sim.stats.closes["drop_fault"] >= 8
    assert usdm_feed.reasons["connection_lost"] >= 4
    assert usdm_feed.reasons["rotation"] >= 1
    # ... and lost or doubled nothing the simulator delivered.
    delivered = delivered_totals(sim, "binance")
    assert published_totals(events) == delivered
    assert len(events) == len({e.event_id for e in events})
    assert sum(count for count, _ in delivered.values()) >= 9_900
