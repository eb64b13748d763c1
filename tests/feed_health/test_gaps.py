"""Outages as data: a Binance disconnect is one gap row with bounds within 1 s of the truth, and a cascade
overlapping it carries coverage < 1; completeness flags per exchange; a Binance-only cascade is a lower
bound in the database, the alert text, ``liq stats`` and ``liq check``'s feed lines.

Simulator, both ingestors, the detector and the persister in this event loop; real Redis and PostgreSQL.
The outage lasts ``FEED_HEALTH_GAP_S`` seconds (3 by default to keep the suite fast; set 30 for the
issue's figure: the bounds are asserted the same way).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import psycopg
import redis.asyncio as aioredis

from liq_alerter.content import facts
from liq_common.codec import CASCADES, to_fields
from liq_common.events import Cascade
from liq_common.settings import load_settings
from liq_detector.service import Detector
from liq_detector.settings import Settings as DetectorSettings
from liq_exchange_sim import SimConfig, Simulator
from tests.cli.factories import env_for, liq, run_liq
from tests.conftest import Streams
from tests.feed_health.harness import ingestors, liquidations, statuses, wall_of
from tests.ingest_common.harness import open_connections
from tests.ingest_common.harness import stream_events as events_of
from tests.persister.conftest import make_settings
from tests.persister.conftest import running as persister_running
from tests.waiting import eventually

GAP_S = float(os.environ.get("FEED_HEALTH_GAP_S", "3"))
SIM = SimConfig(binance_throttle_ms=100, bybit_push_interval_ms=50)
DETECTOR = {
    "FLOOR_USD": "1000",
    "COLD_MULTIPLE": "3",
    "MIN_EVENTS": "3",
    "WINDOW_MS": "2000",
    "ACCEL_MS": "1000",
    "TICK_MS": "500",
    "QUIET_MS": "1000",
    "LATENESS_MS": "300",
    "IDLE_MS": "200",
    "UPDATE_INTERVAL_MS": "500",
    "ASSET_OVERRIDES": "{}",
}


@contextlib.asynccontextmanager
async def detector(client: aioredis.Redis, redis_url: str, streams: Streams) -> AsyncIterator[Detector]:
    env = {"REDIS_URL": redis_url, **streams.env(), "DASH_PREFIX": f"{streams.prefix}liq:dash:", **DETECTOR}
    # Cold start (RISK.md): an asset needs one complete minute of history before a cascade can open on it.
    history = liq("binance", "BTC", "long", "100", int(time.time() * 1000) - 120_000, price="65000")
    await client.xadd(streams.events, to_fields(history))
    running = Detector(load_settings(DetectorSettings, env), client, dash_flush_ms=0)
    stop = asyncio.Event()
    task = asyncio.create_task(running.run(stop))
    try:
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)


async def cascades(client: aioredis.Redis, stream: str) -> list[Cascade]:
    return [CASCADES.decode(fields) for _, fields in await client.xrange(stream, "-", "+")]


async def closed(client: aioredis.Redis, stream: str) -> list[Cascade]:
    return [c for c in await cascades(client, stream) if c.status == "close"]


async def rows(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await (await conn.execute(query.encode(), params or None)).fetchall()


def seconds(ts: datetime) -> float:
    return ts.timestamp()


async def pump(sim: Simulator, exchange: str, stop: asyncio.Event, every: float = 0.25) -> None:
    """A steady one-sided BTC stream on ``exchange`` (about $6,500 a liquidation) until ``stop``."""
    while not stop.is_set():
        sim.emit(liquidations(exchange, "BTCUSDT", "long", "65000", "0.1", int(time.time() * 1000), 1))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)


async def test_disconnect_is_one_gap_and_the_cascade_over_it_has_partial_coverage(
    redis: aioredis.Redis, redis_url: str, streams: Streams, pg_url: str
) -> None:
    """Binance USD-M is cut for GAP_S seconds in the middle of a BTC cascade while Bybit keeps going."""
    persister = make_settings(redis_url, streams, pg_url, flush_ms=50)
    async with (
        Simulator(SIM) as sim,
        persister_running(persister),
        detector(redis, redis_url, streams),
        ingestors(sim, redis, streams) as run,
    ):
        await eventually(lambda: open_connections(sim, "binance_usdm") == 1, what="binance connected")
        await eventually(lambda: bool(run.bybit.feeds["linear"].acked_topics()), what="bybit subscribed")
        await eventually(lambda: run.binance_slot().acked_at is not None, what="binance acknowledged")
        bybit_stop, binance_stop = asyncio.Event(), asyncio.Event()
        bybit = asyncio.create_task(pump(sim, "bybit", bybit_stop))
        binance = asyncio.create_task(pump(sim, "binance", binance_stop))

        async def exchanges_seen() -> set[str]:
            return {e.exchange for e in (await events_of(redis, streams.events))[1:]}  # after the seed

        await eventually(lambda: _eq(exchanges_seen(), {"binance", "bybit"}), what="both exchanges publishing")
        # The outage: refuse every handshake, cut the open connection without a close frame.
        sim.set_faults("binance_usdm", refuse_status=503, refuse_count=None)
        [victim] = sim.connections("binance_usdm")
        cut_at = time.time()
        victim.drop("drop_fault")
        binance_stop.set()
        await binance
        await asyncio.sleep(GAP_S)  # the scenario itself: how long Binance stays unreachable
        sim.set_faults("binance_usdm", refuse_status=None)
        await eventually(lambda: open_connections(sim, "binance_usdm") == 1, what="binance back")
        back_at = wall_of(sim.connections("binance_usdm")[0].opened_at)
        await eventually(lambda: run.binance_slot().acked_at is not None, what="binance acknowledged again")
        binance_stop.clear()
        binance = asyncio.create_task(pump(sim, "binance", binance_stop))
        published = len([e for e in await events_of(redis, streams.events) if e.exchange == "binance"])
        assert run.binance_slot().session == 2

        async def binance_again() -> bool:
            return len([e for e in await events_of(redis, streams.events) if e.exchange == "binance"]) >= published + 3

        await eventually(binance_again, what="binance publishing again")
        binance_stop.set()
        bybit_stop.set()
        await asyncio.gather(binance, bybit)
        await eventually(lambda: _nonempty(closed(redis, streams.cascades)), timeout=20, what="cascade closed")
        await eventually(
            lambda: _nonempty(rows(pg_url, "SELECT 1 FROM cascades WHERE status = 'close'")), what="cascade stored"
        )
        gaps = await rows(pg_url, "SELECT exchange, market, conn, start_ts, end_ts, reason FROM feed_gaps")

    # exactly one gap row, bounds within 1 s of the truth
    [(exchange, market, conn, start, end, reason)] = gaps
    assert (exchange, market, conn) == ("binance", "linear", "0")
    assert abs(seconds(start) - cut_at) < 1.0, (start, cut_at)
    assert end is not None
    assert abs(seconds(end) - back_at) < 1.0, (end, back_at)
    assert reason in ("connection_lost", "server_closed")
    assert seconds(end) - seconds(start) >= GAP_S - 1.0
    # the cascade over it: coverage < 1 for Binance, 1 for Bybit; lower bound because Binance contributed
    [final] = await closed(redis, streams.cascades)
    assert final.window_start < int(cut_at * 1000)
    assert final.window_end > int(back_at * 1000)
    assert final.coverage["bybit:linear"] == 1.0
    expected = 1 - (seconds(end) - seconds(start)) * 1000 / (final.window_end - final.window_start)
    assert final.coverage["binance:linear"] < 1.0
    assert abs(final.coverage["binance:linear"] - expected) < 0.01
    assert final.lower_bound
    [(coverage, lower_bound)] = await rows(pg_url, "SELECT coverage, lower_bound FROM cascades")
    assert coverage["binance:linear"] == final.coverage["binance:linear"]
    assert lower_bound is True
    # completeness flags per exchange
    flags = {(e.exchange, e.throttled) for e in (await events_of(redis, streams.events))[1:]}  # after the seed
    assert flags == {("binance", True), ("bybit", False)}
    # the lifecycle went to the database too
    stored = await rows(pg_url, "SELECT status, ts, session FROM feed_status WHERE exchange = 'binance' ORDER BY ts")
    lifecycle = ["connected", "subscribed", "first_data", "disconnected", "reconnected", "subscribed"]
    assert [s for s, _, _ in stored][:6] == lifecycle, stored
    assert len(await statuses(redis, streams.feed)) >= len(stored)


async def test_binance_only_cascade_is_a_lower_bound_everywhere(
    redis: aioredis.Redis, redis_url: str, streams: Streams, pg_url: str
) -> None:
    """Only Binance liquidates: the cascade is lower_bound in the stream and the database, the alert says
    "at least", `liq stats` words the totals as lower bounds, and `liq check` lists the feeds as connected."""
    persister = make_settings(redis_url, streams, pg_url, flush_ms=50)
    async with (
        Simulator(SIM) as sim,
        persister_running(persister),
        detector(redis, redis_url, streams),
        ingestors(sim, redis, streams) as run,
    ):
        await eventually(lambda: run.binance_slot().acked_at is not None, what="binance acknowledged")
        stop = asyncio.Event()
        binance = asyncio.create_task(pump(sim, "binance", stop, every=0.15))
        await eventually(lambda: _nonempty(cascades(redis, streams.cascades)), timeout=20, what="cascade opened")
        stop.set()
        await binance
        await eventually(lambda: _nonempty(closed(redis, streams.cascades)), timeout=20, what="cascade closed")
        await eventually(
            lambda: _nonempty(rows(pg_url, "SELECT 1 FROM cascades WHERE status = 'close'")), what="cascade stored"
        )
        await eventually(
            lambda: _nonempty(rows(pg_url, "SELECT 1 FROM feed_status WHERE status = 'first_data'")),
            what="feed status stored",
        )
        env = env_for(redis_url, streams, pg_url)
        stats = await run_liq("stats", "--since", "1h", env=env)
        check = await run_liq("check", "--exchanges", "binance", env=env)
    [final] = await closed(redis, streams.cascades)
    assert final.exchanges == ["binance"]
    assert final.lower_bound
    assert final.coverage == {"binance:linear": 1.0}
    [(lower_bound,)] = await rows(pg_url, "SELECT lower_bound FROM cascades")
    assert lower_bound is True
    text = facts(final)
    assert text.total.startswith("at least $")
    assert "lower bounds" in text.footer
    assert stats.code == 0, stats.err
    assert "at least $" in stats.out
    assert "binance:linear#0: connected" in check.out, check.out
    assert "binance:linear: newest liquidation" in check.out
    assert "no gaps in the last 24 h" in check.out


async def _eq(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def _nonempty(value: Any) -> bool:
    return bool(await value)
