"""Each fault knob of the simulator: the Bybit ingestor counts it, recovers, and loses no good push."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
import pytest
import redis.asyncio as aioredis

from liq_exchange_sim import MALFORMED_KINDS, SimConfig, Simulator
from liq_ingest_bybit.app import BybitIngest
from tests.conftest import Streams
from tests.ingest_bybit.sim import settings_for
from tests.ingest_common.faults import REJECT_REASON, deliver_with_one_malformed
from tests.ingest_common.harness import deliver, open_connections, running, stream_events
from tests.ingest_common.truth import delivered_totals, minute_ago, published_totals, records
from tests.waiting import eventually

LINEAR = {"BTCUSDT": Decimal(65000), "ETHUSDT": Decimal(3200)}


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
async def test_malformed_push_is_counted_and_neighbours_arrive(
    kind: str, redis: aioredis.Redis, streams: Streams
) -> None:
    """A corrupted push is rejected whole with its reason; the pushes before and after it are published."""
    async with Simulator(SimConfig(bybit_push_interval_ms=20)) as sim, httpx.AsyncClient() as http:
        settings = settings_for(sim, streams.events, bybit_markets="linear", bybit_symbols="BTCUSDT,ETHUSDT")
        ingest = BybitIngest(settings, redis, http)
        feed = ingest.feeds["linear"]
        async with running(ingest.run):
            await eventually(lambda: len(feed.acked_topics()) == 2)
            batch = records("bybit", "linear", LINEAR, 12, minute_ago())
            await deliver_with_one_malformed(
                sim, redis, streams.events, "bybit", "bybit_linear", kind, batch[:4], batch[4:]
            )
            await eventually(lambda: feed.rejects.total == 1)
        events = await stream_events(redis, streams.events)
    corrupted = [e for e in sim.ledger.entries if e.kind == "corrupted"]
    assert {REJECT_REASON[kind]: 1} == dict(feed.rejects.counts)
    assert len(corrupted) >= 1
    assert len(events) == 12 - len(corrupted)
    assert published_totals(events) == delivered_totals(sim, "bybit")
    assert feed.connections[0].supervisor.opened == 1


async def test_rate_limited_handshake_backs_off_long(redis: aioredis.Redis, streams: Streams) -> None:
    """HTTP 429 at the handshake waits the long rate-limit backoff, then connects and subscribes."""
    async with Simulator(SimConfig()) as sim, httpx.AsyncClient() as http:
        sim.set_faults("bybit_linear", refuse_status=429, refuse_count=1)
        settings = settings_for(
            sim, streams.events, bybit_markets="linear", bybit_symbols="BTCUSDT", rate_limited_backoff=0.5
        )
        ingest = BybitIngest(settings, redis, http)
        feed = ingest.feeds["linear"]
        started = time.monotonic()
        async with running(ingest.run):
            await eventually(lambda: feed.acked_topics() == {"allLiquidation.BTCUSDT"}, timeout=10)
            elapsed = time.monotonic() - started
        assert feed.connections[0].supervisor.reasons["http_429"] == 1
        assert elapsed >= 0.45


async def test_quiet_link_is_kept_alive_by_the_heartbeat(redis: aioredis.Redis, streams: Streams) -> None:
    """No liquidations for many heartbeats: each ping gets its pong, the one connection stays."""
    async with Simulator(SimConfig(bybit_ping_timeout=1.0)) as sim, httpx.AsyncClient() as http:
        settings = settings_for(
            sim, streams.events, bybit_markets="linear", bybit_symbols="BTCUSDT", heartbeat_interval=0.2
        )
        ingest = BybitIngest(settings, redis, http)
        connection = None
        async with running(ingest.run):
            await eventually(lambda: len(ingest.feeds["linear"].connections) == 1)
            connection = ingest.feeds["linear"].connections[0]
            # The simulator closes a link silent for 1 s; 10 pings at 0.2 s span twice that.
            await eventually(lambda: connection.pongs >= 10, timeout=10)
            assert open_connections(sim, "bybit_linear") == 1
        assert connection.supervisor.opened == 1
        assert dict(connection.supervisor.reasons) == {}
        assert sim.stats.closes["ping_timeout"] == 0


async def test_missed_pong_replaces_the_link(redis: aioredis.Redis, streams: Streams) -> None:
    """A link that stops answering is dropped after the pong timeout, resubscribed, and delivers again."""
    async with Simulator(SimConfig(bybit_push_interval_ms=20)) as sim, httpx.AsyncClient() as http:
        settings = settings_for(sim, streams.events, bybit_markets="linear", bybit_symbols="BTCUSDT,ETHUSDT")
        ingest = BybitIngest(settings, redis, http)
        feed = ingest.feeds["linear"]
        async with running(ingest.run):
            await eventually(lambda: len(feed.acked_topics()) == 2)
            (stalled,) = sim.connections("bybit_linear")
            stalled.faults.stall = True
            supervisor = feed.connections[0].supervisor
            await eventually(lambda: supervisor.reasons["pong_timeout"] == 1, timeout=10)
            await eventually(lambda: supervisor.opened == 2 and len(feed.acked_topics()) == 2)
            await deliver(sim, redis, streams.events, "bybit", records("bybit", "linear", LINEAR, 10, minute_ago()))
        assert len(await stream_events(redis, streams.events)) == 10


async def test_duplicated_pushes_are_published_once(redis: aioredis.Redis, streams: Streams) -> None:
    """A push sent twice maps to the same event ids, so its liquidations are published once."""
    async with Simulator(SimConfig(bybit_push_interval_ms=20)) as sim, httpx.AsyncClient() as http:
        sim.set_faults("bybit_linear", duplicate_every=2)
        settings = settings_for(sim, streams.events, bybit_markets="linear", bybit_symbols="BTCUSDT,ETHUSDT")
        ingest = BybitIngest(settings, redis, http)
        sink = ingest.feeds["linear"].sink
        async with running(ingest.run):
            await eventually(lambda: len(ingest.feeds["linear"].acked_topics()) == 2)
            await deliver(sim, redis, streams.events, "bybit", records("bybit", "linear", LINEAR, 40, minute_ago()))
            duplicated = sum(1 for e in sim.ledger.entries if e.kind == "duplicate")
            await eventually(lambda: sink.duplicates == duplicated)
        events = await stream_events(redis, streams.events)
    assert duplicated > 0
    assert len(events) == 40
    assert published_totals(events) == delivered_totals(sim, "bybit")
