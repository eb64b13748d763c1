"""Play records through the engine on their own event time, at a speed factor.

While a runner plays, it (not the wall-clock ticker) closes throttle and batch windows, at their
event times, so every speed (1x, 100x, as fast as possible) produces the same frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable

from liq_exchange_sim.hub import Hub
from liq_exchange_sim.truth import TruthRecord

YIELD_EVERY = 256
"""Records ingested between yields to the event loop when running as fast as possible."""


async def _backpressure(hub: Hub) -> None:
    for conn in list(hub.connections.values()):
        if conn.queued() >= hub.queue_high_water:
            await conn.wait_drained()
    await asyncio.sleep(0)


async def run_records(
    hub: Hub,
    records: Iterable[TruthRecord],
    speed: float,
    drain_timeout: float = 30.0,
    anchor_ms: int | None = None,
) -> int:
    """Ingest ``records`` (in time order) paced at ``speed`` times real time; ``speed <= 0`` = no pauses.

    Pacing is relative to the first record, unless ``anchor_ms`` is given: then event time ``anchor_ms``
    is pinned to that wall-clock time (ms since epoch), so at speed 1 a record whose ``ts`` is in the
    past is played at once and later ones at their own ``ts`` (live timestamps, no start-up lag).

    Returns once every record was ingested, every window closed and the queues drained (or
    ``drain_timeout`` seconds passed, e.g. for a client that stopped reading). Returns the record count.
    """
    engine = hub.engine
    loop = asyncio.get_running_loop()
    start_wall = loop.time()
    start_ts: int | None = None
    if anchor_ms is not None and speed > 0:
        start_ts = anchor_ms
        start_wall -= max(0.0, time.time() * 1000 - anchor_ms) / 1000.0 / speed
    count = 0

    async def until(ts: int) -> None:
        assert start_ts is not None
        delay = start_wall + (ts - start_ts) / 1000.0 / speed - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    hub.driven += 1
    try:
        for record in records:
            if start_ts is None:
                start_ts, start_wall = record.ts, loop.time()
            if speed > 0:
                deadline = engine.next_deadline()
                while deadline is not None and deadline <= record.ts:
                    await until(deadline)
                    engine.advance_to(deadline)
                    deadline = engine.next_deadline()
                await until(record.ts)
            engine.ingest((record,))
            count += 1
            if speed <= 0 and count % YIELD_EVERY == 0:
                await _backpressure(hub)
        deadline = engine.next_deadline()
        while deadline is not None:
            if speed > 0 and start_ts is not None:
                await until(deadline)
            engine.advance_to(deadline)
            if speed <= 0:
                await _backpressure(hub)
            deadline = engine.next_deadline()
        with contextlib.suppress(TimeoutError):  # a client that stopped reading must not hang the run
            await hub.wait_for(
                lambda: all(c.queued() == 0 for c in hub.connections.values()), drain_timeout, hub.stats.snapshot
            )
    finally:
        hub.driven -= 1
    return count
