"""Detector benchmark: end-to-end throughput through Redis, and RSS with full ring buffers.

* Throughput: N liquidations are XADDed to a fresh stream, then one detector process (the real
  :class:`~liq_detector.service.Detector`: consumer group, engine, dashboard pipelines, cascade
  producer) runs until every entry is acknowledged. Events/s = N / that time. Events are spread
  uniformly over 1,000 bases, the worst case for the engine (almost every event falls in its own
  per-asset tick); ``make_events(zipf=...)`` builds a market-like skewed mix instead.
* Raw limit: the same N entries XADDed to another fresh stream are read by a bare
  :class:`~liq_common.consumer.ConsumerRunner` (XREADGROUP COUNT = the detector's batch size, decode into
  the same Structs, XACK) with a no-op handler, in the same run. The detector row quotes its ratio to it.
* Memory: a fresh interpreter feeds 1,000 symbols x 1,000 events (the full default ring) through the
  engine and the dashboard aggregation, and reports its peak RSS.

Run: ``uv run python bench/bench_detector.py`` (needs Redis at ``REDIS_URL``, default local).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
import redis.asyncio as aioredis
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.rows when run directly

from bench.rows import row

from liq_common.codec import LIQUIDATIONS, encode
from liq_common.consumer import ConsumerRunner
from liq_common.events import Exchange, Liquidation, PositionSide
from liq_common.logs import configure_logging
from liq_common.settings import load_settings
from liq_common.streams import connect_redis
from liq_detector.config import EngineConfig
from liq_detector.dashboard import Dashboard
from liq_detector.engine import Engine
from liq_detector.service import Detector, tune_gc
from liq_detector.settings import Settings

SYMBOLS = 1_000
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


async def _xadd_all(client: aioredis.Redis, stream: str, payloads: list[bytes]) -> float:
    """XADD ``payloads`` to ``stream`` in pipelines of 5,000; returns entries per second."""
    started = time.perf_counter()
    for i in range(0, len(payloads), 5_000):
        pipe = client.pipeline(transaction=False)
        for p in payloads[i : i + 5_000]:
            pipe.xadd(stream, {b"data": p})
        await pipe.execute()
    return len(payloads) / (time.perf_counter() - started)


async def _until(processed: Callable[[], int], n: int) -> None:
    while processed() < n:  # noqa: ASYNC110 - polls a runner counter, 10 ms resolution
        await asyncio.sleep(0.01)


async def throughput(n: int, symbols: int, zipf: float) -> dict[str, float]:
    """Detector events/s over ``n`` fresh entries, then the bare consumer loop's over another ``n``."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    env = {
        "REDIS_URL": url,
        "EVENTS_STREAM": prefix + "events",
        "CASCADES_STREAM": prefix + "cascades",
        "DEAD_STREAM": prefix + "dead",
        "DASH_PREFIX": prefix + "dash:",
        "METRICS_PORT": "0",
    }
    settings = load_settings(Settings, env)
    client = connect_redis(url)
    try:
        payloads = [encode(e) for e in make_events(n, symbols, spacing_ms=2.0, zipf=zipf)]
        xadd_rate = await _xadd_all(client, settings.events_stream, payloads)
        stop = asyncio.Event()
        detector = Detector(settings, client, clock=lambda: 1_000.0)
        started = time.perf_counter()
        cpu = time.process_time()
        task = asyncio.create_task(detector.run(stop))
        await _until(lambda: detector.runner.processed, n)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        stop.set()
        await task
        raw = await raw_consumer(client, prefix + "raw", payloads, settings.batch_size)
        return {
            "events_s": n / elapsed,
            "seconds": elapsed,
            "cpu_s": cpu,
            "xadd_s": xadd_rate,
            "published": detector.published,
            "raw_events_s": raw,
            "batch_size": settings.batch_size,
        }
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def raw_consumer(client: aioredis.Redis, stream: str, payloads: list[bytes], batch_size: int) -> float:
    """Events/s of the consumer loop alone (read, decode, ack; no-op handler) over a fresh stream.

    Started and timed as the detector is: from ``run`` until the runner has acknowledged every entry.
    """

    async def handler(batch: list[tuple[bytes, Liquidation]]) -> None:
        return None

    await _xadd_all(client, stream, payloads)
    runner = ConsumerRunner(
        client,
        stream=stream,
        group="bench-raw",
        consumer="c",
        codec=LIQUIDATIONS,
        handler=handler,
        dead_stream=stream + ":dead",
        batch_size=batch_size,
        block_ms=500,
    )
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(runner.run(stop))
    await _until(lambda: runner.processed, len(payloads))
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    return len(payloads) / elapsed


