"""Silent feeds: an acknowledged connection that carries nothing is reported and reconnected; a quiet
market is not mistaken for a dead feed. Simulator, real Redis, both ingestors in this event loop."""

from __future__ import annotations

import asyncio
import math

import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from liq_common.events import FeedStatus
from liq_exchange_sim import SimConfig, Simulator
from tests.conftest import Streams
from tests.feed_health.harness import HEALTH, LEGACY_USDM, ingestors, keep_active, statuses
from tests.waiting import eventually

SIM = SimConfig(binance_throttle_ms=100, bybit_push_interval_ms=50)


def of(events: list[FeedStatus], exchange: str, status: str | None = None) -> list[FeedStatus]:
    return [e for e in events if e.exchange == exchange and (status is None or e.status == status)]


def silent_count(reason: str) -> float:
    labels = {"exchange": "binance", "market": "linear", "reason": reason}
    return REGISTRY.get_sample_value("liq_feed_silent_total", labels) or 0.0


async def test_legacy_path_is_reported_within_the_control_timeout(redis: aioredis.Redis, streams: Streams) -> None:
    """USD-M on the unrouted path: acknowledged, no markPrice: silent (no_control_data) within
    CONTROL_TIMEOUT + one check, counted, published, then reconnected; Bybit, active meanwhile, raises nothing."""
    before = silent_count("no_control_data")
    async with Simulator(SIM) as sim, ingestors(sim, redis, streams, usdm_path=LEGACY_USDM) as run:
        feeder = asyncio.create_task(keep_active(sim, run.stop))

        async def reconnected_after_silence() -> bool:
            events = of(await statuses(redis, streams.feed), "binance")
            return any(e.status == "silent" for e in events) and any(e.status == "reconnected" for e in events)

        await eventually(reconnected_after_silence, timeout=HEALTH["control_timeout"] + 8, what="silent + reconnect")
        run.stop.set()
        await feeder
    events = await statuses(redis, streams.feed)
    binance = of(events, "binance")
    subscribed = next(e for e in binance if e.status == "subscribed")
    silent = next(e for e in binance if e.status == "silent")
    assert silent.reason == "no_control_data"
    assert silent.since_ts == subscribed.ts  # nothing ever came after the acknowledgement
    limit_ms = (HEALTH["control_timeout"] + HEALTH["silence_check_interval"]) * 1000 + 500
    assert HEALTH["control_timeout"] * 1000 < silent.ts - subscribed.ts <= limit_ms
    order = [e.status for e in binance]
    first_silent = order.index("silent")
    assert order[first_silent + 1 : first_silent + 3] == ["disconnected", "reconnected"]
    assert binance[first_silent + 1].reason == "silent"
    assert "first_data" not in order[:first_silent]
    assert silent_count("no_control_data") >= before + 1
    assert of(events, "bybit", "silent") == []
    assert of(events, "bybit", "first_data")  # Bybit carried data all along


async def test_activity_catches_a_dead_feed_without_a_control_stream(redis: aioredis.Redis, streams: Streams) -> None:
    """Control stream off: the legacy connection is still caught, by cross-exchange activity, within
    QUIET_AFTER + one activity refresh + one check."""
    async with (
        Simulator(SIM) as sim,
        ingestors(sim, redis, streams, usdm_path=LEGACY_USDM, binance={"binance_usdm_control_stream": ""}) as run,
    ):
        feeder = asyncio.create_task(keep_active(sim, run.stop))
        await eventually(
            lambda: run.binance_slot().silences >= 1, timeout=HEALTH["quiet_after"] + 8, what="silence by activity"
        )
        run.stop.set()
        await feeder
    binance = of(await statuses(redis, streams.feed), "binance")
    subscribed = next(e for e in binance if e.status == "subscribed")
    silent = next(e for e in binance if e.status == "silent")
    assert silent.reason == "no_liquidations_while_market_active"
    slack = HEALTH["activity_refresh"] + HEALTH["silence_check_interval"]
    assert HEALTH["quiet_after"] * 1000 < silent.ts - subscribed.ts <= (HEALTH["quiet_after"] + slack) * 1000 + 500


async def test_a_quiet_market_raises_nothing(redis: aioredis.Redis, streams: Streams) -> None:
    """Routed path, nothing liquidated anywhere: mark prices keep the Binance link proven, Bybit's pongs keep
    its link proven, nobody is active: no silent event over more than both thresholds."""
    async with Simulator(SIM) as sim, ingestors(sim, redis, streams) as run:
        slot = run.binance_slot()
        span = HEALTH["control_timeout"] + HEALTH["quiet_after"]
        needed = math.ceil(span / HEALTH["silence_check_interval"]) + 5
        await eventually(lambda: slot.checks >= needed, timeout=span + 10, what=f"{needed} silence checks")
        assert sim.stats.mark_price_frames >= span  # one a second on the routed path
        assert run.binance.feeds["linear"].control_frames >= span
        assert not run.binance.activity.active
        bybit_slots = [c.slot for c in run.bybit.feeds["linear"].connections]
        assert bybit_slots
        assert all(s is not None and s.silences == 0 for s in bybit_slots)
        assert slot.silences == 0
    events = await statuses(redis, streams.feed)
    assert [e for e in events if e.status == "silent"] == []
    assert [e.status for e in of(events, "binance")] == ["connected", "subscribed", "first_data", "disconnected"]
    assert of(events, "binance")[-1].reason == "shutdown"
