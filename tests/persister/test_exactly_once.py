"""Events through Redis end in PostgreSQL exactly once: counts, exact sums, replays and poison entries."""

from __future__ import annotations

from decimal import Decimal

import psycopg
from msgspec import structs
from prometheus_client import REGISTRY

from liq_common.codec import FIELD
from tests.persister.conftest import running, scalar
from tests.persister.factories import cascade, liquidations, publish, usd_total
from tests.waiting import eventually


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def acked(stream: str) -> float:
    return sample("liq_consumer_entries_total", stream=stream, group="persister", outcome="acked")


async def test_100k_events_end_in_exactly_100k_rows_and_a_replay_adds_none(redis, streams, pg_url, settings_for):
    """100,000 events -> 100,000 rows with the exact USD sum; re-delivering all of them adds no row."""
    events = liquidations(100_000)
    await publish(redis, streams.events, events)
    dupes_before = sample("liq_persister_duplicates_skipped_total", table="liquidations")
    written_before = sample("liq_persister_rows_written_total", table="liquidations")
    batched_before = sample("liq_persister_batch_rows_sum", table="liquidations")
    async with running(settings_for(pg_url)):
        await eventually(lambda: acked(streams.events) >= 100_000, timeout=60, what="100k entries acknowledged")
        assert await scalar(pg_url, "SELECT count(*) FROM liquidations") == 100_000
        assert await scalar(pg_url, "SELECT sum(notional_usd) FROM liquidations") == usd_total(events)

        # Replay: move the group back to the start of the stream, so every entry is delivered again.
        await redis.xgroup_setid(streams.events, "persister", "0")
        await eventually(lambda: acked(streams.events) >= 200_000, timeout=60, what="replay acknowledged")
    assert await scalar(pg_url, "SELECT count(*) FROM liquidations") == 100_000
    assert await scalar(pg_url, "SELECT sum(notional_usd) FROM liquidations") == usd_total(events)
    assert sample("liq_persister_duplicates_skipped_total", table="liquidations") - dupes_before == 100_000
    assert sample("liq_persister_rows_written_total", table="liquidations") - written_before == 100_000
    assert sample("liq_persister_batch_rows_sum", table="liquidations") - batched_before == 200_000
    assert await redis.xlen(streams.dead) == 0
    pending = await redis.xpending(streams.events, "persister")
    assert pending["pending"] == 0


async def test_every_field_is_stored_exactly(redis, streams, pg_url, settings_for):
    """Each Liquidation field lands in its column: exact NUMERIC, ms-exact timestamps, NULL contracts."""
    events = liquidations(8, seed=7)
    await publish(redis, streams.events, events)
    async with running(settings_for(pg_url)):
        await eventually(lambda: acked(streams.events) >= 8, what="8 entries acknowledged")
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        cur = await conn.execute(
            b"SELECT event_id, exchange, market, symbol, base, quote, side, price, qty, notional_usd,"
            b" (extract(epoch FROM ts) * 1000)::bigint, (extract(epoch FROM recv_ts) * 1000)::bigint,"
            b" contracts, throttled, v FROM liquidations"
        )
        rows = {row[0]: row for row in await cur.fetchall()}
    assert len(rows) == 8
    for e in events:
        assert rows[e.event_id] == (
            e.event_id,
            e.exchange,
            e.market,
            e.symbol,
            e.base,
            e.quote,
            e.side,
            e.price,
            e.qty,
            e.notional_usd,
            e.ts,
            e.recv_ts,
            e.contracts,
            e.throttled,
            e.v,
        )
    assert any(row[12] is None for row in rows.values())


