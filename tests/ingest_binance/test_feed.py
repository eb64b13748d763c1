"""The Binance ingestor against the exchange simulator and the real Redis."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
import redis.asyncio as aioredis

from liq_exchange_sim import SimConfig, Simulator, TruthRecord
from liq_ingest_binance.app import BinanceIngest
from tests.conftest import Streams
from tests.ingest_binance.sim import settings_for
from tests.ingest_common.harness import as_tuples, records, running, stream_events, totals_of, wait_complete
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
            sim.emit(records("binance", "linear", USDM, 30, now))
            sim.emit(records("binance", "inverse", COINM, 20, now))
            await wait_complete(redis, streams.events, sim, "binance")
        events = await stream_events(redis, streams.events)
        assert as_tuples(sim.ledger.totals(exchange="binance")) == as_tuples(totals_of(events))
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
            sim.emit(
                [
                    TruthRecord(
                        exchange="binance",
                        market="inverse",
                        symbol="DOTUSD_PERP",
                        side="long",
                        price=Decimal("4.5"),
                        size=Decimal(12),
                        ts=int(time.time() * 1000) - 5000,
                    )
                ]
            )
            await wait_complete(redis, streams.events, sim, "binance")
        (event,) = await stream_events(redis, streams.events)
        assert feed.instruments.refreshes > loaded
        assert (Decimal(120), "DOT", "USD") == (event.notional_usd, event.base, event.quote)
        assert feed.rejects.total == 0
