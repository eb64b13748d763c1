"""Ingest benchmarks: parse + normalise per exchange (beside stdlib ``json``), and end to end
simulator -> ingestor -> Redis.

Run: ``uv run python bench/bench_ingest.py`` (prints one row per measurement). ``run()`` returns the
rows for ``make bench``. The end-to-end rows need the local Redis (``REDIS_URL``); the simulator runs
in a child process so it does not share the ingestor's core.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import msgspec
import psutil
from bench.rows import row

from liq_common.streams import connect_redis
from liq_ingest_binance.instruments import Instruments, Meta
from liq_ingest_binance.normalise import Normaliser as BinanceNormaliser
from liq_ingest_binance.wire import FRAME_DECODER as BINANCE_FRAMES
from liq_ingest_bybit.instruments import Symbols
from liq_ingest_bybit.normalise import Normaliser as BybitNormaliser
from liq_ingest_bybit.wire import FRAME_DECODER as BYBIT_FRAMES

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
FRAMES = 200_000
E2E_EVENTS = 60_000
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "BNBUSDT", "ADAUSDT", "AVAXUSDT"]


def _binance_frames(n: int) -> list[bytes]:
    rng = random.Random(1)
    out = []
    for i in range(n):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        price = f"{rng.uniform(0.1, 70000):.2f}"
        size = f"{rng.randint(1, 99999) / 1000:.3f}"
        order = {
            "s": symbol, "S": rng.choice(("BUY", "SELL")), "o": "LIMIT", "f": "IOC", "q": size,
            "p": price, "ap": price, "X": "FILLED", "l": size, "z": size, "T": 1767225600000 + i,
        }  # fmt: skip
        out.append(msgspec.json.encode({"stream": "!forceOrder@arr", "data": {"e": "forceOrder", "E": 0, "o": order}}))
    return out


def _bybit_frames(n: int, per_push: int = 3) -> list[bytes]:
    rng = random.Random(2)
    out = []
    for i in range(n):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        data = [
            {"T": 1767225600000 + i, "s": symbol, "S": rng.choice(("Buy", "Sell")),
             "v": f"{rng.randint(1, 99999) / 1000:.3f}", "p": f"{rng.uniform(0.1, 70000):.2f}"}
            for _ in range(per_push)
        ]  # fmt: skip
        out.append(
            msgspec.json.encode({"topic": f"allLiquidation.{symbol}", "type": "snapshot", "ts": 0, "data": data})
        )
    return out


def _rate(count: int, fn: Any, frames: list[bytes]) -> float:
    """Best of 5 runs, in items per second of this process's CPU time (one core, immune to other load)."""
    best = 0.0
    for _ in range(5):
        started = time.process_time()
        fn(frames)
        best = max(best, count / (time.process_time() - started))
    return best


def bench_parse() -> list[dict[str, Any]]:
    """Decode + normalise throughput on one core, beside ``json.loads`` alone on the same frames."""
    table = Instruments("linear", "http://unused", httpx.AsyncClient())
    table.symbols = {s: Meta(s[:-4], "USDT", None) for s in SYMBOLS}
    binance = BinanceNormaliser("linear", table)
    bybit = BybitNormaliser("linear", Symbols())
    bframes = _binance_frames(FRAMES)
    yframes = _bybit_frames(FRAMES // 3)

    def binance_path(frames: list[bytes]) -> None:
        decode, normalise = BINANCE_FRAMES.decode, binance.normalise
        for raw in frames:
            event = decode(raw).event()
            assert event is not None
            normalise(event, 1767225600500)

    def bybit_path(frames: list[bytes]) -> None:
        decode, normalise = BYBIT_FRAMES.decode, bybit.normalise
        for raw in frames:
            normalise(decode(raw).data or [], 1767225600500)

    def stdlib(frames: list[bytes]) -> None:
        loads = json.loads
        for raw in frames:
            loads(raw)

    def generic(frames: list[bytes]) -> None:
        loads = msgspec.json.decode
        for raw in frames:
            loads(raw)

    yliqs = len(yframes) * 3
    b_rate, b_raw = _rate(len(bframes), binance_path, bframes), _rate(len(bframes), stdlib, bframes)
    y_rate, y_raw = _rate(yliqs, bybit_path, yframes), _rate(yliqs, stdlib, yframes)
    b_generic, y_generic = _rate(len(bframes), generic, bframes), _rate(yliqs, generic, yframes)
    return [
        row("binance", "parse_normalise", b_rate, "frames/s", 300_000,
             "typed decode + Decimal + event id + Liquidation, combined envelope; per CPU-second, best of 5"),
        row("binance", "stdlib_json_loads", b_raw, "frames/s", None,
             f"json.loads alone on the same frames, no normalisation (raw limit); untyped msgspec.json.decode "
             f"{b_generic:,.0f}/s"),
        _ratio("binance", b_rate, b_raw),
        row("bybit", "parse_normalise", y_rate, "liquidations/s", 300_000,
             "3 liquidations per push, msgspec typed decode + normalise; per CPU-second of one process, best of 5"),
        row("bybit", "stdlib_json_loads", y_raw, "liquidations/s", None,
             f"json.loads alone on the same pushes (raw limit); untyped msgspec.json.decode {y_generic:,.0f}/s"),
        _ratio("bybit", y_rate, y_raw),
    ]  # fmt: skip


def _ratio(exchange: str, rate: float, raw: float) -> dict[str, Any]:
    """The parse stage's ratio to its raw limit: decoding the same frames with json.loads, nothing else."""
    note = f"{exchange} parse + normalise / json.loads of the same frames ({rate:,.0f} / {raw:,.0f} per s)"
    return row("parse", f"{exchange}_ratio_to_raw_limit", rate / raw, "x raw", 0.5, note)


def _env(extra: dict[str, str], stream: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "BYBIT_"))}
    env.update({"EVENTS_STREAM": stream, "METRICS_PORT": "0", "LOG_LEVEL": "warning", "LOG_FORMAT": "json"})
    env.update({"REDIS_URL": REDIS_URL, **extra})
    return env