async def test_poison_entries_go_to_the_dead_letter_stream_and_the_others_are_written(
    redis, streams, pg_url, settings_for
):
    """An undecodable entry, one PostgreSQL rejects and one the client cannot encode are dead-lettered;
    every good event around them is stored, and nothing stays pending."""
    good = liquidations(3000)
    nul, huge_ts, small_v = liquidations(3, seed=9, start=5000)
    # Valid JSON and schema, but PostgreSQL text cannot hold NUL: SQLSTATE 22021, the data's fault.
    nul = structs.replace(nul, symbol="BTC\x00USDT")
    # Decodes (msgspec ints go to 2**64 - 1) but does not fit int8: the client refuses to encode it.
    huge_ts = structs.replace(huge_ts, ts=2**63)
    # Fits the stage's int8 but not the smallint column: rejected, never silently wrapped.
    small_v = structs.replace(small_v, v=70_000)
    await publish(redis, streams.events, good[:1000])
    await redis.xadd(streams.events, {FIELD: b'{"kind": "liquidation", "price": "not json'})
    await publish(redis, streams.events, [nul, *good[1000:2000], huge_ts, small_v])
    await publish(redis, streams.events, good[2000:])
    async with running(settings_for(pg_url)):
        await eventually(lambda: acked(streams.events) >= 3000, timeout=30, what="good entries acknowledged")

        async def all_dead() -> bool:
            return await redis.xlen(streams.dead) == 4

        await eventually(all_dead, timeout=30, what="the four poison entries dead-lettered")
    assert await scalar(pg_url, "SELECT count(*) FROM liquidations") == 3000
    assert await scalar(pg_url, "SELECT sum(notional_usd) FROM liquidations") == usd_total(good)
    reasons = sorted(fields[b"reason"].decode().split(":")[0] for _, fields in await redis.xrange(streams.dead))
    assert reasons == ["decode", "handler", "handler", "handler"]
    assert (await redis.xpending(streams.events, "persister"))["pending"] == 0


async def test_cascade_rows_only_move_forward_in_seq(redis, streams, pg_url, settings_for):
    """open, update, close, then a redelivered older update: the row keeps the close state."""
    states = [cascade("BTC-1", 0, "open"), cascade("BTC-1", 1), cascade("BTC-2", 0, "open")]
    await publish(redis, streams.cascades, states)
    async with running(settings_for(pg_url)):
        await eventually(lambda: acked(streams.cascades) >= 3, what="first states")
        await publish(redis, streams.cascades, [cascade("BTC-1", 3, "close", usd="5000.01")])
        await eventually(lambda: acked(streams.cascades) >= 4, what="close state")
        await publish(redis, streams.cascades, [cascade("BTC-1", 2), cascade("BTC-1", 1)])
        await eventually(lambda: acked(streams.cascades) >= 6, what="stale states")
    assert await scalar(pg_url, "SELECT count(*) FROM cascades") == 2
    assert await scalar(pg_url, "SELECT seq FROM cascades WHERE cascade_id = 'BTC-1'") == 3
    assert await scalar(pg_url, "SELECT status FROM cascades WHERE cascade_id = 'BTC-1'") == "close"
    assert await scalar(pg_url, "SELECT usd FROM cascades WHERE cascade_id = 'BTC-1'") == Decimal("5000.26")
    assert await scalar(pg_url, "SELECT closed_at IS NOT NULL FROM cascades WHERE cascade_id = 'BTC-1'") is True
    assert await scalar(pg_url, "SELECT status FROM cascades WHERE cascade_id = 'BTC-2'") == "open"
    assert await scalar(pg_url, "SELECT closed_at FROM cascades WHERE cascade_id = 'BTC-2'") is None
    factors = await scalar(pg_url, "SELECT factors FROM cascades WHERE cascade_id = 'BTC-1'")
    assert factors == {
        "size": 0.1,
        "intensity": 0.2,
        "acceleration": 0.05,
        "breadth": 0.1,
        "one_sidedness": 0.05,
        "displacement": 0.0,
    }
    by_exchange = await scalar(pg_url, "SELECT by_exchange FROM cascades WHERE cascade_id = 'BTC-1'")
    assert sorted(by_exchange) == ["binance", "bybit"]
    assert by_exchange["binance"]["count"] == 6
    assert await scalar(pg_url, "SELECT (by_exchange->'bybit'->>'usd')::numeric FROM cascades LIMIT 1") == Decimal(
        "300.65"
    )
