"""Each fault knob of the simulator: the Binance ingestor counts it, recovers, and loses no good frame."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
import pytest
import redis.asyncio as aioredis

from liq_exchange_sim import MALFORMED_KINDS, SimConfig, Simulator
from liq_ingest_binance.app import BinanceIngest
from liq_ingest_binance.settings import Settings
from tests.conftest import Streams
from tests.ingest_binance.sim import settings_for
from tests.ingest_common.faults import REJECT_REASON, deliver_with_one_malformed
from tests.ingest_common.harness import deliver, open_connections, running, stream_events, wait_complete
from tests.ingest_common.truth import delivered_totals, minute_ago, published_totals, records
from tests.waiting import eventually

USDM = {"BTCUSDT": Decimal(65000), "ETHUSDT": Decimal(3200)}


def test_default_usdm_url_uses_the_routed_market_path() -> None:
    """Unrouted USD-M URLs silently deliver no forceOrder since 2026 (exchange-feeds.md §1.1)."""
    assert "fstream.binance.com/market/" in Settings().binance_usdm_ws_url


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
async def test_malformed_frame_is_counted_and_neighbours_arrive(
    kind: str, redis: aioredis.Redis, streams: Streams
) -> None:
    """A corrupted frame is rejected with its reason; the good frames before and after it are published."""
    async with Simulator(SimConfig(binance_throttle_ms=1)) as sim, httpx.AsyncClient() as http:
        ingest = BinanceIngest(settings_for(sim, streams.events, binance_markets="linear"), redis, http)
        feed = ingest.feeds["linear"]
        async with running(ingest.run):
            await eventually(lambda: open_connections(sim, "binance_usdm") == 1)
            batch = records("binance", "linear", USDM, 6, minute_ago())
            await deliver_with_one_malformed(
                sim, redis, streams.events, "binance", "binance_usdm", kind, batch[:2], batch[2:]
            )
            await eventually(lambda: feed.rejects.total == 1)
        events = await stream_events(redis, streams.events)
    assert {REJECT_REASON[kind]: 1} == dict(feed.rejects.counts)
    assert len(events) == 5
    assert published_totals(events) == delivered_totals(sim, "binance")
    assert feed.supervisor.opened == 1


async def test_stall_is_detected_by_ping_timeout(redis: aioredis.Redis, streams: Streams) -> None:
    """A stalled link (no data, no pongs) is dropped after the ping timeout and replaced; later frames arrive."""
    async with Simulator(SimConfig(binance_throttle_ms=1)) as sim, httpx.AsyncClient() as http:
        ingest = BinanceIngest(settings_for(sim, streams.events, binance_markets="linear"), redis, http)
        supervisor = ingest.feeds["linear"].supervisor
        async with running(ingest.run):
            await eventually(lambda: open_connections(sim, "binance_usdm") == 1)
            (stalled,) = sim.connections("binance_usdm")
            stalled.faults.stall = True
            await eventually(lambda: supervisor.reasons["ping_timeout"] == 1, timeout=10)
            await eventually(lambda: open_connections(sim, "binance_usdm") >= 1 and supervisor.opened == 2)
            await deliver(sim, redis, streams.events, "binance", records("binance", "linear", USDM, 10, minute_ago()))
        events = await stream_events(redis, streams.events)
    assert len(events) == 10


async def test_quiet_market_is_not_a_dead_link(redis: aioredis.Redis, streams: Streams) -> None:
    """With no liquidations for many ping intervals, pings keep the one connection alive: no reconnect."""
    async with (
        Simulator(SimConfig(binance_throttle_ms=1, binance_ping_interval=0.1)) as sim,
        httpx.AsyncClient() as http,
    ):
        ingest = BinanceIngest(settings_for(sim, streams.events, binance_markets="linear"), redis, http)
        supervisor = ingest.feeds["linear"].supervisor
        async with running(ingest.run):
            await eventually(lambda: open_connections(sim, "binance_usdm") == 1)
            # The server pings every 0.1 s and we answer; our own pings (0.3 s, 0.6 s timeout) pass too.
            await sim.wait_for(lambda s: s.stats.pongs_received >= 15, timeout=10)
            assert supervisor.opened == 1
            assert dict(supervisor.reasons) == {}
        assert sim.stats.frames_sent == 0


async def test_rate_limited_handshake_backs_off_long(redis: aioredis.Redis, streams: Streams) -> None:
    """HTTP 429 at the handshake waits the long rate-limit backoff each time, then connects."""
    async with Simulator(SimConfig(binance_throttle_ms=1)) as sim, httpx.AsyncClient() as http:
        sim.set_faults("binance_usdm", refuse_status=429, refuse_count=2)
        settings = settings_for(sim, streams.events, binance_markets="linear", rate_limited_backoff=0.5)
        ingest = BinanceIngest(settings, redis, http)
        supervisor = ingest.feeds["linear"].supervisor
        started = time.monotonic()
        async with running(ingest.run):
            await eventually(lambda: open_connections(sim, "binance_usdm") == 1, timeout=10)
            connected_after = time.monotonic() - started
            await deliver(sim, redis, streams.events, "binance", records("binance", "linear", USDM, 4, minute_ago()))
    assert supervisor.reasons["http_429"] == 2
    assert sim.stats.handshakes_refused == 2
    # Two penalties of 0.5 s ± 10 %: far longer than the 20 ms reconnect base.
    assert connected_after >= 0.9


async def test_server_error_at_handshake_uses_normal_backoff(redis: aioredis.Redis, streams: Streams) -> None:
    """HTTP 503 at the handshake is retried with the ordinary jittered backoff."""
    async with Simulator(SimConfig(binance_throttle_ms=1)) as sim, httpx.AsyncClient() as http:
        sim.set_faults("binance_usdm", refuse_status=503, refuse_count=3)
        ingest = BinanceIngest(settings_for(sim, streams.events, binance_markets="linear"), redis, http)
        supervisor = ingest.feeds["linear"].supervisor
        async with running(ingest.run):
            await eventually(lambda: open_connections(sim, "binance_usdm") == 1, timeout=10)
    assert supervisor.reasons["http_503"] == 3


async def test_rotates_before_the_forced_close(redis: aioredis.Redis, streams: Streams) -> None:
    """Connections are replaced before the server's lifetime close (Binance: 24 h), with no loss or duplicate."""
    config = SimConfig(binance_throttle_ms=1, binance_max_lifetime=2.0)
    async with Simulator(config) as sim, httpx.AsyncClient() as http:
        settings = settings_for(sim, streams.events, binance_markets="linear", rotate_after=0.8, rotate_overlap=0.3)
        ingest = BinanceIngest(settings, redis, http)
        supervisor = ingest.feeds["linear"].supervisor
        batch = records("binance", "linear", USDM, 400, minute_ago() - 60_000)
        async with running(ingest.run):
            for offset in range(0, len(batch), 20):
                await eventually(lambda: open_connections(sim, "binance_usdm") >= 1)
                sim.emit(batch[offset : offset + 20])
                await sim.flush()
                if supervisor.reasons["rotation"] >= 2:
                    break
            await eventually(lambda: supervisor.reasons["rotation"] >= 2, timeout=10)
            await wait_complete(redis, streams.events, sim, "binance")
        events = await stream_events(redis, streams.events)
    assert sim.stats.closes["lifetime"] == 0
    assert published_totals(events) == delivered_totals(sim, "binance")
    assert len(events) == len({e.event_id for e in events})


