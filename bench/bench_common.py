"""libs/common: producer publish rate and consumer-runner (read + decode + ack) rate against local Redis.

Targets (issue 2): producer >= 30,000 events/s, consumer runner >= 50,000 events/s, on one core.
Also measures the raw limit on the same machine: pipelined XADD of the same payloads from a bare
redis-py loop (no buffering, no metrics), to quote the producer's ratio to it.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from decimal import Decimal
from typing import Any

from liq_common.codec import LIQUIDATIONS, encode
from liq_common.consumer import ConsumerRunner
from liq_common.events import Liquidation, make_event_id
from liq_common.streams import StreamProducer, connect_redis, xadd_many

N = int(os.environ.get("BENCH_COMMON_EVENTS", "100000"))
URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def events(n: int) -> list[Liquidation]:
    return [
        Liquidation(
            event_id=make_event_id("binance", "linear", "BTCUSDT", "long", 1_700_000_000_000 + i, "43511.7", "0.003"),
            exchange="binance",
            market="linear",
            symbol="BTCUSDT",
            base="BTC",
            quote="USDT",
            side="long",
            price=Decimal("43511.70"),
            qty=Decimal("0.003"),
            notional_usd=Decimal("130.53510"),
            ts=1_700_000_000_000 + i,
            recv_ts=1_700_000_000_050 + i,
            throttled=True,
        )
        for i in range(n)
    ]


async def bench() -> list[dict[str, Any]]:
    client = connect_redis(URL)
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    stream, raw_stream, dead = prefix + "events", prefix + "raw", prefix + "dead"
    evs = events(N)
    try:
        # raw limit: bare pipelined XADD of pre-encoded payloads, 1,000 per round trip
        payloads = [encode(e) for e in evs]
        t = time.perf_counter()
        for i in range(0, N, 1000):
            await xadd_many(client, raw_stream, payloads[i : i + 1000], 10_000_000)
        raw_rate = N / (time.perf_counter() - t)

        producer = StreamProducer(client, stream, maxlen=10_000_000)
        stop = asyncio.Event()
        task = asyncio.create_task(producer.run(stop))
        t = time.perf_counter()
        for e in evs:
            await producer.put(e)
        await producer.drained()
        pub_rate = N / (time.perf_counter() - t)
        stop.set()
        await task

        done = 0
        finished = asyncio.Event()

        async def handler(batch: list[tuple[bytes, Liquidation]]) -> None:
            nonlocal done
            done += len(batch)
            if done >= N:
                finished.set()

        runner = ConsumerRunner(
            client,
            stream=stream,
            group="bench",
            consumer="c",
            codec=LIQUIDATIONS,
            handler=handler,
            dead_stream=dead,
            batch_size=1000,
            claim_interval=3600,
        )
        stop = asyncio.Event()
        t = time.perf_counter()
        task = asyncio.create_task(runner.run(stop))
        await finished.wait()
        cons_rate = N / (time.perf_counter() - t)
        stop.set()
        await task
    finally:
        await client.delete(stream, raw_stream, dead)
        await client.aclose()
    return [
        {
            "stage": "redis raw",
            "metric": "pipelined XADD (bare loop)",
            "value": raw_rate,
            "unit": "events/s",
            "target": None,
            "higher_is_better": True,
            "note": f"{N:,} JSON events, 1,000 per pipeline",
        },
        {
            "stage": "common",
            "metric": "producer publish",
            "value": pub_rate,
            "unit": "events/s",
            "target": 30_000,
            "higher_is_better": True,
            "note": f"{pub_rate / raw_rate:.0%} of raw pipelined XADD",
        },
        {
            "stage": "common",
            "metric": "consumer read+decode+ack",
            "value": cons_rate,
            "unit": "events/s",
            "target": 50_000,
            "higher_is_better": True,
            "note": "COUNT 1000, hiredis",
        },
    ]


def run() -> list[dict[str, Any]]:
    return asyncio.run(bench())


if __name__ == "__main__":
    for row in run():
        print(row)
