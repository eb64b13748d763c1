"""The detector over real Redis: end to end, restart mid-cascade, byte-identical replays, dashboard keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import msgspec
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from liq_common.codec import CASCADES, to_fields
from liq_common.events import Cascade, Liquidation
from liq_common.settings import load_settings
from liq_detector.config import EngineConfig
from liq_detector.engine import Engine
from liq_detector.service import Detector
from liq_detector.settings import Settings
from tests.conftest import Streams
from tests.detector.scenarios import T0, Scenario
from tests.waiting import eventually

MIN = 60_000


def settings_for(streams: Streams, redis_url: str, **extra: str) -> Settings:
    env = {
        "REDIS_URL": redis_url,
        **streams.env(),
        "DASH_PREFIX": f"{streams.prefix}liq:dash:",
        "IDLE_MS": "200",
        "ASSET_OVERRIDES": "{}",
        "METRICS_PORT": "0",
        **extra,
    }
    return load_settings(Settings, env)


@dataclass
class Clock:
    """A wall clock the test moves by hand (seconds)."""

    now: float = 1_000.0  # 1970: idle advancement stays behind the 2026 event times until moved

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def running(settings: Settings, client: aioredis.Redis, clock: Clock) -> AsyncIterator[Detector]:
    """Run a Detector until the block ends, then stop it gracefully (SIGTERM path)."""
    stop = asyncio.Event()
    detector = Detector(settings, client, clock=clock, dash_flush_ms=0)
    task = asyncio.create_task(detector.run(stop))
    try:
        yield detector
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def xadd(client: aioredis.Redis, stream: str, events: Sequence[Liquidation]) -> None:
    pipe = client.pipeline(transaction=False)
    for ev in events:
        pipe.xadd(stream, to_fields(ev))  # type: ignore[arg-type]
    await pipe.execute()


async def cascades(client: aioredis.Redis, stream: str) -> list[Cascade]:
    return [CASCADES.decode(fields) for _, fields in await client.xrange(stream)]


def without_emitted(states: Sequence[Cascade]) -> list[bytes]:
    """States without what only the service adds: ``emitted_ts`` and ``coverage`` (the engine has no feed status)."""
    return [msgspec.json.encode(msgspec.structs.replace(s, emitted_ts=0, coverage={})) for s in states]


def crash_events() -> list[Liquidation]:
    sc = Scenario().background("BTC", T0, 15, 100_000, 90_000.0)
    sc.cascade("BTC", T0 + 15 * MIN, 60, 5e6, 90_000.0, -2.0)
    sc.background("DOGE", T0, 16, 4_000, 0.2)
    return sc.sorted()


def reference(events: Sequence[Liquidation], settings: Settings) -> list[Cascade]:
    engine = Engine(EngineConfig.from_settings(settings))
    return engine.ingest(events) + engine.drain()


async def process_all(
    client: aioredis.Redis, settings: Settings, clock: Clock, events: Sequence[Liquidation], close: bool
) -> Detector:
    """XADD ``events``, run a detector until it processed them; with ``close`` let it idle-close cascades."""
    await xadd(client, settings.events_stream, events)
    async with running(settings, client, clock) as det:
        await eventually(lambda: det.processed >= len(events) - det.engine.duplicates, what="events processed")
        if close:
            clock.now = (max(e.ts for e in events) + 10 * MIN) / 1000
            await eventually(lambda: not det.engine.open_cascades(), what="idle close")
            await eventually(lambda: det.producer.buffered == 0 and det.published > 0, what="published")
    return det


async def test_end_to_end_one_cascade_per_lifecycle(redis: aioredis.Redis, redis_url: str, streams: Streams) -> None:
    """Liquidations in, one BTC cascade lifecycle out on the cascades stream; equal to the pure engine."""
    settings = settings_for(streams, redis_url)
    events = crash_events()

    def opened() -> float:
        return REGISTRY.get_sample_value("liq_detector_cascades_total", {"status": "open", "tier": "critical"}) or 0.0

    before = opened()
    await process_all(redis, settings, Clock(), events, close=True)
    assert opened() == before + 1
    assert await redis.hlen(f"{settings.dash_prefix}cascades") == 0  # closed, so no longer listed as open
    states = await cascades(redis, streams.cascades)
    assert {"BTC"} == {s.base for s in states}
    assert states[0].status == "open"
    assert states[-1].status == "close"
    assert states[-1].exchanges == ["binance", "bybit"]
    assert states[-1].tier == "critical"
    assert without_emitted(reference(events, settings)) == without_emitted(states)
    assert all(s.emitted_ts > 0 for s in states)
    feeds = {f"{e.exchange}:{e.market}" for e in events if e.base == "BTC"}
    assert all(s.coverage == dict.fromkeys(sorted(feeds), 1.0) for s in states)  # no feed status: never down


async def test_two_runs_give_byte_identical_payloads(redis: aioredis.Redis, redis_url: str, streams: Streams) -> None:
    """Two detectors over the same events, different batching: identical cascade payloads but emitted_ts."""
    events = crash_events()
    payloads = []
    for run, batch in enumerate(("2000", "37")):
        prefix = Streams(prefix=f"{streams.prefix}run{run}:")
        settings = settings_for(prefix, redis_url, BATCH_SIZE=batch)
        clock = Clock(now=1_000.0 + run)
        await process_all(redis, settings, clock, events, close=True)
        payloads.append(without_emitted(await cascades(redis, prefix.cascades)))
    assert payloads[0]
    assert payloads[0] == payloads[1]


async def test_restart_mid_cascade_no_duplicate_no_loss(
    redis: aioredis.Redis, redis_url: str, streams: Streams
) -> None:
    """Stop the detector in the middle of a cascade and start a new one: one lifecycle, nothing repeated."""
    settings = settings_for(streams, redis_url)
    events = crash_events()
    cut = next(i for i, e in enumerate(events) if e.ts >= T0 + 15 * MIN + 30_000)
    clock = Clock()
    await process_all(redis, settings, clock, events[:cut], close=False)
    before = await cascades(redis, streams.cascades)
    assert [s.status for s in before][:1] == ["open"]
    assert "close" not in [s.status for s in before]
    await process_all(redis, settings, clock, events[cut:], close=True)
    states = await cascades(redis, streams.cascades)
    assert len({s.cascade_id for s in states}) == 1
    assert list(range(len(states))) == [s.seq for s in states]
    assert 1 == [s.status for s in states].count("open") == [s.status for s in states].count("close")
    assert without_emitted(reference(events, settings)) == without_emitted(states)


async def test_dashboard_keys_without_scans(redis: aioredis.Redis, redis_url: str, streams: Streams) -> None:
    """Per-minute aggregates, levels, large liquidations and open cascades sit under fixed keys with a TTL."""
    settings = settings_for(streams, redis_url, LARGE_USD="50000")
    events = crash_events()
    det = await process_all(redis, settings, Clock(), events, close=False)
    p = settings.dash_prefix
    assert {b"BTC", b"DOGE"} == set(await redis.zrevrange(f"{p}assets", 0, -1))
    minute = T0 + 15 * MIN
    agg = msgspec.json.decode(await redis.hget(f"{p}min:{minute}", "BTC"))
    in_minute = [e for e in events if e.base == "BTC" and minute <= e.ts < minute + MIN]
    assert len(in_minute) == agg["n"]
    assert agg["n:long"] + agg["n:short"] == len(in_minute)
    assert agg["n:binance"] + agg["n:bybit"] == len(in_minute)
    assert pytest.approx(sum(float(e.notional_usd) for e in in_minute)) == agg["usd"]
    assert 0 < await redis.ttl(f"{p}min:{minute}") <= 3_600
    meta = msgspec.json.decode(await redis.hget(f"{p}assets:meta", "BTC"))
    assert meta["level_step"] == 100  # 0.1 % of ~90k, rounded to a 1-2-5 step
    hour = minute - minute % 3_600_000
    levels = msgspec.json.decode(await redis.hget(f"{p}levels:{hour}", "BTC"))
    assert levels["step"] == 100
    assert all(float(price) % 100 == 0 for price in levels["usd"])
    btc_usd = sum(float(e.notional_usd) for e in events if e.base == "BTC" and e.ts >= hour)
    assert pytest.approx(btc_usd) == sum(levels["usd"].values())
    large = [msgspec.json.decode(x) for x in await redis.lrange(f"{p}large", 0, -1)]
    assert large
    assert all(float(x["notional_usd"]) >= 50_000 for x in large)
    assert [x["ts"] for x in large] == sorted((x["ts"] for x in large), reverse=True)  # newest first
    open_now = await redis.hgetall(f"{p}cascades")
    assert list(open_now) == [b"BTC"]
    assert set(det.engine.open_cascades()) == {CASCADES.decode({b"data": open_now[b"BTC"]}).cascade_id}
    assert await redis.hexists(f"{p}baselines", "BTC")


async def test_bad_entry_is_dead_lettered_and_rest_processed(
    redis: aioredis.Redis, redis_url: str, streams: Streams
) -> None:
    """A malformed entry goes to the dead-letter stream; the good events around it are all processed."""
    settings = settings_for(streams, redis_url)
    events = crash_events()[:50]
    await redis.xadd(streams.events, {b"data": b'{"kind":"liquidation","price":"oops"}'})
    await process_all(redis, settings, Clock(), events, close=False)
    assert await redis.xlen(streams.dead) == 1


async def test_restart_after_a_dead_lettered_last_entry(
    redis: aioredis.Redis, redis_url: str, streams: Streams
) -> None:
    """The last entry the group read was malformed (dead-lettered): a restart rebuilds from the entries
    before it. Before the fix the rebuild decoded that entry and failed, at every start."""
    settings = settings_for(streams, redis_url)
    events = crash_events()
    first, rest = events[:200], events[200:]
    await xadd(redis, streams.events, first)
    await redis.xadd(streams.events, {b"data": b'{"kind":"liquidation","price":"oops"}'})
    clock = Clock()
    async with running(settings, redis, clock) as det:
        await eventually(lambda: det.runner.dead == 1 and det.processed == len(first), what="read, bad entry dead")
    await xadd(redis, streams.events, rest)
    async with running(settings, redis, clock) as det:
        await eventually(lambda: det.processed == len(rest), what="the restarted detector consumed the rest")
        assert det.engine.duplicates == 0


async def test_restart_publishes_a_state_lost_before_the_crash(
    redis: aioredis.Redis, redis_url: str, streams: Streams
) -> None:
    """A state processed but never published (crash before the flush) is published on restart, once."""
    settings = settings_for(streams, redis_url)
    events = crash_events()
    cut = next(i for i, e in enumerate(events) if e.ts >= T0 + 15 * MIN + 50_000)
    clock = Clock()
    await process_all(redis, settings, clock, events[:cut], close=False)
    published = await redis.xrange(streams.cascades)
    assert len(published) >= 2
    await redis.xdel(streams.cascades, published[-1][0])  # the producer never flushed it
    await process_all(redis, settings, clock, events[cut:], close=True)
    states = await cascades(redis, streams.cascades)
    assert [s.seq for s in states] == list(range(len(states)))
    assert without_emitted(states) == without_emitted(reference(events, settings))


async def test_restart_adopts_a_cascade_older_than_the_replay(
    redis: aioredis.Redis, redis_url: str, streams: Streams
) -> None:
    """With a replay horizon shorter than the cascade, the published state is adopted, not reopened."""
    settings = settings_for(streams, redis_url, REBUILD_MAX_MS="20000")
    events = crash_events()
    cut = next(i for i, e in enumerate(events) if e.ts >= T0 + 15 * MIN + 50_000)
    clock = Clock()
    await process_all(redis, settings, clock, events[:cut], close=False)
    await process_all(redis, settings, clock, events[cut:], close=True)
    states = await cascades(redis, streams.cascades)
    assert len({s.cascade_id for s in states}) == 1
    assert [s.seq for s in states] == list(range(len(states)))
    assert [s.status for s in states].count("open") == 1
    assert states[-1].status == "close"
    assert states[-1].count == reference(events, settings)[-1].count


async def test_redelivered_pending_entries_count_once(redis: aioredis.Redis, redis_url: str, streams: Streams) -> None:
    """Entries delivered before a crash but never acknowledged come back; cascades and minutes count them once."""
    settings = settings_for(streams, redis_url)
    events = crash_events()
    cut = next(i for i, e in enumerate(events) if e.ts >= T0 + 15 * MIN + 40_000)
    clock = Clock()
    await process_all(redis, settings, clock, events[:cut], close=False)
    await xadd(redis, streams.events, events[cut : cut + 40])
    # A detector that read these 40 entries and crashed before acknowledging them.
    await redis.xreadgroup(settings.group, settings.consumer, {streams.events: ">"}, count=40)
    assert (await redis.xpending(streams.events, settings.group))["pending"] == 40
    await process_all(redis, settings, clock, events[cut + 40 :], close=True)
    assert (await redis.xpending(streams.events, settings.group))["pending"] == 0
    states = await cascades(redis, streams.cascades)
    assert without_emitted(states) == without_emitted(reference(events, settings))
    minute = T0 + 15 * MIN
    agg = msgspec.json.decode(await redis.hget(f"{settings.dash_prefix}min:{minute}", "BTC"))
    assert agg["n"] == sum(1 for e in events if e.base == "BTC" and minute <= e.ts < minute + MIN)
