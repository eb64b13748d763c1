"""Batches are written at N rows or T ms, whichever comes first."""

from __future__ import annotations

import asyncio
import time

from liq_common.codec import LIQUIDATIONS
from liq_common.events import Liquidation
from liq_persister.service import PacedRunner
from tests.persister.factories import liquidations, publish
from tests.waiting import eventually, scaled


def _runner(redis, streams, handler, batch_size: int, flush_s: float, stop: asyncio.Event) -> PacedRunner[Liquidation]:
    return PacedRunner(
        redis,
        stream=streams.events,
        group="persister",
        consumer="pace",
        codec=LIQUIDATIONS,
        handler=handler,
        dead_stream=streams.dead,
        batch_size=batch_size,
        block_ms=100,
        flush_s=flush_s,
        stop=stop,
    )


async def test_a_backlog_is_written_in_batches_of_n(redis, streams):
    """2,500 waiting entries with N = 1,000 are written as 1,000 + 1,000 + 500, without waiting for T."""
    await publish(redis, streams.events, liquidations(2500))
    sizes: list[int] = []

    async def handler(batch: list[tuple[bytes, Liquidation]]) -> None:
        sizes.append(len(batch))

    stop = asyncio.Event()
    runner = _runner(redis, streams, handler, batch_size=1000, flush_s=scaled(30.0), stop=stop)
    task = asyncio.create_task(runner.run(stop))
    started = time.monotonic()
    await eventually(lambda: sum(sizes) == 2500, timeout=10, what="the backlog handled")
    # Two full batches never wait for T; only the short third one would (T is 30 s here).
    assert time.monotonic() - started < scaled(30.0)
    assert sizes == [1000, 1000, 500]
    stop.set()
    await asyncio.wait_for(task, timeout=scaled(35.0))


async def test_a_trickle_is_written_every_t_ms(redis, streams):
    """After a short batch the next write waits for T, so entries arriving meanwhile form one batch."""
    flush_s = scaled(1.0)
    events = liquidations(6)
    calls: list[tuple[float, int]] = []
    first = asyncio.Event()

    async def handler(batch: list[tuple[bytes, Liquidation]]) -> None:
        calls.append((time.monotonic(), len(batch)))
        first.set()

    stop = asyncio.Event()
    runner = _runner(redis, streams, handler, batch_size=1000, flush_s=flush_s, stop=stop)
    task = asyncio.create_task(runner.run(stop))
    await publish(redis, streams.events, events[:1])
    await asyncio.wait_for(first.wait(), timeout=scaled(10))
    for event in events[1:]:
        await publish(redis, streams.events, [event])
    await eventually(lambda: sum(n for _, n in calls) == 6, timeout=10, what="all six handled")
    stop.set()
    await asyncio.wait_for(task, timeout=scaled(10))
    assert [n for _, n in calls] == [1, 5]
    assert calls[1][0] - calls[0][0] >= flush_s * 0.9
