"""Both ingestors, the detector and the persister in this event loop, against the simulator, real Redis
and PostgreSQL; helpers to read what they published about feed health."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import redis.asyncio as aioredis

from liq_common.codec import FEED_STATUS
from liq_common.events import FeedStatus
from liq_exchange_sim import Simulator, TruthRecord
from liq_ingest_binance.app import BinanceIngest
from liq_ingest_bybit.app import BybitIngest
from tests.conftest import Streams
from tests.ingest_binance.sim import settings_for as binance_settings
from tests.ingest_bybit.sim import settings_for as bybit_settings
from tests.waiting import scaled

# Silence rules for tests: the production ones (15 s without mark prices, 600 s without liquidations while
# others are active) scaled down so a scenario takes seconds. The production values are only constants.
HEALTH = {
    "silence_check_interval": 0.2,
    "control_timeout": 2.0,
    "quiet_after": 3.0,
    "active_min_events": 3,
    "activity_refresh": 0.3,
}
LEGACY_USDM = "/stream?streams=!forceOrder@arr"
"""The unrouted USD-M path: acknowledged, never carries forceOrder (or markPrice) data (exchange-feeds.md §1.1)."""


@dataclass
class Ingestors:
    """The running ingestors (their feeds expose the health slots)."""

    binance: BinanceIngest
    bybit: BybitIngest
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def binance_slot(self, market: str = "linear") -> Any:
        return self.binance.feeds[market].slot  # type: ignore[index]


@contextlib.asynccontextmanager
async def ingestors(
    sim: Simulator,
    client: aioredis.Redis,
    streams: Streams,
    *,
    usdm_path: str = "/market/stream?streams=!forceOrder@arr",
    binance: dict[str, Any] | None = None,
    bybit: dict[str, Any] | None = None,
) -> AsyncIterator[Ingestors]:
    """Run Binance USD-M and Bybit linear ingestors until the block ends (then stop them as SIGTERM does)."""
    common = {**HEALTH, "feed_status_stream": streams.feed}
    b_settings = binance_settings(
        sim,
        streams.events,
        binance_markets="linear",
        binance_usdm_ws_url=f"{sim.binance_usdm_ws}{usdm_path}",
        **{**common, **(binance or {})},
    )
    y_settings = bybit_settings(
        sim, streams.events, bybit_markets="linear", bybit_symbols="BTCUSDT,ETHUSDT", **{**common, **(bybit or {})}
    )
    async with httpx.AsyncClient() as http:
        running = Ingestors(BinanceIngest(b_settings, client, http), BybitIngest(y_settings, client, http))
        tasks = [
            asyncio.create_task(running.binance.run(running.stop)),
            asyncio.create_task(running.bybit.run(running.stop)),
        ]
        try:
            yield running
        finally:
            running.stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=scaled(20))


async def statuses(client: aioredis.Redis, stream: str) -> list[FeedStatus]:
    """Every feed-status event published so far, in order."""
    return [FEED_STATUS.decode(fields) for _, fields in await client.xrange(stream, "-", "+")]


def wall_of(monotonic: float) -> float:
    """Wall-clock seconds of a ``time.monotonic()`` reading taken in this process."""
    return time.time() - (time.monotonic() - monotonic)


def liquidations(
    exchange: str, symbol: str, side: str, price: str, size: str, ts: int, count: int, step_ms: int = 1
) -> list[TruthRecord]:
    """``count`` liquidations of one symbol and side, ``step_ms`` apart, starting at ``ts``."""
    return [
        TruthRecord(
            exchange=exchange,  # type: ignore[arg-type]
            market="linear",
            symbol=symbol,
            side=side,  # type: ignore[arg-type]
            price=Decimal(price),
            size=Decimal(size),
            ts=ts + i * step_ms,
        )
        for i in range(count)
    ]


async def keep_active(sim: Simulator, stop: asyncio.Event, exchange: str = "bybit", every: float = 0.1) -> None:
    """Emit one small liquidation on ``exchange`` every ``every`` seconds until ``stop``: an active market."""
    while not stop.is_set():
        now = int(time.time() * 1000)
        sim.emit(liquidations(exchange, "ETHUSDT", "short", "3000", "0.1", now, 1))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
