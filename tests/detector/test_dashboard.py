"""Dashboard writes against real Redis: one pipeline, absolute minute totals, requeue after a failure."""

from __future__ import annotations

import msgspec
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from liq_common import rawpipe
from liq_common.events import Liquidation
from liq_common.streams import connect_redis
from liq_detector.dashboard import Dashboard
from tests.conftest import Streams
from tests.detector.scenarios import T0, liq
from tests.waiting import free_port

MIN = 60_000


def triples(events: list[Liquidation]) -> list[tuple[Liquidation, float, float]]:
    return [(e, float(e.notional_usd), float(e.price)) for e in events]


async def flush(dash: Dashboard, client: aioredis.Redis) -> None:
    cmds, _ = dash.commands()
    await rawpipe.execute(client, cmds)


async def test_minute_totals_are_absolute_across_flushes(redis: aioredis.Redis, streams: Streams) -> None:
    """Two flushes of the same minute leave the full totals (not the last batch) in the hash."""
    dash = Dashboard(streams.prefix, 3600, 0.1, 1e9, 10)
    first = [liq("SOL", T0 + i * 1000, "long", 1_000, 150.0, exchange="bybit", n=i) for i in range(3)]
    second = [liq("SOL", T0 + 10_000 + i, "short", 500, 150.0, exchange="binance", n=10 + i) for i in range(2)]
    dash.add(triples(first))
    await flush(dash, redis)
    dash.add(triples(second))
    await flush(dash, redis)
    agg = msgspec.json.decode(await redis.hget(f"{streams.prefix}min:{T0}", "SOL"))
    assert agg == {
        "n": 5,
        "usd": 4_000.0,
        "n:long": 3,
        "usd:long": 3_000.0,
        "n:short": 2,
        "usd:short": 1_000.0,
        "n:bybit": 3,
        "usd:bybit": 3_000.0,
        "n:binance": 2,
        "usd:binance": 1_000.0,
    }


async def test_failed_pipeline_is_requeued(redis: aioredis.Redis, streams: Streams) -> None:
    """When Redis is unreachable the taken writes go back and the next flush writes them all."""
    dash = Dashboard(streams.prefix, 3600, 0.1, 5_000, 10)
    events = [liq("SOL", T0 + i * 1000, "long", 6_000, 150.0, n=i) for i in range(4)]
    dash.add(triples(events))
    dead = connect_redis(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=1)
    cmds, taken = dash.commands()
    with pytest.raises(RedisConnectionError):
        await rawpipe.execute(dead, cmds)
    await dead.aclose()
    assert not dash.pending
    dash.requeue(taken)
    assert dash.pending
    await flush(dash, redis)
    agg = msgspec.json.decode(await redis.hget(f"{streams.prefix}min:{T0}", "SOL"))
    assert agg["n"] == 4
    assert await redis.llen(f"{streams.prefix}large") == 4
    levels = msgspec.json.decode(await redis.hget(f"{streams.prefix}levels:{T0 - T0 % 3_600_000}", "SOL"))
    assert levels == {"step": 0.2, "usd": {"150.0": 24_000.0}}


async def test_old_minutes_are_not_overwritten_by_stragglers(redis: aioredis.Redis, streams: Streams) -> None:
    """An event for a minute already pruned from memory is counted as stale, not written as a partial."""
    dash = Dashboard(streams.prefix, 3600, 0.1, 1e9, 10)
    dash.add(triples([liq("SOL", T0 + m * MIN, "long", 1_000, 150.0, n=m) for m in range(10)]))
    await flush(dash, redis)
    dash.add(triples([liq("SOL", T0, "short", 1_000, 150.0, n=99)]))
    assert dash.stale == 1
    agg = msgspec.json.decode(await redis.hget(f"{streams.prefix}min:{T0}", "SOL"))
    assert agg["n"] == 1


async def test_every_written_key_gets_the_ttl(redis: aioredis.Redis, streams: Streams) -> None:
    """Each key a flush touches carries the configured TTL."""
    dash = Dashboard(streams.prefix, 1234, 0.1, 500, 10)
    dash.add(triples([liq("SOL", T0 + i * 1000, "long", 1_000, 150.0, n=i) for i in range(3)]))
    cmds, _ = dash.commands()
    await rawpipe.execute(redis, cmds)
    keys = {str(c[1]) for c in cmds}
    names = (f"min:{T0}", f"levels:{T0}", "assets", "assets:meta", "large")
    assert keys == {f"{streams.prefix}{k}" for k in names}
    for key in keys:
        assert 1200 < await redis.ttl(key) <= 1234
