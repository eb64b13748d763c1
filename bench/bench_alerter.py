"""Alerter benchmarks: rendering, the stream handler's Redis round trip, and stream-to-post latency.

Needs Redis at ``REDIS_URL`` (default 127.0.0.1:6379); uses keys under a unique prefix and deletes
them. The latency stage runs the alerter against the test suite's fake Discord and Telegram servers.
Run: ``uv run python bench/bench_alerter.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.alerter fakes

from bench.rows import row
from tests.alerter.fake_discord import FakeDiscord
from tests.alerter.fake_telegram import FakeTelegram
from tests.alerter.harness import BOT_TOKEN, CHAT_ID, WEBHOOK_ID, WEBHOOK_TOKEN, cascade

from liq_alerter import discord, telegram
from liq_alerter.destinations import parse_destinations
from liq_alerter.service import Alerter
from liq_alerter.settings import Settings
from liq_common.codec import to_fields
from liq_common.settings import load_settings
from liq_common.streams import connect_redis

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def bench_render() -> list[dict]:
    state = cascade(5, "critical", symbols=[f"SYM{i}USDT" for i in range(60)], lower_bound=True)
    n = 2000
    started = time.perf_counter()
    for _ in range(n):
        discord.payload(state)
    d = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    for _ in range(n):
        telegram.text(state)
    t = (time.perf_counter() - started) / n * 1e6
    return [
        row(
            "alerter", "render_discord_embed", d, "us/state", 1000, "60 symbols, escaped, limits checked", higher=False
        ),
        row("alerter", "render_telegram_html", t, "us/state", 1000, "60 symbols, HTML-escaped", higher=False),
    ]


def _settings(prefix: str, dests: str, **extra: str) -> Settings:
    return load_settings(
        Settings,
        {
            "REDIS_URL": REDIS_URL,
            "CASCADES_STREAM": f"{prefix}liq:cascades",
            "DEAD_STREAM": f"{prefix}liq:dead",
            "DESTINATIONS": dests,
            "CONSUMER_NAME": "bench",
            "BLOCK_MS": "50",
            **extra,
        },
    )


async def bench_handler(prefix: str) -> list[dict]:
    """States per second through the stream handler (3 destinations, batches of 100)."""
    dests = json.dumps([{"kind": "console", "name": f"c{i}", "min_tier": "low"} for i in range(3)])
    client = connect_redis(REDIS_URL)
    alerter = Alerter(_settings(prefix, dests), parse_destinations(_settings(prefix, dests).destinations), client)
    batches = [
        [(b"0-0", cascade(s, "high", cascade_id=f"C{b}-{i}")) for i in range(50) for s in range(2)] for b in range(40)
    ]
    started = time.perf_counter()
    for batch in batches:
        await alerter.handle(batch)
    elapsed = time.perf_counter() - started
    for worker in alerter.workers:
        await worker.sink.aclose()
    await client.aclose()
    states = sum(len(b) for b in batches)
    return [
        row(
            "alerter",
            "handler_throughput",
            states / elapsed,
            "states/s",
            5000,
            "3 destinations; one Lua call per batch of 100; cascades are rare, so this is headroom",
        )
    ]


async def bench_latency(prefix: str) -> list[dict]:
    """Stream entry to message arrival at the fake platforms, per new cascade."""
    fake_d = await FakeDiscord(capacity=10_000, window=1.0).start()
    fake_d.add_webhook(WEBHOOK_ID, WEBHOOK_TOKEN)
    fake_t = await FakeTelegram(BOT_TOKEN, {CHAT_ID}).start()
    dests = json.dumps(
        [
            {
                "kind": "discord",
                "name": "dc",
                "min_interval": 0,
                "webhook_url": f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}",
            },
            {"kind": "telegram", "name": "tg", "bot_token": BOT_TOKEN, "chat_id": CHAT_ID, "min_interval": 0},
        ]
    )
    settings = _settings(prefix, dests, DISCORD_API_BASE=fake_d.api_base, TELEGRAM_API_BASE=fake_t.api_base)
    client = connect_redis(REDIS_URL)
    alerter = Alerter(settings, parse_destinations(settings.destinations), client)
    stop = asyncio.Event()
    task = asyncio.create_task(alerter.run(stop))
    delays: list[float] = []
    for i in range(30):
        sent = time.monotonic()
        await client.xadd(settings.cascades_stream, to_fields(cascade(0, "high", cascade_id=f"L{i}")))
        while len(fake_d.messages) <= i or len(fake_t.messages) <= i:  # noqa: ASYNC110 - 1 ms polling is the probe
            await asyncio.sleep(0.001)
        delays.append(max(fake_d.requests[-1].at, fake_t.requests[-1].at) - sent)
    stop.set()
    await task
    await client.aclose()
    await fake_d.close()
    await fake_t.close()
    ms = sorted(d * 1000 for d in delays)
    return [
        row(
            "alerter",
            "stream_to_post_p50",
            statistics.median(ms),
            "ms",
            250,
            "both platforms, loopback fakes",
            higher=False,
        ),
        row("alerter", "stream_to_post_max", ms[-1], "ms", None, "30 cascades; BLOCK_MS=50", higher=False),
    ]


async def _async_rows() -> list[dict]:
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    client = connect_redis(REDIS_URL)
    try:
        return [*await bench_handler(prefix), *await bench_latency(prefix)]
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def run() -> list[dict]:
    """All alerter benchmark rows."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    return [*bench_render(), *asyncio.run(_async_rows())]


if __name__ == "__main__":
    for item in run():
        print(item)