async def test_silently_unsubscribed_stream_is_detected_and_retried(redis: aioredis.Redis, streams: Streams) -> None:
    """A connection whose URL stream was not subscribed is caught by LIST_SUBSCRIPTIONS; SUBSCRIBE is retried."""
    async with Simulator(SimConfig(binance_throttle_ms=1)) as sim, httpx.AsyncClient() as http:
        sim.set_faults("binance_usdm", fail_subscription=True)
        ingest = BinanceIngest(settings_for(sim, streams.events, binance_markets="linear"), redis, http)
        feed = ingest.feeds["linear"]
        async with running(ingest.run):
            await eventually(lambda: feed.subscribe_failures >= 2)
            assert feed.check is not None
            assert not feed.check.confirmed
            sim.set_faults("binance_usdm", fail_subscription=False)
            await eventually(lambda: feed.check is not None and feed.check.confirmed)
            await deliver(sim, redis, streams.events, "binance", records("binance", "linear", USDM, 6, minute_ago()))
        assert len(await stream_events(redis, streams.events)) == 6
        assert feed.supervisor.opened == 1
        assert feed.rejects.total == 0


async def test_duplicated_and_reordered_frames(redis: aioredis.Redis, streams: Streams) -> None:
    """Frames sent twice are published once (same event id); reordered frames all arrive."""
    async with Simulator(SimConfig(binance_throttle_ms=1)) as sim, httpx.AsyncClient() as http:
        sim.set_faults("binance_usdm", duplicate_every=3, reorder_window=4)
        ingest = BinanceIngest(settings_for(sim, streams.events, binance_markets="linear"), redis, http)
        sink = ingest.feeds["linear"].sink
        async with running(ingest.run):
            await eventually(lambda: open_connections(sim, "binance_usdm") == 1)
            await deliver(sim, redis, streams.events, "binance", records("binance", "linear", USDM, 24, minute_ago()))
            await eventually(lambda: sink.duplicates == 8)
        events = await stream_events(redis, streams.events)
    assert len(events) == 24
    assert len({e.event_id for e in events}) == 24
    assert published_totals(events) == delivered_totals(sim, "binance")
