"""The whole pipeline at a sustained 2,000 liquidations/s for 60 s: latency from frame sent to row committed
and to cascade published, and the share of a core each service needs for it.

Shape: the exchange simulator in this process; ingest-binance, ingest-bybit, detector, persister and alerter
(console sink) as child processes on the local Redis (keys under a unique ``bench:`` prefix, deleted after)
and a scratch PostgreSQL database (dropped after).

Load: every 10 ms the due share of 2,000 records/s is emitted with event time ``ts`` = the wall clock,
round-robin over 50 Binance USD-M and 50 Bybit linear symbols (45 % each) and the COIN-M / Bybit inverse
majors (5 % each). Background sizes are tiny (about $10), so no asset opens a cascade by itself; every
0.5 s a burst of 30 liquidations of $20k on a fresh asset (both exchanges, 40 ms apart, an asset no
background record touches) opens one: about 115 cascade openings per minute to take percentiles over.
Simulator rules: ``binance_throttle_ms=20`` instead of Binance's 1,000 ms (at the real throttle 2,000/s
could not be delivered: one liquidation per symbol per second), Bybit's real 500 ms push batching.
Detector: ``TICK_MS=10``, ``LATENESS_MS=0`` (defaults 1,000 and 3,000; ``BENCH_E2E_TICK_MS``,
``BENCH_E2E_LATENESS_MS`` override), the low-latency profile of services/detector/README.md: a cascade can
only be published once the watermark (newest event time minus the lateness) passes the end of the tick
holding the event, so tick + lateness bound the latency from below and the defaults alone add seconds.

Latency methods (all clocks are this host's wall clock):

* frame sent: the simulator's ledger hook runs right after each frame's socket write; its time is kept per
  (exchange, symbol, ts), unique by construction.
* row committed: a poller asks PostgreSQL every ~20 ms which still-outstanding keys are now visible (one
  join against ``unnest`` arrays, bounded by ``ts``). A row is credited to the poll whose statement
  snapshot first shows it, i.e. the poll's start time: an upper bound, late by at most one poll period plus
  the query (the resolution is reported).
* cascade published: the millisecond part of the XADD entry id of each cascade's ``open`` state, minus the
  send time of the frame that made the cascade openable. The open state counts the first ``n`` burst
  liquidations of each exchange (``by_exchange``; each exchange delivers a base's liquidations in order on
  one connection); the tick before the opening tick did not open, so that frame is one of the counted
  liquidations in the opening tick, and the earliest-sent of those is taken: an upper bound, exact when
  the tick holds one burst liquidation (10 ms ticks, bursts 40 ms apart).

CPU: each service's CPU seconds during the sustained minute (the persister with its PostgreSQL backends)
over the wall time, i.e. the share of one core it needs at 2,000 events/s. At this rate a service is idle
between small batches and its cost per event is mostly per wake-up, so it says nothing about the stage's
limit: each stage's saturated rate and its ratio to its raw limit (same machine, same ``make bench``) are
the ``ratio_to_raw_limit`` rows of the stage modules.

Layout: the load is ``bench/e2e_load.py``, the latency measurement and matching ``bench/e2e_latency.py``,
the process orchestration and CPU accounting ``bench/e2e_pipeline.py``; this module owns the scratch
database and Redis prefix and builds the result rows.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.e2e.processes (the child-process launcher) and bench modules

from bench import rows  # noqa: E402
from bench.e2e_latency import percentile  # noqa: E402
from bench.e2e_pipeline import LATENESS_MS, REDIS, TICK_MS, measure  # noqa: E402

from liq_common.logs import configure_logging  # noqa: E402
from liq_common.streams import connect_redis  # noqa: E402

ADMIN = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def row(metric: str, value: float, unit: str, target: float | None, note: str, higher: bool) -> dict[str, Any]:
    """A row of this stage (``end-to-end``)."""
    return rows.row("end-to-end", metric, value, unit, target, note, higher=higher)


async def main() -> list[dict[str, Any]]:
    name = f"liq_bench_e2e_{uuid.uuid4().hex[:10]}"
    prefix = f"bench:{uuid.uuid4().hex[:10]}:"
    async with await psycopg.AsyncConnection.connect(ADMIN, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"'.encode())
    url = urlunsplit(urlsplit(ADMIN)._replace(path=f"/{name}"))
    try:
        with tempfile.TemporaryDirectory(prefix="bench-e2e-") as logdir:
            m = await measure(url, prefix, Path(logdir))
    finally:
        async with await psycopg.AsyncConnection.connect(ADMIN, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        client = connect_redis(REDIS)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    if any(m["statuses"].values()):
        raise RuntimeError(f"a service did not exit cleanly: {m['statuses']}")
    commit, cascade = m["commit_ms"], m["cascade_ms"]
    (l0, _, _), (l1, _, _) = m["load"]
    setup = (
        f"{m['emitted']:,} records in {m['wall']:.0f} s ({m['emitted'] / m['wall']:,.0f}/s emitted, "
        f"{m['delivered']:,} delivered, {m['dropped']:,} replaced by the 20 ms Binance throttle); "
        f"load avg {l0:.1f} -> {l1:.1f} on {os.cpu_count()} cores"
    )
    return [
        row("delivered_events_per_s", m["delivered"] / m["wall"], "events/s", None, setup, True),
        row(
            "frame_to_commit_p50",
            percentile(commit, 0.5),
            "ms",
            None,
            f"{len(commit):,} of {m['delivered']:,} delivered rows seen committed; poll period median "
            f"{m['poll_ms']:.0f} ms (upper bound, late by at most one period)",
            False,
        ),
        row("frame_to_commit_p99", percentile(commit, 0.99), "ms", 500, f"max {max(commit, default=0):.0f} ms", False),
        row(
            "frame_to_cascade_p50",
            percentile(cascade, 0.5),
            "ms",
            None,
            f"{len(cascade)} cascade opens from {m['bursts']} bursts ({m['cascades_unmatched']} unmatched); "
            "XADD id time of the open state - send time of the frame that made it openable (upper bound); "
            f"TICK_MS={TICK_MS}, LATENESS_MS={LATENESS_MS}",
            False,
        ),
        row(
            "frame_to_cascade_p99", percentile(cascade, 0.99), "ms", 100, f"max {max(cascade, default=0):.0f} ms", False
        ),
        *(
            row(
                f"{name}_core_share",
                cpu / m["wall"],
                "cores",
                None,
                f"{what}: {cpu:.1f} CPU-s in the sustained run = {m['delivered'] / cpu:,.0f} events per CPU-second at "
                "2,000/s (mostly per-wake-up cost at this rate; saturated rates and ratios to raw limits are the "
                "stage rows)",
                False,
            )
            for name, cpu, what in (
                ("ingestors", m["cpu"]["ingest-binance"] + m["cpu"]["ingest-bybit"], "both ingestors"),
                ("detector", m["cpu"]["detector"], "detector"),
                ("persister", m["cpu"]["persister"] + m["db_cpu"], "persister + its PostgreSQL backends"),
                ("alerter", m["cpu"]["alerter"], "alerter (console sink)"),
            )
        ),
    ]


def run() -> list[dict[str, Any]]:
    """Run the end-to-end benchmark (about 90 s) and return its rows."""
    configure_logging("bench", "warning", "console")
    return asyncio.run(main())


if __name__ == "__main__":
    for result in run():
        print(result)