def memory_phase() -> None:
    """Child process: fill every ring, print peak RSS in MB as JSON."""
    tune_gc()
    cfg = EngineConfig()
    engine = Engine(cfg)
    dash = Dashboard("bench:", 3600, 0.1, 100_000, 200)
    n = SYMBOLS * cfg.ring_size
    chunk = 20_000
    # Generate and feed in chunks so the generator's list does not count as detector memory.
    for i in range(0, n, chunk):
        events = make_events(chunk, SYMBOLS, spacing_ms=1.0, start=i, seed=i)
        engine.ingest(events)
        dash.add(engine.accepted)
        dash.commands()
        del events
    full = sum(1 for r in engine.rings.rings.values() if r.count == cfg.ring_size)
    rss = psutil.Process().memory_info().rss / 2**20
    print(json.dumps({"rss_mb": rss, "full_rings": full, "window_events": engine.window_events}))


PASSES = 5
"""Passes, each a detector run then a raw-consumer run on fresh streams. The rate rows keep the best of
each (the least disturbed by other load on a shared 2-core machine, as bench_persister does); the ratio
is the median of the per-pass ratios, each taken from two runs seconds apart under the same load."""


def _rates(passes: list[dict[str, float]], key: str) -> str:
    return ", ".join(f"{p[key]:,.0f}" for p in passes)


def _throughput_rows(n: int, symbols: int, zipf: float, target: float | None, what: str) -> list[dict[str, Any]]:
    # The service runs on uvloop too (liq_common.runtime).
    passes = [uvloop.run(throughput(n, symbols, zipf)) for _ in range(PASSES)]
    paired = sorted(p["events_s"] / p["raw_events_s"] for p in passes)
    share = paired[len(paired) // 2]
    r = {**max(passes, key=lambda p: p["events_s"]), "raw_events_s": max(p["raw_events_s"] for p in passes)}
    mix = f"Zipf s={zipf}" if zipf else "uniform"
    detector = row(
        "detector",
        f"end_to_end_events_per_s_{what}",
        r["events_s"],
        "events/s",
        target,
        f"{n} events, {symbols} bases ({mix}), XREADGROUP + engine + dashboard + XACK in one process: "
        f"{r['seconds']:.2f} s wall, {r['cpu_s']:.2f} s CPU ({n / r['cpu_s']:,.0f} events per CPU-second); "
        f"{r['published']} cascade states; best of {PASSES} passes ({_rates(passes, 'events_s')})",
    )
    raw = row(
        "detector",
        "raw_consumer_events_per_s",
        r["raw_events_s"],
        "events/s",
        None,
        f"raw limit in the same run: ConsumerRunner with a no-op handler over a fresh stream of the same "
        f"{n} entries, COUNT {r['batch_size']} (the detector's BATCH_SIZE), decode + XACK; best of {PASSES} passes "
        f"({_rates(passes, 'raw_events_s')})",
    )
    ratio = row(
        "detector",
        "ratio_to_raw_limit",
        share,
        "x raw",
        0.5,
        f"detector / raw consumer loop, worst-case mix: median of {PASSES} paired passes "
        f"({', '.join(f'{x:.2f}' for x in paired)})",
    )
    return [detector, raw, ratio]


def run() -> list[dict[str, Any]]:
    """Benchmark rows for ``make bench``."""
    n = int(os.environ.get("BENCH_DETECTOR_EVENTS", "150000"))
    configure_logging("bench", "warning", "json")  # keep cascade log lines out of the benchmark output
    tune_gc()  # as liq_detector.__main__ does
    rows = _throughput_rows(n, SYMBOLS, 0.0, 50_000.0, "uniform_1000")
    child = subprocess.run(
        [sys.executable, __file__, "--memory-phase"], capture_output=True, text=True, check=True, timeout=120
    )
    mem = json.loads(child.stdout.strip().splitlines()[-1])
    rows.append(
        row(
            "detector",
            "rss_full_rings",
            mem["rss_mb"],
            "MB",
            300.0,
            f"{mem['full_rings']} symbols with a full 1,000-event ring; {mem['window_events']} in windows",
            higher=False,
        )
    )
    return rows


if __name__ == "__main__":
    if "--memory-phase" in sys.argv:
        memory_phase()
    else:
        for row in run():
            print(row)