async def _end_to_end(exchange: str, count: int) -> tuple[float, str]:
    """Events/s from the first record played by the simulator to the last event in Redis.

    The ingestor runs as the real service (``python -m liq_ingest_<exchange>``) in its own process,
    the simulator in this one: the two cores are shared as in production (exchange remote, ingestor local).
    """
    from liq_exchange_sim import SimConfig, Simulator, TruthRecord
    from liq_exchange_sim.scenarios.runner import run_records

    stream = f"bench:{uuid.uuid4().hex[:8]}:liq:events"
    config = SimConfig(binance_throttle_ms=0, bybit_push_interval_ms=20, keep_ledger_entries=False)
    redis = connect_redis(REDIS_URL)
    async with Simulator(config) as sim:
        if exchange == "binance":
            module = "liq_ingest_binance"
            extra = {
                "BINANCE_MARKETS": "linear",
                "BINANCE_USDM_WS_URL": f"{sim.binance_usdm_ws}/market/stream?streams=!forceOrder@arr",
                "BINANCE_USDM_REST_URL": sim.binance_usdm_rest,
            }
            ready = lambda s: len(s.connections()) == 1  # noqa: E731
        else:
            module = "liq_ingest_bybit"
            extra = {
                "BYBIT_MARKETS": "linear",
                "BYBIT_SYMBOLS": ",".join(SYMBOLS),
                "BYBIT_LINEAR_WS_URL": f"{sim.bybit_ws}/v5/public/linear",
            }
            ready = lambda s: s.stats.subscriptions == len(SYMBOLS)  # noqa: E731
        profile = os.environ.get("BENCH_INGEST_PROFILE")  # a path: write a cProfile of the service there
        command = ["-m", "cProfile", "-o", f"{profile}.{exchange}", "-m", module] if profile else ["-m", module]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *command, env=_env(extra, stream), stdout=asyncio.subprocess.DEVNULL
        )
        try:
            await sim.wait_for(ready, timeout=30)
            service = psutil.Process(proc.pid)
            cpu_before = sum(service.cpu_times()[:2])
            t0 = 1_767_225_600_000
            records = (
                TruthRecord(
                    exchange=exchange,  # type: ignore[arg-type]
                    market="linear",
                    symbol=SYMBOLS[i % len(SYMBOLS)],
                    side="long" if i % 3 else "short",
                    price=Decimal("65000.1"),
                    size=Decimal(i % 997 + 1) / 1000,
                    ts=t0 + i,
                )
                for i in range(count)
            )
            started = time.perf_counter()
            await run_records(sim.hub, records, speed=0)
            played = time.perf_counter() - started
            while await redis.xlen(stream) < count:
                if time.perf_counter() - started > 120:
                    break
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
            published = await redis.xlen(stream)
            cpu = sum(service.cpu_times()[:2]) - cpu_before
            frames = sim.stats.frames_sent
        finally:
            proc.terminate()
            status = await proc.wait()
            await redis.delete(stream)
            await redis.aclose()
    note = (
        f"{published} of {count} events in Redis in {elapsed:.2f}s ({frames} frames); simulator done writing "
        f"after {played:.2f}s; service subprocess, uvloop; SIGTERM exit status {status}; "
        f"service CPU {cpu:.2f}s = {published / cpu:.0f} events per CPU-second"
    )
    return published / elapsed, note


def _uvloop(coro: Any) -> tuple[float, str]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(coro)  # type: ignore[no-any-return]
    return uvloop.run(coro)  # type: ignore[no-any-return]


def bench_end_to_end() -> list[dict[str, Any]]:
    """Simulator -> ingestor service -> Redis, for each exchange."""
    rows = []
    for exchange in ("binance", "bybit"):
        rate, note = _uvloop(_end_to_end(exchange, E2E_EVENTS))
        rows.append(row(exchange, "end_to_end", rate, "events/s", 20_000, note))
    return rows


def run() -> list[dict[str, Any]]:
    """Every ingest benchmark row."""
    return bench_parse() + bench_end_to_end()


if __name__ == "__main__":
    for row in run():
        sys.stdout.write(json.dumps(row) + "\n")
