"""Process orchestration of the end-to-end benchmark: the simulator in this process, the five services as
child processes, the load and the commit poller, and the CPU each service spent during the sustained run.

``measure`` returns the raw figures; ``bench/bench_e2e.py`` owns the scratch database and Redis prefix
and turns the figures into rows. Detector settings: ``TICK_MS=10``, ``LATENESS_MS=0`` (the low-latency
profile; ``BENCH_E2E_TICK_MS``, ``BENCH_E2E_LATENESS_MS`` override), see the docstring of ``bench_e2e``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from pathlib import Path
from typing import Any, cast

import psutil
import psycopg
from bench.e2e_latency import BurstSends, Key, cascade_latencies, commit_latencies, poll_commits, record_sends
from bench.e2e_load import BACKGROUND_EXTRA, BURSTS, SECONDS, SHARES, Load, emit_load
from tests.e2e.pipeline import sim_env
from tests.e2e.processes import ServiceProcess

from liq_common.streams import connect_redis
from liq_exchange_sim import SimConfig, Simulator
from liq_exchange_sim.instruments import Universe

TICK_MS = os.environ.get("BENCH_E2E_TICK_MS", "10")
LATENESS_MS = os.environ.get("BENCH_E2E_LATENESS_MS", "0")
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def cpu_seconds(pid: int) -> float:
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system)


async def backends_cpu(url: str, exclude: set[int]) -> float:
    """CPU seconds so far of the PostgreSQL sessions on this database, except ``exclude`` (local server)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            b"SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = [int(r[0]) for r in await cur.fetchall() if int(r[0]) not in exclude]
    return sum(cpu_seconds(pid) for pid in pids)


async def measure(url: str, prefix: str, logdir: Path) -> dict[str, Any]:
    extra = BACKGROUND_EXTRA + BURSTS
    universe = Universe.default(bybit_linear_extra=extra, binance_usdm_extra=extra)
    config = SimConfig(instruments=universe, binance_throttle_ms=20, keep_ledger_entries=False)
    sent: dict[Key, float] = {}
    burst_sends: BurstSends = {}
    """(base, exchange) -> (event time, send time) of each burst liquidation, in delivery order."""
    committed: dict[Key, float] = {}
    load = Load(universe)
    burst_base = {f"{b}USDT": b for b in load.burst_bases}
    seeds_before = int(time.time() * 1000) - 60_000  # the cold-start seeds are 120 s old, not burst events
    async with Simulator(config) as sim:
        record_sends(sim, sent, burst_sends, burst_base, seeds_before)
        env = {
            "REDIS_URL": REDIS,
            "DATABASE_URL": url,
            "EVENTS_STREAM": f"{prefix}liq:events",
            "CASCADES_STREAM": f"{prefix}liq:cascades",
            "DEAD_STREAM": f"{prefix}liq:dead",
            "FEED_STATUS_STREAM": f"{prefix}liq:feed",
            "DASH_PREFIX": f"{prefix}dash:",
            **sim_env(sim),
            "TICK_MS": TICK_MS,
            "LATENESS_MS": LATENESS_MS,
            "LOG_LEVEL": "warning",
        }
        services = {
            name: ServiceProcess(name, env, logdir)
            for name in ("persister", "detector", "alerter", "ingest-binance", "ingest-bybit")
        }
        stop, flushed, all_seen = asyncio.Event(), asyncio.Event(), asyncio.Event()
        periods: list[float] = []
        own_pids: set[int] = set()
        ready = asyncio.Event()
        poller: asyncio.Task[None] | None = None
        try:
            for proc in services.values():
                await asyncio.to_thread(proc.start)
            await sim.wait_for(
                lambda s: all(any(c.stats.subscriptions > 0 for c in s.connections(f)) for f, _ in SHARES), timeout=60
            )
            poller = asyncio.create_task(
                poll_commits(url, sent, committed, stop, flushed, all_seen, periods, own_pids, ready)
            )
            pids = {n: p.proc.pid for n, p in services.items() if p.proc is not None}
            cpu0 = {n: cpu_seconds(pid) for n, pid in pids.items()}
            await ready.wait()  # the poller's session exists: its CPU is not the persister's
            db0 = await backends_cpu(url, own_pids)
            load0 = os.getloadavg()
            wall0 = time.perf_counter()
            emitted, bursts = await emit_load(sim, load, SECONDS)
            await sim.flush()
            wall = time.perf_counter() - wall0
            delivered = len(sent)
            flushed.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    await all_seen.wait()
            cpu = {n: cpu_seconds(pid) - cpu0[n] for n, pid in pids.items()}
            db_cpu = await backends_cpu(url, own_pids) - db0
            load1 = os.getloadavg()
            stop.set()
            await poller
            published = {
                n: services[n].metric("liq_stream_published_total") for n in ("ingest-binance", "ingest-bybit")
            }
        finally:
            stop.set()
            if poller is not None:
                with contextlib.suppress(Exception):
                    await poller
            statuses = {n: p.stop() for n, p in services.items()}
        dropped = sum(t.count for t in sim.ledger.dropped_totals().values())
    client = connect_redis(REDIS)
    try:
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(f"{prefix}liq:cascades"))
    finally:
        await client.aclose()
    cascade_ms, unmatched = cascade_latencies(entries, burst_sends, int(TICK_MS))
    commit_ms = commit_latencies(sent, committed)
    return {
        "emitted": emitted,
        "bursts": bursts,
        "delivered": delivered,
        "dropped": dropped,
        "committed": len(committed),
        "wall": wall,
        "commit_ms": commit_ms,
        "cascade_ms": cascade_ms,
        "cascades_unmatched": unmatched,
        "poll_ms": statistics.median(periods) * 1000 if periods else float("nan"),
        "cpu": cpu,
        "db_cpu": db_cpu,
        "published": published,
        "load": (load0, load1),
        "statuses": statuses,
    }
