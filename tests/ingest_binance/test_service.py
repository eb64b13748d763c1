"""liq-ingest-binance as a process: configuration errors, publishing, graceful SIGTERM."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from liq_exchange_sim import SimConfig, Simulator
from tests.conftest import Streams
from tests.ingest_binance.sim import urls
from tests.ingest_common import process
from tests.ingest_common.harness import deliver, open_connections, stream_events
from tests.ingest_common.truth import per_market
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


async def test_bad_market_setting_exits_with_status_2() -> None:
    """An unknown BINANCE_MARKETS entry beside a known one is a configuration error (exit 2), reported with
    the setting's name before anything starts; only the unknown entry is blamed."""
    stderr = await process.config_error("liq_ingest_binance", {"BINANCE_MARKETS": "linear,spot"})
    assert "unknown market 'spot'" in stderr
    assert "unknown market 'linear'" not in stderr


async def test_publishes_then_drains_on_sigterm(redis: aioredis.Redis, redis_url: str, streams: Streams) -> None:
    """The service publishes what the simulator delivers and exits 0 on SIGTERM with everything flushed,
    closing both of its connections itself."""
    async with Simulator(SimConfig(binance_throttle_ms=1)) as sim:
        async with process.serving("liq_ingest_binance", streams, redis_url, urls(sim)) as service:
            await eventually(
                lambda: open_connections(sim, "binance_usdm") == 1 and open_connections(sim, "binance_coinm") == 1,
                timeout=30,
                what="one USD-M and one COIN-M connection",
            )
            btc = per_market("binance", {"linear": "BTCUSDT", "inverse": "BTCUSD_PERP"}, 20)
            await deliver(sim, redis, streams.events, "binance", *btc)
        await eventually(lambda: sim.stats.closes["client"] >= 2, what="both connections closed by the service")
    assert service.drained
    assert len(await stream_events(redis, streams.events)) == 40
