"""``liq check``: exit 0 when all is well, non-zero with one clear line per problem otherwise."""

from __future__ import annotations

import time

import psycopg
import redis.asyncio as aioredis

from liq_common.codec import encode
from liq_persister.schema import latest_version
from tests.cli.factories import Result, env_for, liq, run_liq, store
from tests.conftest import Streams
from tests.waiting import free_port

GROUPS = {"events": ("detector", "persister"), "cascades": ("persister", "alerter")}


async def healthy(redis: aioredis.Redis, streams: Streams, url: str) -> None:
    """A pipeline that is keeping up: every group exists and has read everything; fresh rows for both exchanges."""
    now = int(time.time() * 1000)
    events = [liq("binance", "BTC", "long", "1000", now - 5_000), liq("bybit", "ETH", "short", "2000", now - 9_000)]
    for event in events:
        await redis.xadd(streams.events, {b"data": encode(event)})
    for kind, groups in GROUPS.items():
        stream = streams.events if kind == "events" else streams.cascades
        for group in groups:
            await redis.xgroup_create(stream, group, id="$", mkstream=True)
    await store(url, events)


def problems(result: Result) -> list[str]:
    return [line for line in result.out.splitlines() if line.startswith("PROBLEM")]


async def test_check_passes_when_all_is_well(
    redis_url: str, redis: aioredis.Redis, streams: Streams, migrated_url: str
) -> None:
    """Reachable servers, current schema, groups keeping up, no dead letters, fresh events: exit 0."""
    await healthy(redis, streams, migrated_url)
    result = await run_liq("check", env=env_for(redis_url, streams, migrated_url))
    assert result.code == 0, result.out + result.err
    assert problems(result) == []
    assert f"version {latest_version()}" in result.out
    assert f"{streams.events} / detector: lag 0, pending 0" in result.out
    assert "binance: newest liquidation" in result.out
    assert "all good" in result.out


