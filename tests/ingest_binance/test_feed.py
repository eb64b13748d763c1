"""The Binance ingestor against the exchange simulator and the real Redis."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
import redis.asyncio as aioredis

from liq_exchange_sim import SimConfig, Simulator
from liq_ingest_binance.app import BinanceIngest
from tests.conftest import Streams
from tests.ingest_binance.sim import settings_for
from tests.ingest_common.harness import deliver, running, stream_events
from tests.ingest_common.truth import delivered_totals, liquidation, published_totals, records
from tests.waiting import eventually

USDM = {"BTCUSDT": Decimal(65000), "ETHUSDT": Decimal(3200), "XRPUSDT": Decimal("0.52")}
COINM = {"BTCUSD_PERP": Decimal(65000), "ETHUSD_PERP": Decimal(3200)}


async def test_publishes_usdm_and_coinm_exactly(redis: aioredis.Redis, streams: Streams) -> None:
    """USD-M and COIN-M liquidations reach the stream with the simulator's count and USD, contracts converted."""
    now = int(time.time() * 1000) - 60_000
    async with Simulator(SimConfig(binance_throttle_ms=1)) as sim, httpx.AsyncClient() as http:
        ingest = BinanceIngest(settings_for(sim, streams.events), redis, http)
        async with running(ingest.run):
            await eventually(lambda: all(f.supervisor.connected.is_set() for f in ingest.feeds.values()))
            linear, inverse = records("binance", "linear", USDM, 30, now), records("binance", "inverse", COINM, 20, now)
            await deliver(sim, redis, streams.events, "binance", linear, inverse)
        events = await stream_events(redis, streams.events)
        assert published_totals(events) == delivered_totals(sim, "binance")
        assert len({e.event_id for e in events}) == 50
        btc = next(e for e in events if e.symbol == "BTCUSD_PERP")
        assert btc.contracts is not None
        assert btc.contracts * 100 == btc.notional_usd
        assert (btc.base, btc.quote, btc.throttled) == ("BTC", "USD", True)


async def test_unknown_symbol_refreshes_exchange_info(redis: aioredis.Redis, streams: Streams) -> None:
    """A COIN-M symbol listed after start is looked up in a fresh exchangeInfo, not guessed."""
    from liq_exchange_sim import Instrument

    async with Simulator(SimConfig(binance_throttle_ms=1)) as sim, httpx.AsyncClient() as http:
        ingest = BinanceIngest(settings_for(sim, streams.events, binance_markets="inverse"), redis, http)
        async with running(ingest.run):
            feed = ingest.feeds["inverse"]
            await eventually(lambda: feed.supervisor.connected.is_set())
            loaded = feed.instruments.refreshes
            sim.add_instrument(
                "binance_coinm", Instrument(symbol="DOTUSD_PERP", base="DOT", quote="USD", contract_size=Decimal(10))
            )
            dot = liquidation("binance", "inverse", "DOTUSD_PERP", Decimal("4.5"), Decimal(12))
            await deliver(sim, redis, streams.events, "binance", [dot])
        (event,) = await stream_events(redis, streams.events)
        assert feed.instruments.refreshes > loaded
        assert (Decimal(120), "DOT", "USD") == (event.notional_usd, event.base, event.quote)
        assert feed.rejects.total == 0
