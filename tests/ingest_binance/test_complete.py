"""A 10,000-liquidation run through dropped connections and a proactive rotation arrives complete."""

from __future__ import annotations

import time

import httpx
import redis.asyncio as aioredis

from liq_exchange_sim import SimConfig, Simulator
from liq_ingest_binance.app import BinanceIngest
from tests.conftest import Streams
from tests.ingest_binance.sim import settings_for
from tests.ingest_common.harness import (
    as_tuples,
    open_connections,
    records,
    running,
    stream_events,
    totals_of,
    wait_complete,
)
from tests.waiting import eventually

CHUNK = 500


async def test_ten_thousand_through_drops_and_rotation(redis: aioredis.Redis, streams: Streams) -> None:
    """Drop every 1,000 frames and one rotation with overlap: the stream equals the delivered ledger, no duplicates."""
    start = int(time.time() * 1000) - 3_600_000
    async with Simulator(SimConfig(binance_throttle_ms=1)) as sim, httpx.AsyncClient() as http:
        for feed in ("binance_usdm", "binance_coinm"):
            sim.set_faults(feed, drop_after_frames=1000)
        usdm = {i.symbol: i.ref_price for i in sim.universe.instruments("binance_usdm")}
        coinm = {i.symbol: i.ref_price for i in sim.universe.instruments("binance_coinm")}
        linear = records("binance", "linear", usdm, 6000, start)
        inverse = records("binance", "inverse", coinm, 4000, start)
        # Chunks of 500 per feed, so each connection's 1,000th frame ends a chunk and nothing is emitted
        # into a connection that is being dropped (the simulator would discard it, undelivered).
        chunks = [("binance_usdm", linear[i : i + CHUNK]) for i in range(0, len(linear), CHUNK)]
        chunks += [("binance_coinm", inverse[i : i + CHUNK]) for i in range(0, len(inverse), CHUNK)]
        chunks.sort(key=lambda chunk: chunk[1][0].ts)
        # Client pings stay rare here: a ping reaching the simulator after it stopped reading turns its
        # drop into a TCP reset, which destroys frames it already counted as delivered (see the report).
        settings = settings_for(sim, streams.events, rotate_after=1.5, ping_interval=30.0, ping_timeout=30.0)
        ingest = BinanceIngest(settings, redis, http)
        usdm_feed = ingest.feeds["linear"].supervisor
        async with running(ingest.run):
            for n, (feed, chunk) in enumerate(chunks):
                await eventually(lambda feed=feed: open_connections(sim, feed) >= 1)
                if n == len(chunks) // 2:
                    # Halfway: let the USD-M connection reach its rotation age, then emit during the overlap.
                    await eventually(lambda: usdm_feed.reasons["rotation"] >= 1, timeout=10)
                sim.emit(chunk)
                await sim.flush()
                await wait_complete(redis, streams.events, sim, "binance")
        events = await stream_events(redis, streams.events)
    delivered = as_tuples(sim.ledger.totals(exchange="binance"))
    assert delivered == as_tuples(totals_of(events))
    assert len(events) == len({e.event_id for e in events})
    assert sum(count for count, _ in delivered.values()) >= 9_900
    assert usdm_feed.reasons["connection_lost"] >= 4
    assert usdm_feed.reasons["rotation"] >= 1
    assert sim.stats.closes["drop_fault"] >= 8