async def test_check_fails_when_redis_is_down(streams: Streams, migrated_url: str) -> None:
    """Redis on a closed port: non-zero, and the problem line names Redis and its URL."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = await run_liq("check", env=env_for(url, streams, migrated_url))
    assert result.code != 0
    [line] = [p for p in problems(result) if "redis" in p]
    assert "unreachable" in line
    assert url in line


async def test_check_fails_when_a_group_lags(
    redis_url: str, redis: aioredis.Redis, streams: Streams, migrated_url: str
) -> None:
    """A group more entries behind than --max-lag is one problem line naming the stream, group and lag."""
    await healthy(redis, streams, migrated_url)
    pipe = redis.pipeline(transaction=False)
    for i in range(30):
        pipe.xadd(streams.events, {b"data": encode(liq("bybit", "BTC", "long", "10", int(time.time() * 1000) - i))})
    await pipe.execute()
    # The persister group reads them all (no ack: they stay pending); the detector reads none.
    await redis.xreadgroup("persister", "p-1", {streams.events: ">"}, count=100)

    env = env_for(redis_url, streams, migrated_url)
    result = await run_liq("check", "--max-lag", "20", "--max-pending", "100", env=env)
    assert result.code != 0, result.out
    assert problems(result) == [
        f"PROBLEM  group     {streams.events} / detector: lag more than 20, pending 0: lag above 20",
    ]
    result = await run_liq("check", "--max-pending", "10", env=env)
    assert result.code != 0
    assert problems(result) == [
        f"PROBLEM  group     {streams.events} / persister: lag 0, pending 30: pending above 10",
    ]


async def test_check_follows_each_shard_of_a_sharded_detector(
    redis_url: str, redis: aioredis.Redis, streams: Streams, migrated_url: str
) -> None:
    """Shard groups ``detector.0of2`` / ``detector.1of2`` stand for the detector; a lagging shard is named,
    a shard without a group is a problem, and a group merely named ``detector.something`` does not count."""
    await healthy(redis, streams, migrated_url)
    await redis.xgroup_destroy(streams.events, "detector")
    await redis.xgroup_create(streams.events, "detector.0of2", id="$")
    await redis.xgroup_create(streams.events, "detector.1of2", id="0")  # has read nothing: 2 entries behind
    env = env_for(redis_url, streams, migrated_url)
    result = await run_liq("check", "--max-lag", "1", env=env)
    assert f"{streams.events} / detector.0of2: lag 0, pending 0" in result.out
    assert problems(result) == [f"PROBLEM  group     {streams.events} / detector.1of2: lag 2, pending 0: lag above 1"]
    await redis.xgroup_destroy(streams.events, "detector.1of2")
    result = await run_liq("check", env=env)
    assert problems(result) == [
        f"PROBLEM  group     {streams.events}: consumer group 'detector.1of2' is missing (a shard is not running)"
    ]
    await redis.xgroup_destroy(streams.events, "detector.0of2")
    await redis.xgroup_create(streams.events, "detector.audit", id="$")
    result = await run_liq("check", env=env)
    assert problems(result) == [
        f"PROBLEM  group     {streams.events}: consumer group 'detector' is missing (is liq-detector running?)"
    ]


async def test_check_fails_when_the_schema_is_old_and_on_dead_letters_and_stale_feeds(
    redis_url: str, redis: aioredis.Redis, streams: Streams, migrated_url: str
) -> None:
    """An older schema, a dead letter and a silent exchange are each one problem line."""
    await healthy(redis, streams, migrated_url)
    async with await psycopg.AsyncConnection.connect(migrated_url, autocommit=True) as conn:
        await conn.execute("DELETE FROM schema_migrations WHERE version = %s", (latest_version(),))
    await redis.xadd(streams.dead, {b"stream": streams.events, b"reason": b"decode: bad side", b"data": b"{}"})

    result = await run_liq("check", "--exchanges", "binance,bybit,okx", env=env_for(redis_url, streams, migrated_url))
    assert result.code != 0
    lines = problems(result)
    assert len(lines) == 3, result.out
    dead, schema, silent = lines
    assert "1 dead letters" in dead
    assert "decode: bad side" in dead
    assert f"at version {latest_version() - 1}, the persister needs {latest_version()}" in schema
    assert "okx: no liquidation stored" in silent


async def test_check_lists_feed_health_and_flags_a_feed_that_is_down(
    redis_url: str, redis: aioredis.Redis, streams: Streams, migrated_url: str
) -> None:
    """Feed lines: a connected slot is ok with its last step; a slot whose last event is `disconnected` is a
    problem naming the reason; each feed shows its last data age and its gaps of the last 24 h."""
    from liq_common.events import FeedStatus
    from liq_common.observability import Health
    from liq_persister.database import Database, DatabaseStatus
    from liq_persister.feed import FeedWriter

    await healthy(redis, streams, migrated_url)
    now = int(time.time() * 1000)

    def st(exchange: str, status: str, ago_ms: int, reason: str = "", session: int = 1) -> FeedStatus:
        return FeedStatus(
            exchange=exchange,
            market="linear",
            conn="0",
            status=status,  # type: ignore[arg-type]
            ts=now - ago_ms,
            reason=reason,
            session=session,
        )

    db = Database(migrated_url, "feed", DatabaseStatus(Health()), 30.0)
    try:
        await FeedWriter(db).write(
            [
                st("bybit", "connected", 600_000),
                st("bybit", "subscribed", 599_000),
                st("bybit", "disconnected", 300_000, "pong_timeout"),
                st("bybit", "reconnected", 270_000, session=2),
                st("binance", "connected", 600_000),
                st("binance", "disconnected", 120_000, "connection_lost"),
            ]
        )
    finally:
        await db.close()
    result = await run_liq("check", env=env_for(redis_url, streams, migrated_url))
    assert result.code != 0
    assert "bybit:linear#0: connected (reconnected 4m" in result.out
    assert "binance:linear: newest liquidation" in result.out
    assert "bybit:inverse: newest liquidation" in result.out  # stored data of a feed without status rows
    assert "1 gap(s) in the last 24 h, 30s in all, longest 30s" in result.out
    feed_problems = [p for p in problems(result) if "feeds" in p]
    assert len(feed_problems) == 2, feed_problems
    assert "binance:linear#0: disconnected (connection_lost) for 2m" in feed_problems[0]
    assert "1 still open" in feed_problems[1]
