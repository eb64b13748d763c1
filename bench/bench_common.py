"""libs/common: producer publish rate and consumer-runner (read + decode + ack) rate against local Redis.

Targets (issue 2): producer >= 30,000 events/s, consumer runner >= 50,000 events/s, on one core.
Also measures the raw limits on the same machine, with the same JSON payloads:

* the server's: ``redis-benchmark -c 1 -P 100`` (a C client) pipelining XADD;
* a raw client loop: one asyncio socket, 1,000 XADDs packed by hiredis per write, replies parsed by a
  ``hiredis.Reader``; no buffering, no metrics, no encoding (payloads pre-encoded). This is the fastest a
  Python process publishes, so the publish stage's ratio (issue 11: >= 50 %) is taken against it;
* a bare redis-py pipeline loop (what most Python code would write), for reference.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import hiredis
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.rows when run directly

from bench.rows import row

from liq_common.codec import LIQUIDATIONS, encode
from liq_common.consumer import ConsumerRunner
from liq_common.events import Liquidation, make_event_id
from liq_common.streams import StreamProducer, connect_redis

N = int(os.environ.get("BENCH_COMMON_EVENTS", "100000"))
URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PASSES = 5
"""Paired passes of the raw client loop and the producer over the same events, on fresh streams. The rate
rows keep the best of each; the publish ratio is the median of the per-pass ratios (two runs a second
apart under the same load; one pair alone swung from 55 % to 99 % between runs on the shared machine)."""


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


def redis_benchmark_xadd(key: str, payload: bytes, n: int = 200_000) -> float:
    """XADD/s that redis-benchmark reaches with one connection pipelining 100 commands (0 if unavailable)."""
    host, port = "127.0.0.1", "6379"
    if URL.startswith("redis://"):
        hostport = URL.removeprefix("redis://").split("/", 1)[0].rsplit("@", 1)[-1]
        host, _, port = hostport.partition(":")
    try:
        out = subprocess.run(
            [
                "redis-benchmark",
                "-h",
                host,
                "-p",
                port or "6379",
                "-c",
                "1",
                "-P",
                "100",
                "-n",
                str(n),
                "-q",
                "XADD",
                key,
                "MAXLEN",
                "~",
                "10000000",
                "*",
                "data",
                payload.decode(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0.0
    # "XADD ...: 312500.00 requests per second, p50=..." (last figure before "requests per second")
    tail = out.strip().splitlines()[-1]
    return float(tail.split(" requests per second")[0].rsplit(" ", 1)[-1])


def _host_port() -> tuple[str, int, str | None]:
    """(host, port, password) of ``URL`` (``redis://[:password@]host[:port][/db]``)."""
    hostport = URL.removeprefix("redis://").split("/", 1)[0]
    auth, _, hostport = hostport.rpartition("@")
    host, _, port = hostport.partition(":")
    return host or "127.0.0.1", int(port or 6379), auth.rpartition(":")[2] or None


async def raw_client_xadd(key: bytes, payloads: list[bytes], per_write: int = 1000) -> float:
    """XADD/s of the raw client loop (see the module docstring) over ``payloads``."""
    host, port, password = _host_port()
    reader, writer = await asyncio.open_connection(host, port)
    parser = hiredis.Reader()
    pack = hiredis.pack_command

    async def replies(count: int) -> None:
        got = 0
        while got < count:
            parser.feed(await reader.read(1 << 16))
            while (reply := parser.gets()) is not False:
                if isinstance(reply, hiredis.ReplyError):
                    raise RuntimeError(str(reply))
                got += 1

    try:
        if password:
            writer.write(pack((b"AUTH", password)))
            await replies(1)
        started = time.perf_counter()
        for i in range(0, len(payloads), per_write):
            chunk = payloads[i : i + per_write]
            writer.write(
                b"".join([pack((b"XADD", key, b"MAXLEN", b"~", b"10000000", b"*", b"data", p)) for p in chunk])
            )
            await replies(len(chunk))
        return len(payloads) / (time.perf_counter() - started)
    finally:
        writer.close()
        await writer.wait_closed()


async def publish(client: aioredis.Redis, stream: str, evs: list[Liquidation]) -> float:
    """Events/s of the shared producer (encode, buffer, pipelined XADD) putting ``evs`` on ``stream``."""
    producer = StreamProducer(client, stream, maxlen=10_000_000)
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(stop))
    started = time.perf_counter()
    for e in evs:
        await producer.put(e)
    await producer.drained()
    rate = len(evs) / (time.perf_counter() - started)
    stop.set()
    await task
    return rate


async def bench() -> list[dict[str, Any]]:
    client = connect_redis(URL)
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    stream, raw_stream, dead = prefix + "events", prefix + "raw", prefix + "dead"
    evs = events(N)
    try:
        # Raw limits on the same machine: the server (redis-benchmark, a C client), the raw client loop and a
        # bare redis-py pipeline loop.
        server_rate = redis_benchmark_xadd(raw_stream, encode(evs[0]))
        payloads = [encode(e) for e in evs]
        t = time.perf_counter()
        for i in range(0, N, 1000):
            pipe = client.pipeline(transaction=False)
            for payload in payloads[i : i + 1000]:
                pipe.xadd(raw_stream, {b"data": payload}, maxlen=10_000_000, approximate=True)
            await pipe.execute()
        raw_rate = N / (time.perf_counter() - t)
        await client.delete(raw_stream)
        loop_rates, pub_rates = [], []
        for _ in range(PASSES):
            loop_rates.append(await raw_client_xadd(raw_stream.encode(), payloads))
            await client.delete(raw_stream, stream)
            pub_rates.append(await publish(client, stream, evs))  # the last pass's stream feeds the consumer
        ratios = sorted(p / q for p, q in zip(pub_rates, loop_rates, strict=True))
        ratio = ratios[len(ratios) // 2]
        loop_rate, pub_rate = max(loop_rates), max(pub_rates)

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
    rate = "events/s"
    return [
        row(
            "redis raw", "XADD, redis-benchmark -c 1 -P 100", server_rate, rate, None, "server limit, same JSON payload"
        ),
        row(
            "redis raw",
            "XADD, raw client loop",
            loop_rate,
            rate,
            None,
            f"asyncio socket + hiredis, 1,000 XADD per write; best of {PASSES} ({_rates(loop_rates)})",
        ),
        row(
            "redis raw",
            "XADD, bare redis-py pipeline loop",
            raw_rate,
            rate,
            None,
            "redis-py pipeline, 1,000 per execute",
        ),
        row(
            "common",
            "producer publish",
            pub_rate,
            rate,
            30_000,
            f"encode + buffer + pipelined XADD; best of {PASSES} ({_rates(pub_rates)}); "
            f"{pub_rate / raw_rate:.0%} of the bare redis-py loop, "
            f"{pub_rate / server_rate:.0%} of redis-benchmark"
            if server_rate
            else "",
        ),
        row(
            "publish",
            "ratio_to_raw_limit",
            ratio,
            "x raw",
            0.5,
            f"producer publish / raw client loop XADD: median of {PASSES} paired passes "
            f"({', '.join(f'{x:.2f}' for x in ratios)})",
        ),
        row("common", "consumer read+decode+ack", cons_rate, rate, 50_000, "COUNT 1000, hiredis, one process"),
    ]


def _rates(rates: list[float]) -> str:
    return ", ".join(f"{r:,.0f}" for r in rates)


def run() -> list[dict[str, Any]]:
    return asyncio.run(bench())


if __name__ == "__main__":
    for row in run():
        print(row)
