"""Events, cascade states and helpers for the ``liq`` tests: build them, store them the way the services do."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import redis.asyncio as aioredis

from liq_common import rawpipe
from liq_common.events import Cascade, Liquidation, RiskFactors, SideStats, make_event_id
from liq_common.observability import Health
from liq_detector.dashboard import Dashboard
from liq_persister.database import Database, DatabaseStatus
from liq_persister.writer import CascadeWriter, LiquidationWriter, prepare_stage
from tests.conftest import Streams
from tests.waiting import scaled

MINUTE = 60_000
HOUR = 3_600_000
SYMBOLS = {
    ("binance", "BTC"): ("linear", "BTCUSDT", "USDT"),
    ("bybit", "BTC"): ("linear", "BTCUSDT", "USDT"),
    ("binance", "ETH"): ("linear", "ETHUSDT", "USDT"),
    ("bybit", "ETH"): ("inverse", "ETHUSD", "USD"),
    ("binance", "SOL"): ("linear", "SOLUSDT", "USDT"),
    ("bybit", "SOL"): ("linear", "SOLUSDT", "USDT"),
}


def liq(exchange: str, base: str, side: str, usd: str, ts: int, price: str = "100000") -> Liquidation:
    """One liquidation of exactly ``usd`` dollars at ``price`` (qty derived); Binance ones are throttled."""
    market, symbol, quote = SYMBOLS[(exchange, base)]
    notional, px = Decimal(usd), Decimal(price)
    return Liquidation(
        event_id=make_event_id(exchange, market, symbol, side, ts, price, usd),
        exchange=exchange,  # type: ignore[arg-type]
        market=market,  # type: ignore[arg-type]
        symbol=symbol,
        base=base,
        quote=quote,
        side=side,  # type: ignore[arg-type]
        price=px,
        qty=notional / px,
        notional_usd=notional,
        ts=ts,
        recv_ts=ts + 40,
        throttled=exchange == "binance",
    )


def cascade(base: str, start: int, tier: str, score: float, usd: str, status: str = "open", seq: int = 0) -> Cascade:
    """A cascade state on ``base`` starting at ``start`` ms, 80% longs, on both exchanges."""
    total = Decimal(usd)
    longs, shorts = total * Decimal("0.8"), total * Decimal("0.2")
    return Cascade(
        cascade_id=f"{base}-{start}",
        seq=seq,
        status=status,  # type: ignore[arg-type]
        base=base,
        window_start=start,
        window_end=start + 45_000,
        count=12,
        long=SideStats(count=10, usd=longs),
        short=SideStats(count=2, usd=shorts),
        usd=total,
        by_exchange={"binance": SideStats(count=7, usd=longs), "bybit": SideStats(count=5, usd=shorts)},
        symbols=["BTCUSDT"],
        exchanges=["binance", "bybit"],
        price_first=Decimal("100000"),
        price_last=Decimal("98000"),
        price_min=Decimal("97900"),
        price_max=Decimal("100010"),
        price_move_pct=-2.0,
        duration_ms=45_000,
        score=score,
        factors=RiskFactors(size=score / 2, intensity=score / 2),
        tier=tier,  # type: ignore[arg-type]
        lower_bound=True,
        emitted_ts=start + 46_000,
    )


def dash_prefix(streams: Streams) -> str:
    """The detector's dashboard prefix inside this test's key space."""
    return f"{streams.prefix}liq:dash:"


async def seed_dashboard(
    client: aioredis.Redis, prefix: str, events: Sequence[Liquidation], states: Sequence[Cascade] = ()
) -> None:
    """Write dashboard state exactly as liq-detector does: through its own :class:`Dashboard` writer."""
    board = Dashboard(prefix, ttl_s=600, bucket_pct=0.1, large_usd=100_000.0, large_keep=200)
    board.add((e, float(e.notional_usd), float(e.price)) for e in sorted(events, key=lambda e: e.ts))
    board.cascades(states)
    commands, _ = board.commands()
    await rawpipe.execute(client, commands)


async def store(url: str, events: Sequence[Liquidation], states: Sequence[Cascade] = ()) -> None:
    """Write rows exactly as liq-persister does: through its own writers."""
    status = DatabaseStatus(Health())
    db = Database(url, "test", status, timeout=30.0, on_connect=prepare_stage)
    try:
        if events:
            await LiquidationWriter(db).write(events)
        if states:
            await CascadeWriter(db).write(states)
    finally:
        await db.close()


@dataclass(frozen=True)
class Result:
    """Exit status and output of one ``liq`` run."""

    code: int
    out: str
    err: str


def env_for(redis_url: str, streams: Streams, database_url: str = "") -> dict[str, str]:
    """Environment pointing ``liq`` at this test's Redis keys and database, as the services' variables."""
    env = {**os.environ, **streams.env(), "REDIS_URL": redis_url, "DASH_PREFIX": dash_prefix(streams)}
    env.update(COLUMNS="200", LINES="60", NO_COLOR="1", TERM="dumb")
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


async def run_liq(*args: str, env: dict[str, str], timeout: float = 60.0) -> Result:
    """Run ``python -m liq_cli ARGS`` as a subprocess and collect its output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "liq_cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=scaled(timeout))
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())
