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
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.e2e.processes (the child-process launcher) and bench modules

from bench import rows  # noqa: E402
from tests.e2e.pipeline import sim_env  # noqa: E402
from tests.e2e.processes import ServiceProcess  # noqa: E402

from liq_common.codec import CASCADES  # noqa: E402
from liq_common.logs import configure_logging  # noqa: E402
from liq_common.streams import connect_redis  # noqa: E402
from liq_exchange_sim import SimConfig, Simulator, TruthRecord  # noqa: E402
from liq_exchange_sim.instruments import Instrument, Universe  # noqa: E402
from liq_exchange_sim.truth import Feed  # noqa: E402

RATE = int(os.environ.get("BENCH_E2E_RATE", "2000"))
SECONDS = int(os.environ.get("BENCH_E2E_SECONDS", "60"))
BACKGROUND_EXTRA = 40
"""Generated symbols carrying background load on Binance USD-M and Bybit linear (50 each with the majors)."""
BURST_EVERY_S = 0.5
BURST_EVENTS = 30
BURST_USD = Decimal(20_000)
BURSTS = int((SECONDS - 3) / BURST_EVERY_S) + 1
"""One fresh base per burst, never touched by background load, so each opening is attributable."""
POLL_S = 0.02
TICK_MS = os.environ.get("BENCH_E2E_TICK_MS", "10")
LATENESS_MS = os.environ.get("BENCH_E2E_LATENESS_MS", "0")
SHARES: tuple[tuple[Feed, float], ...] = (
    ("binance_usdm", 0.45),
    ("bybit_linear", 0.45),
    ("binance_coinm", 0.05),
    ("bybit_inverse", 0.05),
)
ADMIN = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
VENUE: dict[Feed, tuple[str, str]] = {
    "binance_usdm": ("binance", "linear"),
    "binance_coinm": ("binance", "inverse"),
    "bybit_linear": ("bybit", "linear"),
    "bybit_inverse": ("bybit", "inverse"),
}
Key = tuple[str, str, int]
"""(exchange, symbol, event ms): unique per emitted record by construction."""


class Load:
    """Builds the paced records: event time = now, unique (exchange, symbol, ts), tiny background sizes."""

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        generated = [i.base for i in universe.instruments("binance_usdm") if i.base.startswith("SIM")]
        self.burst_bases = [b for b in generated[BACKGROUND_EXTRA:] if universe.get("bybit_linear", f"{b}USDT")]
        reserved = set(self.burst_bases)
        self.symbols = {
            feed: [i for i in universe.instruments(feed) if i.base not in reserved] for feed, _ in SHARES
        }  # fmt: skip
        self.next = dict.fromkeys(self.symbols, 0)
        self.last_ts: dict[tuple[str, str], int] = {}
        self.quota = dict.fromkeys(self.symbols, 0.0)

    def ts_for(self, exchange: str, symbol: str, now_ms: int) -> int:
        ts = max(now_ms, self.last_ts.get((exchange, symbol), 0) + 1)
        self.last_ts[(exchange, symbol)] = ts
        return ts

    def record(self, feed: Feed, inst: Instrument, usd: Decimal, side: str, now_ms: int) -> TruthRecord:
        exchange, market = VENUE[feed]
        if feed == "binance_coinm":
            size = max(Decimal(1), (usd / inst.contract_size).quantize(Decimal(1)))
        elif feed == "bybit_inverse":
            size = max(Decimal(1), usd.quantize(Decimal(1)))
        else:
            size = max(inst.step_size, (usd / inst.ref_price).quantize(inst.step_size))
        return TruthRecord(
            exchange=exchange,  # type: ignore[arg-type]
            market=market,  # type: ignore[arg-type]
            symbol=inst.symbol,
            side=side,  # type: ignore[arg-type]
            price=inst.ref_price,
            size=size,
            ts=self.ts_for(exchange, inst.symbol, now_ms),
        )

    def background(self, count: int, now_ms: int) -> list[TruthRecord]:
        out = []
        for feed, share in SHARES:
            self.quota[feed] += count * share
            items = self.symbols[feed]
            while self.quota[feed] >= 1:
                self.quota[feed] -= 1
                inst = items[self.next[feed] % len(items)]
                self.next[feed] += 1
                side = "long" if self.next[feed] % 2 else "short"
                out.append(self.record(feed, inst, Decimal(10), side, now_ms))
        return out

    def burst_event(self, base: str, i: int, now_ms: int, usd: Decimal = BURST_USD) -> TruthRecord:
        feed: Feed = "binance_usdm" if i % 2 == 0 else "bybit_linear"
        inst = self.universe.get(feed, f"{base}USDT")
        assert inst is not None
        return self.record(feed, inst, usd, "long", now_ms)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system)


