"""Running an ingestor in-process against the exchange simulator and checking what reached Redis."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import redis.asyncio as aioredis

from liq_common.codec import LIQUIDATIONS
from liq_common.events import Liquidation
from liq_exchange_sim import Simulator, Totals, TruthRecord
from tests.waiting import scaled

Key = tuple[str, str, str]

REJECT_REASON = {
    "json": "bad_json",
    "wrong_type": "wrong_type",
    "missing_field": "missing_field",
    "nan": "bad_number",
    "negative": "non_positive",
    "huge": "oversized",
}
"""The reject reason each of the simulator's malformed-frame kinds must be counted under."""


def minute_ago() -> int:
    """Event time one minute before now, ms: recent, and clear of the future-timestamp guard."""
    return int(time.time() * 1000) - 60_000


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


async def stream_events(redis: aioredis.Redis, stream: str) -> list[Liquidation]:
    """Every liquidation on ``stream``, decoded (fails on an undecodable entry)."""
    entries = await redis.xrange(stream, "-", "+")
    return [LIQUIDATIONS.decode(fields) for _, fields in entries]


def totals_of(events: list[Liquidation]) -> dict[Key, Totals]:
    """Count and USD sum by (exchange, market, side), shaped like the simulator's ledger totals."""
    table: dict[Key, Totals] = {}
    for event in events:
        key = (event.exchange, event.market, event.side)
        current = table.setdefault(key, Totals(0, Decimal(0)))
        current.count += 1
        current.usd += event.notional_usd
    return table


def as_tuples(table: dict[Key, Totals]) -> dict[Key, tuple[int, Decimal]]:
    """Totals as plain tuples, for equality assertions."""
    return {key: (t.count, t.usd) for key, t in table.items()}


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


def records(
    exchange: str, market: str, symbols: dict[str, Decimal], count: int, start_ms: int, seed: int = 7
) -> list[TruthRecord]:
    """``count`` liquidations spread over ``symbols`` (symbol -> reference price), 1 ms apart per symbol.

    Sizes are drawn with few decimals, as exchanges print them; sides alternate randomly.
    """
    rng = random.Random(seed)
    names = sorted(symbols)
    out = []
    for i in range(count):
        symbol = names[i % len(names)]
        price = (symbols[symbol] * Decimal(rng.uniform(0.95, 1.05))).quantize(Decimal("0.01"))
        size = Decimal(rng.randint(1, 5000)) / (Decimal(1000) if market == "linear" else Decimal(1))
        out.append(
            TruthRecord(
                exchange=exchange,  # type: ignore[arg-type]
                market=market,  # type: ignore[arg-type]
                symbol=symbol,
                side="long" if rng.random() < 0.5 else "short",
                price=max(price, Decimal("0.01")),
                size=size,
                ts=start_ms + 3 * (i // len(names)),
            )
        )
    return out
