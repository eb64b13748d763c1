"""liq-ingest-binance as a process: configuration errors, publishing, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from liq_exchange_sim import SimConfig, Simulator
from tests.conftest import Streams
from tests.ingest_common import service
from tests.ingest_common.harness import open_connections, records, stream_events, wait_complete
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


async def test_bad_market_setting_exits_with_status_2() -> None:
    """An unknown BINANCE_MARKETS entry is a configuration error, reported before anything starts."""
    proc = await service.start("liq_ingest_binance", {"BINANCE_MARKETS": "linear,spot"})
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 2
    assert b"BINANCE_MARKETS" in stderr


async def test_publishes_then_drains_on_sigterm(redis: aioredis.Redis, redis_url: str, streams: Streams) -> None:
    """The service publishes what the simulator delivers and exits 0 on SIGTERM with everything flushed."""
    async with Simulator(SimConfig(binance_throttle_ms=1)) as sim:
        env = {
            **streams.env(),
            "REDIS_URL": redis_url,
            "BINANCE_USDM_WS_URL": f"{sim.binance_usdm_ws}/market/stream?streams=!forceOrder@arr",
            "BINANCE_COINM_WS_URL": f"{sim.binance_coinm_ws}/stream?streams=!forceOrder@arr",
            "BINANCE_USDM_REST_URL": sim.binance_usdm_rest,
            "BINANCE_COINM_REST_URL": sim.binance_coinm_rest,
        }
        proc = await service.start("liq_ingest_binance", env)
        try:
            await eventually(
                lambda: open_connections(sim, "binance_usdm") == 1 and open_connections(sim, "binance_coinm") == 1,
                timeout=30,
            )
            now = int(time.time() * 1000) - 60_000
            sim.emit(records("binance", "linear", {"BTCUSDT": Decimal(65000)}, 20, now))
            sim.emit(records("binance", "inverse", {"BTCUSD_PERP": Decimal(65000)}, 20, now))
            await sim.flush()
            await wait_complete(redis, streams.events, sim, "binance")
        finally:
            status, stdout = await service.stop(proc)
        await eventually(lambda: sim.stats.closes["client"] >= 2)
    assert status == 0
    assert '"event":"service_stopped"' in stdout
    assert len(await stream_events(redis, streams.events)) == 40
