"""The detector benchmark's workload: liquidations over many bases, and filling a stream with them."""

from __future__ import annotations

import random
import time
from decimal import Decimal

import redis.asyncio as aioredis

from liq_common.events import Exchange, Liquidation, PositionSide

SYMBOLS = 1_000
"""Bases of the throughput and memory workloads."""
T0 = 1_767_225_600_000


def make_events(
    n: int, symbols: int, spacing_ms: float, start: int = 0, seed: int = 3, zipf: float = 0.0
) -> list[Liquidation]:
    """``n`` liquidations over ``symbols`` bases, ``spacing_ms`` apart in event time.

    ``zipf`` = 0 spreads events round-robin (every base equally busy, the worst case for per-asset
    ticks); ``zipf`` > 0 draws bases with weight 1/rank^zipf, as on a real market where BTC and ETH carry
    most liquidations, each base then trading on both venues. Each base has its own price random walk (so
    price-level buckets cluster as on a real market); sizes are $100 to $20k; Binance events are
    throttled.
    """
    rng = random.Random(seed)
    prices = [10.0 + (k % 97) for k in range(symbols)]
    weights = [1 / (k + 1) ** zipf for k in range(symbols)] if zipf else None
    picks = rng.choices(range(symbols), weights=weights, k=n) if weights else None
    cent = Decimal("0.01")
    out = []
    for j in range(start, start + n):
        k = picks[j - start] if picks else j % symbols
        base = f"C{k:04d}"
        on_binance = rng.random() < 0.5 if zipf else k % 2 == 1
        exchange: Exchange = "binance" if on_binance else "bybit"
        side: PositionSide = "long" if rng.random() < 0.5 else "short"
        ts = T0 + int(j * spacing_ms)
        prices[k] *= 1 + rng.uniform(-0.0005, 0.0005)
        price = Decimal(round(prices[k], 4)).quantize(Decimal("0.0001"))
        usd = Decimal(rng.randrange(10_000, 2_000_000)) * cent
        out.append(
            Liquidation(
                event_id=f"{j:032x}",
                exchange=exchange,
                market="linear",
                symbol=base + "USDT",
                base=base,
                quote="USDT",
                side=side,
                price=price,
                qty=usd / price,
                notional_usd=usd,
                ts=ts,
                recv_ts=ts + 100,
                throttled=exchange == "binance",
            )
        )
    return out


async def xadd_all(client: aioredis.Redis, stream: str, payloads: list[bytes]) -> float:
    """XADD ``payloads`` to ``stream`` in pipelines of 5,000; returns entries per second."""
    started = time.perf_counter()
    for i in range(0, len(payloads), 5_000):
        pipe = client.pipeline(transaction=False)
        for p in payloads[i : i + 5_000]:
            pipe.xadd(stream, {b"data": p})
        await pipe.execute()
    return len(payloads) / (time.perf_counter() - started)
