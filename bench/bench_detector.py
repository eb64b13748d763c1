"""Detector benchmark: end-to-end throughput through Redis, and RSS with full ring buffers.

* Throughput: N liquidations are XADDed to a fresh stream, then one detector process (the real
  :class:`~liq_detector.service.Detector`: consumer group, engine, dashboard pipelines, cascade
  producer) runs until every entry is acknowledged. Events/s = N / that time. Events are spread
  uniformly over 1,000 bases, the worst case for the engine (almost every event falls in its own
  per-asset tick); ``make_events(zipf=...)`` builds a market-like skewed mix instead.
* Raw limit: the same N entries XADDed to another fresh stream are read by a bare
  :class:`~liq_common.consumer.ConsumerRunner` (XREADGROUP COUNT = the detector's batch size, decode into
  the same Structs, XACK) with a no-op handler, in the same run; the detector's ratio is to it.
* Sharded: the same N entries through ``SHARDS`` detector processes (``SHARD_COUNT``,
  ``bench/detector_shards.py``), and through as many raw processes reading as the shards do (their own
  raw limit, so the sharded ratio compares like with like).
* Memory: a fresh interpreter feeds 1,000 symbols x 1,000 events (the full default ring) through the
  engine and the dashboard aggregation, and reports its peak RSS.

Run: ``uv run python bench/bench_detector.py`` (needs Redis at ``REDIS_URL``, default local).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import redis.asyncio as aioredis
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.rows when run directly

from bench.detector_shards import drop_keys, run_shards, stream_env, wait_for
from bench.detector_workload import SYMBOLS, make_events, xadd_all
from bench.rows import row

from liq_common.codec import LIQUIDATIONS, encode
from liq_common.consumer import ConsumerRunner
from liq_common.events import Liquidation
from liq_common.logs import configure_logging
from liq_common.settings import load_settings
from liq_common.streams import connect_redis
from liq_detector.config import EngineConfig
from liq_detector.dashboard import Dashboard
from liq_detector.engine import Engine
from liq_detector.service import Detector, tune_gc
from liq_detector.settings import Settings


async def throughput(payloads: list[bytes], url: str) -> dict[str, float]:
    """One detector process over the entries ``payloads`` on a fresh stream, then the bare consumer
    loop over another fresh stream of the same entries."""
    n = len(payloads)
    env = stream_env(url)
    settings = load_settings(Settings, env)
    client = connect_redis(url)
    try:
        xadd_rate = await xadd_all(client, settings.events_stream, payloads)
        stop = asyncio.Event()
        detector = Detector(settings, client, clock=lambda: 1_000.0)
        started = time.perf_counter()
        cpu = time.process_time()
        task = asyncio.create_task(detector.run(stop))
        await wait_for(lambda: detector.runner.processed, n)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        stop.set()
        await task
        raw = await raw_consumer(client, env["EVENTS_STREAM"] + ":raw", payloads, settings.batch_size)
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
        await drop_keys(client, env)
        await client.aclose()


async def _fill(url: str, env: dict[str, str], payloads: list[bytes]) -> None:
    client = connect_redis(url)
    try:
        await xadd_all(client, env["EVENTS_STREAM"], payloads)
    finally:
        await client.aclose()


async def _drop(url: str, env: dict[str, str]) -> None:
    client = connect_redis(url)
    try:
        await drop_keys(client, env)
    finally:
        await client.aclose()


def sharded(payloads: list[bytes], url: str, count: int, raw: bool = False) -> dict[str, float]:
    """``count`` detector shards (separate processes; ``raw``: their raw limit) over the entries ``payloads``
    on a fresh stream. Fails unless the shards together processed every event as their own exactly once."""
    env = stream_env(url)
    uvloop.run(_fill(url, env, payloads))
    try:
        result = run_shards(env, len(payloads), count, raw)
    finally:
        uvloop.run(_drop(url, env))
    if result["own"] != len(payloads):
        raise RuntimeError(f"shards processed {result['own']} of {len(payloads)} events as their own")
    return result


async def raw_consumer(client: aioredis.Redis, stream: str, payloads: list[bytes], batch_size: int) -> float:
    """Events/s of the consumer loop alone (read, decode, ack; no-op handler) over a fresh stream.

    Started and timed as the detector is: from ``run`` until the runner has acknowledged every entry.
    """

    async def handler(batch: list[tuple[bytes, Liquidation]]) -> None:
        return None

    await xadd_all(client, stream, payloads)
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
    await wait_for(lambda: runner.processed, len(payloads))
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
"""Passes, each a one-process detector run, a raw-consumer run and a sharded run on fresh streams of the
same entries. The rate rows keep the best of each (the least disturbed by other load on a shared 2-core
machine, as bench_persister does); the ratios are medians of the per-pass ratios, each taken from runs
seconds apart under the same load."""

SHARDS = 2
"""Detector shards of the sharded pass: one per core of the project's machine."""


