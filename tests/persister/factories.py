"""Deterministic liquidations and cascade states for the persister tests, and publishing them fast."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from decimal import Decimal

import redis.asyncio as aioredis

from liq_common.codec import FIELD, encode
from liq_common.events import Cascade, Liquidation, RiskFactors, SideStats, make_event_id

BASE_TS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, ms
SYMBOLS = (
    ("binance", "linear", "BTCUSDT", "BTC", "USDT"),
    ("bybit", "linear", "ETHUSDT", "ETH", "USDT"),
    ("binance", "inverse", "BTCUSD_PERP", "BTC", "USD"),
    ("bybit", "inverse", "SOLUSD", "SOL", "USD"),
)


def liquidations(count: int, seed: int = 1, start: int = 0) -> list[Liquidation]:
    """``count`` distinct liquidations (ids ``start`` .. ``start + count - 1``) with exact decimal sizes."""
    rng = random.Random(seed)
    events = []
    for i in range(start, start + count):
        exchange, market, symbol, base, quote = SYMBOLS[i % len(SYMBOLS)]
        side = "long" if rng.random() < 0.5 else "short"
        price = Decimal(rng.randrange(1_000_000, 10_000_000)) / 100
        qty = Decimal(rng.randrange(1, 100_000)) / 1000
        ts = BASE_TS + i * 7
        contracts = Decimal(rng.randrange(1, 1000)) if market == "inverse" else None
        events.append(
            Liquidation(
                event_id=make_event_id(exchange, market, symbol, side, ts, str(price), str(qty), str(i)),
                exchange=exchange,  # type: ignore[arg-type]
                market=market,  # type: ignore[arg-type]
                symbol=symbol,
                base=base,
                quote=quote,
                side=side,
                price=price,
                qty=qty,
                notional_usd=price * qty,
                ts=ts,
                recv_ts=ts + 35,
                contracts=contracts,
                throttled=exchange == "binance",
            )
        )
    return events


def cascade(cascade_id: str, seq: int, status: str = "update", usd: str = "1000.50") -> Cascade:
    """One cascade state whose numbers depend on ``seq`` (so a test can tell states apart)."""
    return Cascade(
        cascade_id=cascade_id,
        seq=seq,
        status=status,  # type: ignore[arg-type]
        base="BTC",
        window_start=BASE_TS,
        window_end=BASE_TS + 1000 * (seq + 1),
        count=10 + seq,
        long=SideStats(count=7 + seq, usd=Decimal(usd)),
        short=SideStats(count=3, usd=Decimal("0.25")),
        usd=Decimal(usd) + Decimal("0.25"),
        by_exchange={
            "binance": SideStats(count=6, usd=Decimal("700.10")),
            "bybit": SideStats(count=4, usd=Decimal("300.65")),
        },
        symbols=["BTCUSDT", "BTCUSD_PERP"],
        exchanges=["binance", "bybit"],
        price_first=Decimal("50000.5"),
        price_last=Decimal("49000.25"),
        price_min=Decimal("48999.75"),
        price_max=Decimal("50001"),
        price_move_pct=-1.9990,
        duration_ms=1000 * (seq + 1),
        score=0.5 + seq / 10,
        factors=RiskFactors(
            size=0.1, intensity=0.2, acceleration=0.05, breadth=0.1, one_sidedness=0.05, displacement=0.0
        ),
        tier="medium",
        lower_bound=True,
        coverage={"binance:linear": 1.0, "bybit:linear": 0.75},
        emitted_ts=BASE_TS + 2000 * (seq + 1),
    )


async def publish(client: aioredis.Redis, stream: str, events: Sequence[object], chunk: int = 10_000) -> None:
    """XADD ``events`` to ``stream`` (no trimming), fast: the RESP commands are written in bulk on one
    socket to the same server as ``client``, each chunk's replies read and checked before the next.

    redis-py spends ~20 µs per command building it; 100,000 events would take seconds to publish.
    """
    kwargs = client.connection_pool.connection_kwargs
    reader, writer = await asyncio.open_connection(kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379))
    try:
        if kwargs.get("password"):
            user = [str(kwargs["username"]).encode()] if kwargs.get("username") else []
            writer.write(_command(b"AUTH", *user, str(kwargs["password"]).encode()))
            assert (await reader.readline()).startswith(b"+OK")
        if kwargs.get("db"):
            writer.write(_command(b"SELECT", str(kwargs["db"]).encode()))
            assert (await reader.readline()).startswith(b"+OK")
        key = stream.encode()
        payloads = [encode(event) for event in events]  # type: ignore[arg-type]
        for i in range(0, len(payloads), chunk):
            part = payloads[i : i + chunk]
            writer.write(b"".join(_command(b"XADD", key, b"*", FIELD, payload) for payload in part))
            await writer.drain()
            for _ in part:
                header = await reader.readline()
                if not header.startswith(b"$"):
                    raise AssertionError(f"XADD failed: {header!r}")
                await reader.readexactly(int(header[1:]) + 2)
    finally:
        writer.close()
        await writer.wait_closed()


def _command(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def usd_total(events: Sequence[Liquidation]) -> Decimal:
    """Exact sum of ``notional_usd``."""
    return sum((e.notional_usd for e in events), Decimal(0))
