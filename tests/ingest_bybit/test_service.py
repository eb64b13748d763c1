"""liq-ingest-bybit as a process: configuration errors, publishing, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from liq_exchange_sim import SimConfig, Simulator
from tests.conftest import Streams
from tests.ingest_common import service
from tests.ingest_common.harness import records, stream_events, wait_complete

pytestmark = pytest.mark.e2e


async def test_bad_market_setting_exits_with_status_2() -> None:
    """An unknown BYBIT_MARKETS entry is a configuration error, reported before anything starts."""
    proc = await service.start("liq_ingest_bybit", {"BYBIT_MARKETS": "option"})
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 2
    assert b"BYBIT_MARKETS" in stderr


async def test_publishes_then_drains_on_sigterm(redis: aioredis.Redis, redis_url: str, streams: Streams) -> None:
    """Listing over REST, subscribing, publishing, then exit 0 on SIGTERM with everything flushed."""
    async with Simulator(SimConfig(bybit_push_interval_ms=20)) as sim:
        env = {
            **streams.env(),
            "REDIS_URL": redis_url,
            "BYBIT_LINEAR_WS_URL": f"{sim.bybit_ws}/v5/public/linear",
            "BYBIT_INVERSE_WS_URL": f"{sim.bybit_ws}/v5/public/inverse",
            "BYBIT_REST_URL": sim.bybit_rest,
        }
        listed = sum(len(sim.universe.instruments(f)) for f in ("bybit_linear", "bybit_inverse"))
        proc = await service.start("liq_ingest_bybit", env)
        try:
            await sim.wait_for(lambda s: s.stats.subscriptions == listed, timeout=30)
            now = int(time.time() * 1000) - 60_000
            sim.emit(records("bybit", "linear", {"BTCUSDT": Decimal(65000)}, 20, now))
            sim.emit(records("bybit", "inverse", {"BTCUSD": Decimal(65000)}, 20, now))
            await sim.flush()
            await wait_complete(redis, streams.events, sim, "bybit")
        finally:
            status, stdout = await service.stop(proc)
    assert status == 0
    assert '"event":"service_stopped"' in stdout
    assert len(await stream_events(redis, streams.events)) == 40
