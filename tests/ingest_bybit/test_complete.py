"""A 10,000-liquidation run of multi-liquidation pushes through dropped connections and a missed pong."""

from __future__ import annotations

import time

import httpx
import redis.asyncio as aioredis

from liq_exchange_sim import SimConfig, Simulator
from liq_ingest_bybit.app import BybitIngest
from tests.conftest import Streams
from tests.ingest_bybit.sim import settings_for
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
FEEDS = {"linear": "bybit_linear", "inverse": "bybit_inverse"}


async def test_ten_thousand_through_drops_and_a_missed_pong(redis: aioredis.Redis, streams: Streams) -> None:
    """Drops every 300 pushes and one stalled link: the stream equals the delivered ledger, no duplicates."""
    start = int(time.time() * 1000) - 3_600_000
    async with Simulator(SimConfig(bybit_push_interval_ms=20)) as sim, httpx.AsyncClient() as http:
        for feed in FEEDS.values():
            sim.set_faults(feed, drop_after_frames=300)
        linear = {i.symbol: i.ref_price for i in sim.universe.instruments("bybit_linear")}
        inverse = {i.symbol: i.ref_price for i in sim.universe.instruments("bybit_inverse")}
        chunks = [("linear", c) for c in _split(records("bybit", "linear", linear, 7000, start))]
        chunks += [("inverse", c) for c in _split(records("bybit", "inverse", inverse, 3000, start))]
        chunks.sort(key=lambda chunk: chunk[1][0].ts)
        ingest = BybitIngest(settings_for(sim, streams.events, heartbeat_interval=1.0), redis, http)
        linear_link = ingest.feeds["linear"].connections
        async with running(ingest.run):
            for n, (market, chunk) in enumerate(chunks):
                feed = ingest.feeds[market]
                await eventually(lambda feed=feed, m=market: open_connections(sim, FEEDS[m]) >= 1 and _acked(feed))
                if n == len(chunks) // 2:
                    # Halfway: the linear link stalls (no data, no pong); the heartbeat must replace it.
                    (stalled,) = [c for c in sim.connections("bybit_linear") if not c.closed.is_set()]
                    stalled.faults.stall = True
                    await eventually(lambda: linear_link[0].supervisor.reasons["pong_timeout"] == 1, timeout=10)
                    continue
                sim.emit(chunk)
                await sim.flush()
                await wait_complete(redis, streams.events, sim, "bybit")
        events = await stream_events(redis, streams.events)
    delivered = as_tuples(sim.ledger.totals(exchange="bybit"))
    assert delivered == as_tuples(totals_of(events))
    assert len(events) == len({e.event_id for e in events})
    assert sum(count for count, _ in delivered.values()) >= 8_500
    assert sim.stats.closes["drop_fault"] >= 3
    assert linear_link[0].supervisor.reasons["connection_lost"] >= 1


def _split(items: list) -> list[list]:  # type: ignore[type-arg]
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


def _acked(feed: object) -> bool:
    """Every topic of the feed is acknowledged on an open connection (so emitted frames are delivered)."""
    return bool(feed.topics) and feed.acked_topics() == feed.topics  # type: ignore[attr-defined]
