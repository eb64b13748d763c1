"""Benchmark: liquidation frames per second the exchange simulator sustains to one websocket client.

Rows:
- Binance USD-M ``/market/ws/!forceOrder@arr`` (raw frames), throttle window 0 ms so every record is a
  frame (the rule code still runs), records played as fast as possible, client (plain websockets) in its
  own process; both on uvloop, as the services run. The rate is end to end: first record played to last frame received.
- Bybit linear ``allLiquidation`` with one liquidation per push (push interval 1 ms), same set-up.
- The synthetic generator's record rate (no network).
- The raw limit: a bare ``websockets`` server on uvloop writing the same number of pre-encoded frames of
  each feed's shape to the same client, 1,000 frames per write as the simulator batches them (the
  protocol's framing and one flow-controlled write: no rules, no ledger, no encoding); each feed's
  ``ratio_to_raw_limit`` row divides the simulator's rate by it (issue 11: >= 50 %).

Each network row is the median of three runs (the machine is shared, so single runs are noisy).
Run: ``uv run python bench/bench_simulator.py``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Coroutine, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.rows when run directly

from bench.rows import row

from liq_exchange_sim import SimConfig, Simulator, SyntheticConfig, TruthRecord, Universe, generate
from liq_exchange_sim.scenarios.runner import run_records

FRAMES = 60_000
REPEATS = 3
TARGET = 20_000.0
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "BNBUSDT", "ADAUSDT", "AVAXUSDT"]


def _records(exchange: str, count: int) -> Iterator[TruthRecord]:
    t0 = 1_767_225_600_000
    price, size = Decimal("65000.1"), Decimal("0.123")
    for i in range(count):
        yield TruthRecord(
            exchange=exchange,  # type: ignore[arg-type]
            market="linear",
            symbol=SYMBOLS[i % len(SYMBOLS)],
            side="long" if i % 3 else "short",
            price=price,
            size=size,
            ts=t0 + i,
        )


CLIENT = """
import asyncio, json, sys, time
import websockets

async def main(url, subscribe, count):
    async with websockets.connect(url, max_size=None, ping_interval=None) as ws:
        if subscribe:
            await ws.send(subscribe)
            await ws.recv()
        print("ready", flush=True)
        received, first = 0, 0.0
        while received < count:
            await ws.recv()
            if received == 0:
                first = time.perf_counter()
            received += 1
        print(json.dumps([received, time.perf_counter() - first]), flush=True)

try:
    import uvloop
    uvloop.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
except ImportError:
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def _frames_per_second(feed: str, count: int = FRAMES) -> tuple[float, str]:
    """Frames/s from the first record played to the last frame received by a client in another process."""
    config = SimConfig(binance_throttle_ms=0, bybit_push_interval_ms=1, keep_ledger_entries=False)
    async with Simulator(config) as sim:
        if feed == "binance":
            url, subscribe = f"{sim.binance_usdm_ws}/market/ws/!forceOrder@arr", ""
        else:
            topics = [f"allLiquidation.{s}" for s in SYMBOLS]
            url, subscribe = f"{sim.bybit_ws}/v5/public/linear", json.dumps({"op": "subscribe", "args": topics})
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLIENT, url, subscribe, str(count), stdout=asyncio.subprocess.PIPE
        )
        assert proc.stdout is not None
        assert (await proc.stdout.readline()).strip() == b"ready"
        await sim.wait_for(lambda s: len(s.connections()) == 1)
        started = time.perf_counter()
        await run_records(sim.hub, _records(feed, count), speed=0)
        played = time.perf_counter() - started
        received, client_seconds = json.loads(await proc.stdout.readline())
        elapsed = time.perf_counter() - started
        await proc.wait()
        sent = sim.stats.frames_sent
    rate = received / elapsed
    note = (
        f"{received} frames received of {sent} sent in {elapsed:.2f}s; simulator done writing after {played:.2f}s "
        f"({count / played:.0f}/s); client busy {client_seconds:.2f}s"
    )
    return rate, note


