"""liq top: cost of one dashboard refresh (read + aggregate + render) against local Redis.

The detector's own writer fills an hour of dashboard state for many assets (BENCH_CLI_ASSETS, default
500, each with liquidations in every minute); then the time of `DashboardReader.read` is measured cold
(first refresh: 60 minute hashes) and warm (the steady state: only the newest minutes are re-read), and
the time of rendering the screen. Target: a warm refresh well under the one-second refresh interval
(<= 100 ms including rendering) so the dashboard stays live with a thousand assets.
"""

from __future__ import annotations

import asyncio
import io
import os
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.rows when run directly

from bench.rows import row

from liq_cli.dashboard import DashboardReader
from liq_cli.top import render
from liq_common import rawpipe
from liq_common.events import Liquidation, make_event_id
from liq_common.streams import connect_redis
from liq_detector.dashboard import Dashboard

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
ASSETS = int(os.environ.get("BENCH_CLI_ASSETS", "500"))
ROUNDS = 20


def hour_of_events(now: int) -> list[Liquidation]:
    """Two liquidations per asset per minute over the last hour, on both exchanges and sides."""
    out = []
    minute0 = now - now % 60_000 - 59 * 60_000
    for m in range(60):
        for a in range(ASSETS):
            for k, (exchange, side) in enumerate((("binance", "long"), ("bybit", "short"))):
                ts = minute0 + m * 60_000 + a % 50_000 + k
                price = Decimal(100 + a)
                out.append(
                    Liquidation(
                        event_id=make_event_id(exchange, "linear", f"A{a}USDT", side, ts, str(price)),
                        exchange=exchange,  # type: ignore[arg-type]
                        market="linear",
                        symbol=f"A{a}USDT",
                        base=f"A{a}",
                        quote="USDT",
                        side=side,  # type: ignore[arg-type]
                        price=price,
                        qty=Decimal(10),
                        notional_usd=price * 10,
                        ts=ts,
                        recv_ts=ts + 30,
                        throttled=exchange == "binance",
                    )
                )
    return sorted(out, key=lambda e: e.ts)


async def bench() -> list[dict[str, Any]]:
    client = connect_redis(URL)
    prefix = f"bench:{uuid.uuid4().hex[:8]}:liq:dash:"
    try:
        now = int(time.time() * 1000)
        board = Dashboard(prefix, ttl_s=600, bucket_pct=0.1, large_usd=100_000.0, large_keep=200)
        events = hour_of_events(now)
        for i in range(0, len(events), 20_000):  # written in flushes, as the detector does
            board.add((e, float(e.notional_usd), float(e.price)) for e in events[i : i + 20_000])
            commands, _ = board.commands()
            await rawpipe.execute(client, commands)

        reader = DashboardReader(client, prefix)
        started = time.perf_counter()
        state = await reader.read(now_ms=now)
        cold = time.perf_counter() - started
        assert len(state.assets) == ASSETS, len(state.assets)
        warm, draw = [], []
        console = Console(file=io.StringIO(), width=200, height=50)
        for _ in range(ROUNDS):
            started = time.perf_counter()
            state = await reader.read(now_ms=now)
            warm.append(time.perf_counter() - started)
            started = time.perf_counter()
            console.print(render(state, prefix))
            draw.append(time.perf_counter() - started)
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    note = f"{ASSETS} assets x 60 minutes, local Redis"
    cold_ms, warm_ms, draw_ms = cold * 1000, statistics.median(warm) * 1000, statistics.median(draw) * 1000
    return [
        row(
            "cli", "top_refresh_cold_ms", cold_ms, "ms", None, note + ", first refresh reads every minute", higher=False
        ),
        row("cli", "top_refresh_warm_ms", warm_ms, "ms", 100.0, note + ", median read of 20", higher=False),
        row("cli", "top_render_ms", draw_ms, "ms", 100.0, "rich layout to a 200x50 screen, median of 20", higher=False),
    ]


def run() -> list[dict[str, Any]]:
    """Benchmark rows (see module docstring)."""
    return asyncio.run(bench())


if __name__ == "__main__":
    for row in run():
        print(row)
