"""The detector stage as shards: ``count`` detector processes (``SHARD_COUNT``) over one events stream.

Each shard is its own interpreter (``python bench/detector_shards.py index count n env``): it builds the
real :class:`~liq_detector.service.Detector` with ``SHARD_INDEX``/``SHARD_COUNT``, prints ``ready``, and
starts consuming when the parent writes ``go`` on its stdin, so interpreter start-up is not timed. It
stops once its runner has acknowledged all ``n`` entries (its own assets' events processed, the others'
routed) and prints when that was (``time.perf_counter``, CLOCK_MONOTONIC: comparable between processes
on Linux) and its CPU time. The stage's rate is ``n`` over the time from ``go`` until the last shard is
done, which is what a user running the shards would see.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.* when run directly

from liq_common.consumer import ConsumerRunner
from liq_common.events import Liquidation
from liq_common.logs import configure_logging
from liq_common.settings import load_settings
from liq_common.streams import connect_redis
from liq_detector.service import Detector, tune_gc
from liq_detector.settings import Settings
from liq_detector.shard import Routed, RoutingDecoder, Shard


def stream_env(url: str) -> dict[str, str]:
    """Settings environment of a detector on fresh streams under a unique prefix."""
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    return {
        "REDIS_URL": url,
        "EVENTS_STREAM": prefix + "events",
        "CASCADES_STREAM": prefix + "cascades",
        "DEAD_STREAM": prefix + "dead",
        "DASH_PREFIX": prefix + "dash:",
        "METRICS_PORT": "0",
    }


async def drop_keys(client: aioredis.Redis, env: dict[str, str]) -> None:
    """Delete every key the run created (they share the events stream's prefix)."""
    prefix = env["EVENTS_STREAM"].removesuffix("events")
    keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
    if keys:
        await client.delete(*keys)


async def wait_for(processed: Any, n: int) -> None:
    """Until ``processed()`` reaches ``n`` (10 ms resolution, as the single-process pass)."""
    while processed() < n:  # noqa: ASYNC110 - polls a runner counter
        await asyncio.sleep(0.01)


def run_shards(env: dict[str, str], n: int, count: int, raw: bool = False) -> dict[str, float]:
    """Run ``count`` shards over the ``n`` entries already in ``env``'s events stream; returns the stage's
    events/s, wall seconds, the shards' total CPU seconds and the events they processed as their own.

    ``raw``: each process is the shards' raw limit instead: the same reading (its own group, every entry,
    routed by :class:`~liq_detector.shard.RoutingDecoder`, only its own assets fully decoded, XACK) with
    a no-op handler.
    """
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, str(k), str(count), str(n), json.dumps(env), "raw" if raw else "detector"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(count)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"shard did not start: {line!r}")
        started = time.perf_counter()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        done = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    wall = max(d["done"] for d in done) - started
    return {
        "events_s": n / wall,
        "seconds": wall,
        "cpu_s": sum(d["cpu_s"] for d in done),
        "own": sum(d["own"] for d in done),
    }


def shard_main(index: int, count: int, n: int, env: dict[str, str], raw: bool) -> None:
    """Child process: one shard (or its raw limit), timed from ``go`` until its runner acknowledged ``n`` entries."""
    configure_logging("bench", "warning", "json")
    tune_gc()  # as liq_detector.__main__ does

    async def main() -> None:
        settings = load_settings(
            Settings, {**env, "SHARD_INDEX": str(index), "SHARD_COUNT": str(count), "CONSUMER": f"bench-{index}"}
        )
        client = connect_redis(settings.redis_url)
        own = 0

        async def count_own(batch: list[tuple[bytes, Liquidation | Routed]]) -> None:
            nonlocal own
            own += sum(1 for _, ev in batch if isinstance(ev, Liquidation))

        if raw:
            shard = Shard(index, count)
            runner: ConsumerRunner[Liquidation | Routed] = ConsumerRunner(
                client,
                stream=settings.events_stream,
                group=settings.consumer_group + ":raw",
                consumer=settings.consumer,
                codec=RoutingDecoder(shard),
                handler=count_own,
                dead_stream=settings.dead_stream,
                batch_size=settings.batch_size,
                block_ms=500,
            )
            work, processed = runner.run, lambda: runner.processed
        else:
            detector = Detector(settings, client, clock=lambda: 1_000.0)
            work, processed = detector.run, lambda: detector.runner.processed
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        cpu = time.process_time()
        stop = asyncio.Event()
        task = asyncio.create_task(work(stop))
        await wait_for(processed, n)
        done = time.perf_counter()
        cpu = time.process_time() - cpu
        stop.set()
        await task
        await client.aclose()
        print(json.dumps({"done": done, "cpu_s": cpu, "own": own if raw else detector.processed}), flush=True)

    uvloop.run(main())


if __name__ == "__main__":
    shard_main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5] == "raw")
