"""The persister's own write paths, as measured by ``bench/bench_persister.py``.

* ``idempotent``: the persister's writer (binary COPY into the TEMP stage, then
  ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``), one writer per lane; run twice on the same rows it
  also measures the replay, where every row is a skipped duplicate.
* ``end_to_end``: entries already on a Redis stream, through the running service (XREADGROUP, decode,
  write, XACK) until all are acknowledged.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from bench.persister_timing import Measure, backend_pid, timed
from bench.persister_workload import BATCH, LANES, batches
from prometheus_client import REGISTRY

from liq_common.codec import encode
from liq_common.events import Liquidation
from liq_common.observability import Health
from liq_common.runtime import ServiceContext
from liq_common.settings import Secret
from liq_common.streams import connect_redis, xadd_many
from liq_persister import service
from liq_persister.database import Database, DatabaseStatus
from liq_persister.settings import Settings
from liq_persister.writer import LiquidationWriter, prepare_stage


async def idempotent(url: str, events: list[Liquidation]) -> Measure:
    """``events`` through the persister's writer (one transaction per batch); ``rows`` = rows inserted."""
    writers = [
        LiquidationWriter(Database(url, f"bench-{lane}", DatabaseStatus(Health()), 60.0, on_connect=prepare_stage))
        for lane in range(LANES)
    ]
    try:
        pids = []
        for writer in writers:
            async with writer.db.transaction() as conn:  # connect and create the stage outside the timing
                pids.append(await backend_pid(conn))
        lanes = (_write_lane(w, batches(events, lane)) for lane, w in enumerate(writers))
        seconds, cpu, counts = await timed(pids, asyncio.gather(*lanes))
        return Measure(seconds, cpu, sum(counts))
    finally:
        for writer in writers:
            await writer.db.close()


async def _write_lane(writer: LiquidationWriter, lane: list[list[Liquidation]]) -> int:
    return sum([await writer.write(batch) for batch in lane])


async def end_to_end(url: str, redis_url: str, events: list[Liquidation]) -> float:
    """Seconds from starting the service (entries already on the stream) to every entry acknowledged."""
    prefix = f"bench:{uuid.uuid4().hex[:10]}:"
    settings = Settings(
        redis_url=redis_url,
        events_stream=f"{prefix}events",
        cascades_stream=f"{prefix}cascades",
        dead_stream=f"{prefix}dead",
        feed_status_stream=f"{prefix}feed",
        database_url=Secret(url),
        consumer="bench",
        metrics_port=0,
        log_level="warning",
    )
    client = connect_redis(redis_url)
    try:
        payloads = [encode(e) for e in events]
        for i in range(0, len(payloads), BATCH):
            await xadd_many(client, settings.events_stream, payloads[i : i + BATCH], maxlen=10_000_000)
        labels = {"stream": settings.events_stream, "group": "persister", "outcome": "acked"}
        ctx = ServiceContext(service="persister", stop=asyncio.Event(), health=Health(), metrics_port=0)
        started = time.perf_counter()
        task = asyncio.create_task(service.run(settings, ctx, client))
        while (REGISTRY.get_sample_value("liq_consumer_entries_total", labels) or 0) < len(events):
            if task.done():
                task.result()
                raise RuntimeError("the service stopped early")
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        ctx.stop.set()
        await task
        return elapsed
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