def _sample_frame(feed: str) -> bytes:
    """One frame of ``feed``'s wire shape, the size the simulator sends."""
    if feed == "binance":
        order = {
            "s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "0.123", "p": "65000.1", "ap": "65000.1",
            "X": "FILLED", "l": "0.123", "z": "0.123", "T": 1767225600000,
        }  # fmt: skip
        return json.dumps({"e": "forceOrder", "E": 1767225600001, "o": order}, separators=(",", ":")).encode()
    item = {"T": 1767225600000, "s": "BTCUSDT", "S": "Buy", "v": "0.123", "p": "65000.1"}
    push = {"topic": "allLiquidation.BTCUSDT", "type": "snapshot", "ts": 1767225600001, "data": [item]}
    return json.dumps(push, separators=(",", ":")).encode()


async def _raw_frames_per_second(feed: str, count: int = FRAMES) -> tuple[float, str]:
    """Frames/s of a bare websockets writer to the same client process (the raw limit)."""
    from websockets.asyncio.server import ServerConnection, serve

    frame = _sample_frame(feed)
    go = asyncio.Event()
    played = 0.0

    async def handler(ws: ServerConnection) -> None:
        nonlocal played
        await go.wait()
        started = time.perf_counter()
        for sent in range(0, count, 1000):
            async with ws.send_context():  # what the simulator's send_texts does, minus everything else
                for _ in range(min(1000, count - sent)):
                    ws.protocol.send_text(frame)
        played = time.perf_counter() - started
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, ping_interval=None, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLIENT, f"ws://127.0.0.1:{port}", "", str(count), stdout=asyncio.subprocess.PIPE
        )
        assert proc.stdout is not None
        assert (await proc.stdout.readline()).strip() == b"ready"
        started = time.perf_counter()
        go.set()
        received, client_seconds = json.loads(await proc.stdout.readline())
        elapsed = time.perf_counter() - started
        await proc.wait()
    return received / elapsed, (
        f"{received} frames of {len(frame)} bytes in {elapsed:.2f}s; server done writing after {played:.2f}s; "
        f"client busy {client_seconds:.2f}s"
    )


def _median_of_runs(measure: Any, feed: str) -> tuple[float, str]:
    runs = sorted((_run(measure(feed)) for _ in range(REPEATS)), key=lambda r: r[0])
    rate, note = runs[len(runs) // 2]
    return rate, f"median of {REPEATS} runs ({', '.join(f'{r:.0f}' for r, _ in runs)}/s); median run: {note}"


def _run(coro: Coroutine[Any, Any, tuple[float, str]]) -> tuple[float, str]:
    """Run on uvloop like the services do (liq_common.runtime), falling back to asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(coro)
    return uvloop.run(coro)


def _generator_rate() -> tuple[float, str]:
    config = SyntheticConfig(seed=1, duration_s=3600, background_rate=20, cascades=4, chops=2)
    started = time.perf_counter()
    records, _ = generate(config, Universe.default())
    elapsed = time.perf_counter() - started
    return len(records) / elapsed, f"{len(records)} records for a 1 h run in {elapsed:.2f}s"


def run() -> list[dict[str, Any]]:
    """Measure and return the benchmark rows."""
    rows: list[dict[str, Any]] = []
    for feed, metric in (("binance", "binance_usdm_frames_per_s"), ("bybit", "bybit_linear_frames_per_s")):
        rate, note = _median_of_runs(_frames_per_second, feed)
        raw, raw_note = _median_of_runs(_raw_frames_per_second, feed)
        rows += [
            row("exchange-sim", metric, rate, "frames/s", TARGET, note),
            row("exchange-sim", f"{feed}_raw_websocket_frames_per_s", raw, "frames/s", None,
                f"bare batched writer; {raw_note}"),
            row("simulator", f"{feed}_ratio_to_raw_limit", rate / raw, "x raw", 0.5,
                f"simulator / bare websockets writer ({rate:,.0f} / {raw:,.0f} frames/s)"),
        ]  # fmt: skip
    rate, note = _generator_rate()
    rows.append(row("exchange-sim", "synthetic_records_per_s", rate, "records/s", None, note))
    return rows


if __name__ == "__main__":
    for row in run():
        sys.stdout.write(json.dumps(row) + "\n")
