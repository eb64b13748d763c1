"""Driving an ingestor through the exchange simulator's faults, and what it must count for them."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio as aioredis

from liq_exchange_sim import Feed, Simulator, TruthRecord
from tests.ingest_common.harness import deliver
from tests.waiting import eventually

REJECT_REASON = {
    "json": "bad_json",
    "wrong_type": "wrong_type",
    "missing_field": "missing_field",
    "nan": "bad_number",
    "negative": "non_positive",
    "huge": "oversized",
}
"""The reject reason each of the simulator's malformed-frame kinds must be counted under."""


async def deliver_with_one_malformed(
    sim: Simulator,
    redis: aioredis.Redis,
    stream: str,
    exchange: str,
    feed: Feed,
    kind: str,
    intact: list[TruthRecord],
    rest: list[TruthRecord],
) -> None:
    """Have ``intact`` written unharmed, then ``rest`` with its first frame corrupted as ``kind`` (one of
    the simulator's malformed kinds) on ``feed``; wait until ``stream`` holds all the simulator delivered."""
    sim.emit(intact)
    await sim.flush()
    sim.set_faults(feed, malformed=kind, malformed_count=1)
    await deliver(sim, redis, stream, exchange, rest)


async def deliver_chunks(
    sim: Simulator,
    redis: aioredis.Redis,
    stream: str,
    exchange: str,
    chunks: Sequence[tuple[str, list[TruthRecord]]],
    ready: Callable[[str], bool],
    midway: Callable[[], Awaitable[None]],
) -> None:
    """Deliver ``chunks`` (feed, records) one at a time, each once ``ready(feed)`` holds; before the middle
    chunk, ``midway()`` runs (the fault of the run) and ``ready`` is waited for again."""
    for n, (feed, chunk) in enumerate(chunks):
        await eventually(functools.partial(ready, feed), what=f"{feed} ready for chunk {n}")
        if n == len(chunks) // 2:
            await midway()
            await eventually(functools.partial(ready, feed), what=f"{feed} ready again after the midway fault")
        await deliver(sim, redis, stream, exchange, chunk)
