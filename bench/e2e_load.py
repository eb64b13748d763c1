"""The load of the end-to-end benchmark: paced background records and cascade-opening bursts.

Every 10 ms the due share of ``RATE`` records/s is emitted with event time ``ts`` = the wall clock,
round-robin over the background symbols of ``SHARES``, at tiny sizes (about $10) so no asset opens a
cascade by itself; every ``BURST_EVERY_S`` a burst of ``BURST_EVENTS`` liquidations of ``BURST_USD`` on a
fresh asset (both exchanges, 40 ms apart, an asset no background record touches) opens one. See the
docstring of ``bench/bench_e2e.py`` for the whole setup.
"""

from __future__ import annotations

import asyncio
import os
import time
from decimal import Decimal

from liq_exchange_sim import Simulator, TruthRecord
from liq_exchange_sim.instruments import Instrument, Universe
from liq_exchange_sim.truth import Feed

RATE = int(os.environ.get("BENCH_E2E_RATE", "2000"))
SECONDS = int(os.environ.get("BENCH_E2E_SECONDS", "60"))
BACKGROUND_EXTRA = 40
"""Generated symbols carrying background load on Binance USD-M and Bybit linear (50 each with the majors)."""
BURST_EVERY_S = 0.5
BURST_EVENTS = 30
BURST_USD = Decimal(20_000)
BURSTS = int((SECONDS - 3) / BURST_EVERY_S) + 1
"""One fresh base per burst, never touched by background load, so each opening is attributable."""
SHARES: tuple[tuple[Feed, float], ...] = (
    ("binance_usdm", 0.45),
    ("bybit_linear", 0.45),
    ("binance_coinm", 0.05),
    ("bybit_inverse", 0.05),
)
VENUE: dict[Feed, tuple[str, str]] = {
    "binance_usdm": ("binance", "linear"),
    "binance_coinm": ("binance", "inverse"),
    "bybit_linear": ("bybit", "linear"),
    "bybit_inverse": ("bybit", "inverse"),
}


class Load:
    """Builds the paced records: event time = now, unique (exchange, symbol, ts), tiny background sizes."""

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        generated = [i.base for i in universe.instruments("binance_usdm") if i.base.startswith("SIM")]
        self.burst_bases = [b for b in generated[BACKGROUND_EXTRA:] if universe.get("bybit_linear", f"{b}USDT")]
        reserved = set(self.burst_bases)
        self.symbols = {
            feed: [i for i in universe.instruments(feed) if i.base not in reserved] for feed, _ in SHARES
        }  # fmt: skip
        self.next = dict.fromkeys(self.symbols, 0)
        self.last_ts: dict[tuple[str, str], int] = {}
        self.quota = dict.fromkeys(self.symbols, 0.0)

    def ts_for(self, exchange: str, symbol: str, now_ms: int) -> int:
        ts = max(now_ms, self.last_ts.get((exchange, symbol), 0) + 1)
        self.last_ts[(exchange, symbol)] = ts
        return ts

    def record(self, feed: Feed, inst: Instrument, usd: Decimal, side: str, now_ms: int) -> TruthRecord:
        exchange, market = VENUE[feed]
        if feed == "binance_coinm":
            size = max(Decimal(1), (usd / inst.contract_size).quantize(Decimal(1)))
        elif feed == "bybit_inverse":
            size = max(Decimal(1), usd.quantize(Decimal(1)))
        else:
            size = max(inst.step_size, (usd / inst.ref_price).quantize(inst.step_size))
        return TruthRecord(
            exchange=exchange,  # type: ignore[arg-type]
            market=market,  # type: ignore[arg-type]
            symbol=inst.symbol,
            side=side,  # type: ignore[arg-type]
            price=inst.ref_price,
            size=size,
            ts=self.ts_for(exchange, inst.symbol, now_ms),
        )

    def background(self, count: int, now_ms: int) -> list[TruthRecord]:
        out = []
        for feed, share in SHARES:
            self.quota[feed] += count * share
            items = self.symbols[feed]
            while self.quota[feed] >= 1:
                self.quota[feed] -= 1
                inst = items[self.next[feed] % len(items)]
                self.next[feed] += 1
                side = "long" if self.next[feed] % 2 else "short"
                out.append(self.record(feed, inst, Decimal(10), side, now_ms))
        return out

    def burst_event(self, base: str, i: int, now_ms: int, usd: Decimal = BURST_USD) -> TruthRecord:
        feed: Feed = "binance_usdm" if i % 2 == 0 else "bybit_linear"
        inst = self.universe.get(feed, f"{base}USDT")
        assert inst is not None
        return self.record(feed, inst, usd, "long", now_ms)


async def emit_load(sim: Simulator, load: Load, seconds: float) -> tuple[int, int]:
    """Emit RATE records/s for ``seconds`` plus a burst every BURST_EVERY_S; returns (records, bursts)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    emitted = bursts = 0
    burst_tasks: list[asyncio.Task[None]] = []

    async def burst(base: str) -> None:
        for i in range(BURST_EVENTS):
            sim.emit([load.burst_event(base, i, int(time.time() * 1000))])
            await asyncio.sleep(0.04)

    # One small liquidation per burst asset two minutes in the past: the detector opens nothing on an asset
    # without a complete minute of history before its window (RISK.md cold start), and a 60 s run has none.
    seed_ms = int(time.time() * 1000) - 120_000
    for base in load.burst_bases:
        sim.emit([load.burst_event(base, i, seed_ms, Decimal(10)) for i in range(2)])
    next_burst = 3.0
    while (elapsed := loop.time() - started) < seconds:
        due = int(elapsed * RATE) - emitted
        if due > 0:
            emitted += sim.emit(load.background(due, int(time.time() * 1000)))
        if elapsed >= next_burst and bursts < len(load.burst_bases):
            burst_tasks.append(asyncio.create_task(burst(load.burst_bases[bursts])))
            bursts += 1
            next_burst += BURST_EVERY_S
        await asyncio.sleep(0.01)
    await asyncio.gather(*burst_tasks)
    return emitted + bursts * BURST_EVENTS, bursts
