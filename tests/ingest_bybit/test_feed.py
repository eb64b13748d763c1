"""The Bybit ingestor against the exchange simulator and the real Redis: listing, subscribing, publishing."""

from __future__ import annotations

from decimal import Decimal

import httpx
import redis.asyncio as aioredis

from liq_exchange_sim import Instrument, SimConfig, Simulator, Universe
from liq_ingest_bybit.app import BybitIngest
from liq_ingest_bybit.subscriptions import topic_of
from tests.conftest import Streams
from tests.ingest_bybit.sim import settings_for
from tests.ingest_common.harness import deliver, running, stream_events
from tests.ingest_common.truth import delivered_totals, liquidation, minute_ago, published_totals, records
from tests.waiting import eventually


def _listed(sim: Simulator, feed: str) -> set[str]:
    return {topic_of(i.symbol) for i in sim.universe.instruments(feed)}  # type: ignore[arg-type]


async def test_linear_and_inverse_multi_liquidation_pushes(redis: aioredis.Redis, streams: Streams) -> None:
    """Pushes carrying several liquidations: every one is published, inverse sizes read as USD."""
    async with Simulator(SimConfig(bybit_push_interval_ms=20)) as sim, httpx.AsyncClient() as http:
        ingest = BybitIngest(settings_for(sim, streams.events), redis, http)
        async with running(ingest.run):
            for market, feed in (("linear", "bybit_linear"), ("inverse", "bybit_inverse")):
                listed = _listed(sim, feed)
                await eventually(lambda m=market, listed=listed: ingest.feeds[m].acked_topics() == listed)
            linear = {i.symbol: i.ref_price for i in sim.universe.instruments("bybit_linear")[:2]}
            inverse = {i.symbol: i.ref_price for i in sim.universe.instruments("bybit_inverse")[:2]}
            batches = (
                records("bybit", "linear", linear, 40, minute_ago()),
                records("bybit", "inverse", inverse, 30, minute_ago()),
            )
            await deliver(sim, redis, streams.events, "bybit", *batches)
        events = await stream_events(redis, streams.events)
    assert published_totals(events) == delivered_totals(sim, "bybit")
    assert len({e.event_id for e in events}) == 70
    assert sim.stats.frames_sent < 70  # several liquidations per push
    inverse_event = next(e for e in events if e.market == "inverse")
    assert inverse_event.contracts == inverse_event.notional_usd
    assert inverse_event.quote == "USD"
    assert not inverse_event.throttled


async def test_six_hundred_symbols_over_three_pages_all_acked(redis: aioredis.Redis, streams: Streams) -> None:
    """610 linear symbols listed over 3 REST pages are all subscribed and acknowledged, spread under the args limit."""
    config = SimConfig(instruments=Universe.default(bybit_linear_extra=600), bybit_args_limit=8000)
    async with Simulator(config) as sim, httpx.AsyncClient() as http:
        settings = settings_for(
            sim, streams.events, bybit_markets="linear", instruments_page_limit=250, args_limit=8000
        )
        ingest = BybitIngest(settings, redis, http)
        feed = ingest.feeds["linear"]
        listed = _listed(sim, "bybit_linear")
        async with running(ingest.run):
            await eventually(lambda: feed.acked_topics() == listed, timeout=15)
        assert len(listed) == 610
        assert sim.stats.rest_requests == 3
        assert len(feed.connections) >= 3
        assert feed.subscribe_failures == 0
        assert sim.stats.subscription_failures == 0
        assert all(not t.startswith("liquidation.") for t in listed)


async def test_new_listing_is_subscribed_within_one_refresh(redis: aioredis.Redis, streams: Streams) -> None:
    """A symbol listed mid-run is subscribed at the next listing, and its liquidations are published."""
    async with Simulator(SimConfig(bybit_push_interval_ms=20)) as sim, httpx.AsyncClient() as http:
        settings = settings_for(sim, streams.events, bybit_markets="linear", instruments_refresh=0.5)
        ingest = BybitIngest(settings, redis, http)
        feed = ingest.feeds["linear"]
        async with running(ingest.run):
            await eventually(lambda: feed.acked_topics() == _listed(sim, "bybit_linear"))
            listings = feed.listings
            sim.add_instrument("bybit_linear", Instrument(symbol="NEWUSDT", base="NEW", quote="USDT", status="Trading"))
            await eventually(lambda: "allLiquidation.NEWUSDT" in feed.acked_topics(), timeout=5)
            assert feed.listings <= listings + 2  # within one refresh interval (+ the one in flight)
            new = liquidation("bybit", "linear", "NEWUSDT", Decimal("1.25"), Decimal(800))
            await deliver(sim, redis, streams.events, "bybit", [new])
        (event,) = await stream_events(redis, streams.events)
    assert (event.symbol, event.base, event.notional_usd) == ("NEWUSDT", "NEW", Decimal(1000))
    assert len(feed.connections) == 1


async def test_failed_subscription_is_retried_and_counted(redis: aioredis.Redis, streams: Streams) -> None:
    """Subscriptions answered with the failure frame are counted, retried, and end acknowledged."""
    async with Simulator(SimConfig()) as sim, httpx.AsyncClient() as http:
        sim.set_faults("bybit_inverse", fail_subscription=True)
        ingest = BybitIngest(settings_for(sim, streams.events, bybit_markets="inverse"), redis, http)
        feed = ingest.feeds["inverse"]
        listed = _listed(sim, "bybit_inverse")
        async with running(ingest.run):
            await eventually(lambda: feed.subscribe_failures >= len(listed))
            assert feed.acked_topics() == set()
            sim.set_faults("bybit_inverse", fail_subscription=False)
            await eventually(lambda: feed.acked_topics() == listed, timeout=5)
        assert feed.subscribe_failures >= len(listed)
        assert feed.connections[0].supervisor.opened == 1


async def test_delisted_symbol_is_unsubscribed_and_not_asked_for_again(redis: aioredis.Redis, streams: Streams) -> None:
    """A symbol delisted mid-run is unsubscribed at the next listing, and a reconnect does not subscribe it
    (the exchange would answer ``handler not found``, exchange-feeds.md §3.2); the other symbols flow on."""
    async with Simulator(SimConfig(bybit_push_interval_ms=20)) as sim, httpx.AsyncClient() as http:
        settings = settings_for(sim, streams.events, bybit_markets="linear", instruments_refresh=0.5)
        ingest = BybitIngest(settings, redis, http)
        feed = ingest.feeds["linear"]
        listed = _listed(sim, "bybit_linear")
        gone = topic_of("ETHUSDT")
        async with running(ingest.run):
            await eventually(lambda: feed.acked_topics() == listed)
            (first,) = sim.connections("bybit_linear")
            sim.remove_instrument("bybit_linear", "ETHUSDT")
            await eventually(lambda: gone not in first.topics, timeout=5, what="unsubscribed at the exchange")
            assert feed.acked_topics() == listed - {gone}

            await first.close(1000, "test", "dropped")  # the reconnect subscribes what the shard holds now
            await eventually(
                lambda: sim.connections("bybit_linear") not in ([], [first]) and feed.acked_topics() == listed - {gone},
                timeout=10,
                what="a new connection with every listed topic",
            )
            btc = records("bybit", "linear", {"BTCUSDT": Decimal(65000)}, 5, minute_ago())
            await deliver(sim, redis, streams.events, "bybit", btc)
            (second,) = sim.connections("bybit_linear")
            assert gone not in second.topics
        assert sim.stats.subscription_failures == 0
        assert sim.stats.unsubscriptions == 1
        assert feed.subscribe_failures == 0