async def emit_load(sim: Simulator, load: Load, seconds: float) -> tuple[int, int]:
    """Emit RATE records/s for ``seconds`` plus a burst every BURST_EVERY_S; returns (records, bursts)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    emitted = bursts = 0
    burst_tasks: list[asyncio.Task[None]] = []

    async def burst(base: str) -> None:
        for i in range(BURST_EVENTS):
            sim.emit([load.burst_event(base, i, int(time.time() * 1000))])
            await asyncio.sleep(0.04)

    # One small liquidation per burst asset two minutes in the past: the detector opens nothing on an asset
    # without a complete minute of history before its window (RISK.md cold start), and a 60 s run has none.
    seed_ms = int(time.time() * 1000) - 120_000
    for base in load.burst_bases:
        sim.emit([load.burst_event(base, i, seed_ms, Decimal(10)) for i in range(2)])
    next_burst = 3.0
    while (elapsed := loop.time() - started) < seconds:
        due = int(elapsed * RATE) - emitted
        if due > 0:
            emitted += sim.emit(load.background(due, int(time.time() * 1000)))
        if elapsed >= next_burst and bursts < len(load.burst_bases):
            burst_tasks.append(asyncio.create_task(burst(load.burst_bases[bursts])))
            bursts += 1
            next_burst += BURST_EVERY_S
        await asyncio.sleep(0.01)
    await asyncio.gather(*burst_tasks)
    return emitted + bursts * BURST_EVENTS, bursts


async def poll_commits(
    url: str,
    sent: dict[Key, float],
    committed: dict[Key, float],
    stop: asyncio.Event,
    flushed: asyncio.Event,
    all_seen: asyncio.Event,
    periods: list[float],
    own_pids: set[int],
    ready: asyncio.Event,
) -> None:
    """Credit each sent key to the first poll whose snapshot shows its row (see the module docstring).

    Its session's pid goes into ``own_pids`` (then ``ready`` is set). Sets ``all_seen`` once ``flushed``
    is set (nothing more will be sent) and every sent key was seen."""
    query = (
        b"SELECT l.exchange, l.symbol, (extract(epoch FROM l.ts) * 1000)::bigint FROM liquidations l "
        b"JOIN unnest(%s::text[], %s::text[], %s::bigint[]) AS k(e, s, t) "
        b"ON l.exchange = k.e AND l.symbol = k.s AND l.ts = to_timestamp(k.t / 1000.0) "
        b"WHERE l.ts >= to_timestamp(%s / 1000.0)"
    )
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        row = await (await conn.execute(b"SELECT pg_backend_pid()")).fetchone()
        assert row is not None
        own_pids.add(int(row[0]))
        ready.set()
        last = time.time()
        while True:
            final = stop.is_set()
            outstanding = [k for k in sent if k not in committed]
            if flushed.is_set() and not outstanding:
                all_seen.set()
            if outstanding:
                started = time.time()
                cur = await conn.execute(
                    query,
                    (
                        [k[0] for k in outstanding],
                        [k[1] for k in outstanding],
                        [k[2] for k in outstanding],
                        min(k[2] for k in outstanding),
                    ),
                )
                for exchange, symbol, ts in await cur.fetchall():
                    committed.setdefault((exchange, symbol, int(ts)), started)
                periods.append(started - last)
                last = started
            if final:
                return
            await asyncio.sleep(POLL_S)


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
    burst_sends: dict[tuple[str, str], list[tuple[int, float]]] = {}
    """(base, exchange) -> (event time, send time) of each burst liquidation, in delivery order."""
    committed: dict[Key, float] = {}
    load = Load(universe)
    burst_base = {f"{b}USDT": b for b in load.burst_bases}
    seeds_before = int(time.time() * 1000) - 60_000  # the cold-start seeds are 120 s old, not burst events
    async with Simulator(config) as sim:
        ledger_record = sim.ledger.record_delivery

        def record(conn_id: str, feed: Feed, seq: int, rec: TruthRecord, usd: Decimal, kind: Any) -> None:
            ledger_record(conn_id, feed, seq, rec, usd, kind)
            if kind == "delivered":
                now = time.time()
                sent.setdefault((rec.exchange, rec.symbol, rec.ts), now)
                base = burst_base.get(rec.symbol)
                if base is not None and rec.ts > seeds_before:
                    burst_sends.setdefault((base, rec.exchange), []).append((rec.ts, now))

        sim.ledger.record_delivery = record  # type: ignore[method-assign,assignment]
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
    cascade_ms: list[float] = []
    unmatched = 0
    for entry_id, fields in entries:
        state = CASCADES.decode(fields)
        if state.status != "open":
            continue
        # The open state counts the first n burst liquidations of each exchange (each exchange delivers a
        # base's liquidations in order on one connection). The frame that made it openable is one of those
        # in the tick it opened at (the tick before did not open it): the earliest-sent of them is taken,
        # an upper bound on the latency, exact when the tick holds one burst liquidation.
        try:
            counted = [e for ex, t in state.by_exchange.items() for e in burst_sends[(state.base, ex)][: t.count]]
        except KeyError:
            unmatched += 1
            continue
        tick = int(TICK_MS)
        last_tick = [send for ts, send in counted if ts >= state.window_end - state.window_end % tick]
        # (none: every liquidation of that tick came late and was counted at its end; the last sent is then
        # the one whose arrival completed it)
        sent_at = min(last_tick) if last_tick else max(send for _, send in counted)
        cascade_ms.append(int(entry_id.split(b"-")[0]) - sent_at * 1000)
    commit_ms = [(committed[k] - sent[k]) * 1000 for k in sent if k in committed]
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
