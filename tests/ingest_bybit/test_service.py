"""liq-ingest-bybit as a process: configuration errors, publishing, graceful SIGTERM."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from liq_exchange_sim import SimConfig, Simulator
from tests.conftest import Streams
from tests.ingest_bybit.sim import urls
from tests.ingest_common import process
from tests.ingest_common.harness import deliver, stream_events
from tests.ingest_common.truth import per_market
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


async def test_bad_market_setting_exits_with_status_2() -> None:
    """An unknown BYBIT_MARKETS entry is a configuration error (exit 2), reported before anything starts."""
    assert "unknown market 'option'" in await process.config_error("liq_ingest_bybit", {"BYBIT_MARKETS": "option"})


async def test_publishes_then_drains_on_sigterm(redis: aioredis.Redis, redis_url: str, streams: Streams) -> None:
    """Listing over REST, subscribing, publishing, then exit 0 on SIGTERM with all flushed and links closed."""
    async with Simulator(SimConfig(bybit_push_interval_ms=20)) as sim:
        listed = sum(len(sim.universe.instruments(f)) for f in ("bybit_linear", "bybit_inverse"))
        async with process.serving("liq_ingest_bybit", streams, redis_url, urls(sim)) as service:
            await sim.wait_for(lambda s: s.stats.subscriptions == listed, timeout=30)
            btc = per_market("bybit", {"linear": "BTCUSDT", "inverse": "BTCUSD"}, 20)
            await deliver(sim, redis, streams.events, "bybit", *btc)
        await eventually(lambda: sim.stats.closes["client"] >= 2, what="both connections closed by the service")
    assert service.drained
    assert len(await stream_events(redis, streams.events)) == 40