def _rates(passes: list[dict[str, float]], key: str) -> str:
    return ", ".join(f"{p[key]:,.0f}" for p in passes)


def _median(values: list[float]) -> tuple[float, str]:
    ordered = sorted(values)
    return ordered[len(ordered) // 2], ", ".join(f"{x:.2f}" for x in ordered)


def _throughput_rows(n: int, symbols: int, zipf: float, target: float | None, what: str) -> list[dict[str, Any]]:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    payloads = [encode(e) for e in make_events(n, symbols, spacing_ms=2.0, zipf=zipf)]
    passes = []
    for _ in range(PASSES):
        one = uvloop.run(throughput(payloads, url))  # the service runs on uvloop too (liq_common.runtime)
        shards = sharded(payloads, url, SHARDS)
        raw_shards = sharded(payloads, url, SHARDS, raw=True)
        passes.append(
            {
                **one,
                "shards_s": shards["events_s"],
                "shards_cpu_s": shards["cpu_s"],
                "raw_shards_s": raw_shards["events_s"],
            }
        )
    single, single_ratios = _median([p["events_s"] / p["raw_events_s"] for p in passes])
    stage, stage_ratios = _median([p["shards_s"] / p["raw_shards_s"] for p in passes])
    r = {**max(passes, key=lambda p: p["events_s"]), "raw_events_s": max(p["raw_events_s"] for p in passes)}
    best_shards = max(passes, key=lambda p: p["shards_s"])
    mix = f"Zipf s={zipf}" if zipf else "uniform"
    return [
        row(
            "detector",
            f"end_to_end_events_per_s_{what}",
            r["events_s"],
            "events/s",
            target,
            f"{n} events, {symbols} bases ({mix}), XREADGROUP + engine + dashboard + XACK in one process: "
            f"{r['seconds']:.2f} s wall, {r['cpu_s']:.2f} s CPU ({n / r['cpu_s']:,.0f} events per CPU-second); "
            f"{r['published']} cascade states; best of {PASSES} passes ({_rates(passes, 'events_s')})",
        ),
        row(
            "detector",
            f"sharded_events_per_s_{what}",
            best_shards["shards_s"],
            "events/s",
            target,
            f"the same entries through {SHARDS} detector processes (SHARD_COUNT={SHARDS}), each reading every entry "
            f"with its own group and fully decoding only its own assets', timed until the last is done: "
            f"{best_shards['shards_cpu_s']:.2f} s CPU in all; best of {PASSES} passes ({_rates(passes, 'shards_s')})",
        ),
        row(
            "detector",
            "raw_consumer_events_per_s",
            r["raw_events_s"],
            "events/s",
            None,
            f"raw limit in the same run: one ConsumerRunner with a no-op handler over a fresh stream of the same "
            f"{n} entries, COUNT {r['batch_size']} (the detector's BATCH_SIZE), decode into Liquidation + XACK; "
            f"best of {PASSES} passes ({_rates(passes, 'raw_events_s')})",
        ),
        row(
            "detector",
            "sharded_raw_events_per_s",
            max(p["raw_shards_s"] for p in passes),
            "events/s",
            None,
            f"raw limit of {SHARDS} shards: {SHARDS} processes reading as the shards do (own group, every entry, "
            f"routed, own assets fully decoded, XACK) with a no-op handler; best of {PASSES} passes "
            f"({_rates(passes, 'raw_shards_s')})",
        ),
        row(
            "detector",
            "one_process_ratio_to_raw_limit",
            single,
            "x raw",
            None,
            f"one detector process / the bare consumer loop (one process), worst-case mix: median of {PASSES} "
            f"paired passes ({single_ratios}); sits at the 50 % line: the engine and dashboard cost about as much "
            "CPU per event as reading and decoding it",
        ),
        row(
            "detector",
            "ratio_to_raw_limit",
            stage,
            "x raw",
            0.5,
            f"the stage as {SHARDS} shards (deploy/docker-compose.shards.yml) / its raw limit ({SHARDS} processes "
            f"reading alike), worst-case mix: median of {PASSES} paired passes ({stage_ratios})",
        ),
    ]


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
