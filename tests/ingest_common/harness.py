"""Running an ingestor in-process against the exchange simulator and waiting for what reaches Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis

from liq_common.codec import LIQUIDATIONS
from liq_common.events import Liquidation
from liq_exchange_sim import Simulator, TruthRecord
from tests.waiting import scaled

S = TypeVar("S")

# Fast timers for tests: reconnect within tens of ms, detect a dead link within a second.
FAST = {
    "reconnect_base": 0.02,
    "reconnect_cap": 0.2,
    "reconnect_reset_after": 0.5,
    "rate_limited_backoff": 1.0,
    "open_timeout": 2.0,
    "ping_interval": 0.3,
    "ping_timeout": 0.6,
    "log_level": "warning",
}


def fast_settings(cls: Callable[..., S], events_stream: str, exchange: dict[str, Any], overrides: dict[str, Any]) -> S:
    """``cls`` with the :data:`FAST` timers and ``events_stream``, then the exchange's values, then ``overrides``."""
    return cls(**{**FAST, "events_stream": events_stream, **exchange, **overrides})


async def stream_events(redis: aioredis.Redis, stream: str) -> list[Liquidation]:
    """Every liquidation on ``stream``, decoded (fails on an undecodable entry)."""
    entries = await redis.xrange(stream, "-", "+")
    return [LIQUIDATIONS.decode(fields) for _, fields in entries]


async def wait_complete(
    redis: aioredis.Redis, stream: str, sim: Simulator, exchange: str, timeout: float = 20.0
) -> None:
    """Wait until the stream holds as many events as the simulator delivered for ``exchange``."""
    deadline = asyncio.get_running_loop().time() + scaled(timeout)
    while True:
        delivered = sum(t.count for t in sim.ledger.totals(exchange=exchange).values())
        length = await redis.xlen(stream)
        if length >= delivered and delivered > 0:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"stream has {length} events, simulator delivered {delivered}")
        await asyncio.sleep(0.02)


async def deliver(
    sim: Simulator, redis: aioredis.Redis, stream: str, exchange: str, *batches: list[TruthRecord]
) -> None:
    """Emit ``batches``, have the simulator write the frames, and wait until ``stream`` holds all it delivered."""
    for batch in batches:
        sim.emit(batch)
    await sim.flush()
    await wait_complete(redis, stream, sim, exchange)


def open_connections(sim: Simulator, feed: str) -> int:
    """Connections of ``feed`` the simulator holds open and still sends on right now."""
    return len([c for c in sim.connections(feed) if not c.closed.is_set() and not c.closing])  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(run: Callable[[asyncio.Event], Awaitable[None]]) -> AsyncIterator[asyncio.Event]:
    """Run ``run(stop)`` in a task; on exit set ``stop`` and wait for a clean return."""
    stop = asyncio.Event()
    task = asyncio.ensure_future(run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=scaled(20))
