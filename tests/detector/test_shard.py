"""Sharded detectors: together they publish exactly what one detector publishes, and nothing twice."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import pytest
import redis.asyncio as aioredis

from liq_common.codec import FIELD, EntryDecodeError, encode
from liq_common.events import Cascade, Liquidation
from liq_common.settings import SettingsError
from liq_detector.rebuild import inherit_position
from liq_detector.shard import NO_TIME, Routed, RoutingDecoder, Shard, group_name, layout_of, split
from tests.conftest import Streams
from tests.detector.scenarios import T0, Scenario, liq
from tests.detector.test_service import (
    MIN,
    Clock,
    cascades,
    reference,
    running,
    settings_for,
    without_emitted,
    xadd,
)
from tests.waiting import eventually


def two_cascades() -> list[Liquidation]:
    """A BTC cascade (shard 0 of 2) overlapping an ETH cascade (shard 1 of 2), plus quiet assets on both."""
    sc = Scenario().background("BTC", T0, 15, 100_000, 90_000.0)
    sc.cascade("BTC", T0 + 15 * MIN, 60, 5e6, 90_000.0, -2.0)
    sc.background("ETH", T0, 16, 60_000, 3_000.0)
    sc.cascade("ETH", T0 + 15 * MIN + 20_000, 60, 3e6, 3_000.0, 1.5, side="short")
    sc.background("DOGE", T0, 16, 4_000, 0.2)
    sc.background("BNB", T0, 16, 8_000, 600.0)
    return sc.sorted()


def by_cascade(states: Sequence[Cascade]) -> list[bytes]:
    """Payloads in (cascade, seq) order: shards interleave their outputs on the stream."""
    return without_emitted(sorted(states, key=lambda s: (s.cascade_id, s.seq)))


def test_ownership_is_a_stable_partition() -> None:
    """Every asset has exactly one owner, and the mapping is crc32-based: the same in every process and
    release (a salted ``hash()`` would move assets between shards on restart)."""
    bases = [f"A{k}" for k in range(500)] + ["BTC", "ETH", "DOGE", "BNB"]
    for count in (1, 2, 3, 5):
        shards = [Shard(k, count) for k in range(count)]
        for base in bases:
            assert sum(s.owns(base) for s in shards) == 1
    assert [Shard(0, 2).owner(b) for b in ("BTC", "ETH", "DOGE", "BNB")] == [0, 1, 0, 1]
    assert Shard(0, 3).owner("XRP") == zlib.crc32(b"XRP") % 3 == 0
    with pytest.raises(ValueError, match="not in"):
        Shard(2, 2)


def routed(ev: Liquidation) -> Routed:
    return Routed(event_id=ev.event_id, exchange=ev.exchange, market=ev.market, side=ev.side, base=ev.base, ts=ev.ts)


def test_routing_decoder_decodes_only_its_own_assets() -> None:
    btc, eth = liq("BTC", T0, "long", 50_000, 90_000), liq("ETH", T0 + 5, "short", 9_000, 3_000)
    zero, one = RoutingDecoder(Shard(0, 2)), RoutingDecoder(Shard(1, 2))
    assert zero.decode_flat([FIELD, encode(btc)]) == btc
    assert zero.decode_flat([FIELD, encode(eth)]) == routed(eth)
    assert one.decode_flat([FIELD, encode(eth)]) == eth
    # The multi-field form goes through the full decode, then is routed the same way.
    assert one.decode_flat([b"x", b"1", FIELD, encode(btc)]) == routed(btc)


UNROUTED = Routed(event_id="", exchange="bybit", market="linear", side="long", base="", ts=NO_TIME)


def test_a_bad_entry_is_reported_by_exactly_one_shard() -> None:
    """Unroutable: shard 0 raises (the runner dead-letters it), the others skip it. Routable but invalid:
    its owner raises, the others only read its event time."""
    zero, one = RoutingDecoder(Shard(0, 2)), RoutingDecoder(Shard(1, 2))
    for broken in (b"{not json", b'{"kind":"cascade","base":"ETH","ts":1}', b'{"kind":"liquidation","price":"oops"}'):
        with pytest.raises(EntryDecodeError):
            zero.decode_flat([FIELD, broken])
        assert one.decode_flat([FIELD, broken]) == UNROUTED
    eth_without_price = (
        b'{"kind":"liquidation","event_id":"x","exchange":"bybit","market":"linear","side":"long","base":"ETH","ts":7}'
    )
    assert zero.decode_flat([FIELD, eth_without_price]).ts == 7  # type: ignore[union-attr]
    with pytest.raises(EntryDecodeError, match="missing required field"):
        one.decode_flat([FIELD, eth_without_price])


def test_a_garbage_entry_does_not_move_another_shards_watermark() -> None:
    """An entry with a base and a far-future time but no venue is not a liquidation: the non-owners skip it
    (a single detector would dead-letter it and never see its time; counting it would hold back every later
    tick of the shard), and shard 0 reports it."""
    garbage = b'{"kind":"liquidation","base":"BTC","ts":9999999999999000,"exchange":"okx"}'
    assert RoutingDecoder(Shard(1, 2)).decode_flat([FIELD, garbage]) == UNROUTED
    with pytest.raises(EntryDecodeError):
        RoutingDecoder(Shard(0, 2)).decode_flat([FIELD, garbage])
    negative = (
        b'{"kind":"liquidation","event_id":"x","exchange":"bybit","market":"linear","side":"long","base":"BTC","ts":-5}'
    )
    assert RoutingDecoder(Shard(1, 2)).decode_flat([FIELD, negative]) == UNROUTED
    own, newest = split([UNROUTED, UNROUTED])
    assert (own, newest) == ([], NO_TIME)


def test_group_names_carry_the_layout() -> None:
    """``GROUP.{index}of{count}``: another shard count is another set of groups, told apart by layout_of."""
    assert [group_name("detector", i, 2) for i in range(2)] == ["detector.0of2", "detector.1of2"]
    assert group_name("detector", 0, 1) == "detector"
    assert [layout_of("detector", n) for n in ("detector", "detector.1of3", "detector.audit", "persister")] == [
        1,
        3,
        None,
        None,
    ]
    assert layout_of("detector", "detector.0of2x") is None


def test_settings_name_one_group_per_shard(streams: Streams, redis_url: str) -> None:
    assert settings_for(streams, redis_url).consumer_group == "detector"
    sharded = settings_for(streams, redis_url, SHARD_COUNT="3", SHARD_INDEX="2", GROUP="det")
    assert sharded.consumer_group == "det.2of3"
    with pytest.raises(SettingsError, match="SHARD_INDEX 3 must be below SHARD_COUNT 3"):
        settings_for(streams, redis_url, SHARD_COUNT="3", SHARD_INDEX="3")


async def test_two_shards_publish_what_one_detector_publishes(
    redis: aioredis.Redis, redis_url: str, streams: Streams
) -> None:
    """Both cascades, every state byte-identical to the single engine's; each shard holds only its assets;
    a malformed entry in the middle is dead-lettered once; the dashboard lists every asset."""
    events = two_cascades()
    shards = [settings_for(streams, redis_url, SHARD_COUNT="2", SHARD_INDEX=str(k)) for k in (0, 1)]
    half = len(events) // 2
    await xadd(redis, streams.events, events[:half])
    await redis.xadd(streams.events, {FIELD: b'{"kind":"liquidation","price":"oops"}'})
    await xadd(redis, streams.events, events[half:])
    clock = Clock()
    async with running(shards[0], redis, clock) as zero, running(shards[1], redis, clock) as one:
        entries = len(events) + 1
        await eventually(lambda: zero.runner.processed + zero.runner.dead >= entries, what="shard 0 read all")
        await eventually(lambda: one.runner.processed + one.runner.dead >= entries, what="shard 1 read all")
        assert set(zero.engine.assets) == {"BTC", "DOGE"}
        assert set(one.engine.assets) == {"ETH", "BNB"}
        # Each watermark moved with every event time, not only its own assets'.
        assert zero.engine.max_ts == one.engine.max_ts == max(e.ts for e in events)
        clock.now = (max(e.ts for e in events) + 10 * MIN) / 1000
        await eventually(lambda: not zero.engine.open_cascades() and not one.engine.open_cascades(), what="closed")
        await eventually(lambda: zero.producer.buffered == one.producer.buffered == 0, what="published")
    states = await cascades(redis, streams.cascades)
    assert {s.base for s in states} == {"BTC", "ETH"}
    assert by_cascade(states) == by_cascade(reference(events, shards[0]))
    assert await redis.xlen(streams.dead) == 1
    meta = await redis.hkeys(f"{shards[0].dash_prefix}assets:meta")
    assert set(meta) == {b"BTC", b"ETH", b"DOGE", b"BNB"}


async def test_a_restarted_shard_reconciles_only_its_own_cascades(
    redis: aioredis.Redis, redis_url: str, streams: Streams
) -> None:
    """Shard 1 stops while both cascades are open and starts again: it adopts nothing of shard 0's, and
    the stream still holds each lifecycle exactly once."""
    events = two_cascades()
    cut = next(i for i, e in enumerate(events) if e.ts >= T0 + 15 * MIN + 45_000)
    shards = [settings_for(streams, redis_url, SHARD_COUNT="2", SHARD_INDEX=str(k)) for k in (0, 1)]
    clock = Clock()
    await xadd(redis, streams.events, events[:cut])
    async with running(shards[0], redis, clock) as zero:
        async with running(shards[1], redis, clock) as one:
            await eventually(lambda: one.runner.processed >= cut, what="shard 1 read the first part")
            await eventually(lambda: one.producer.buffered == 0 and one.published > 0, what="ETH opened")
        await xadd(redis, streams.events, events[cut:])
        async with running(shards[1], redis, clock) as again:
            await eventually(lambda: again.runner.processed >= len(events) - cut, what="shard 1 read the rest")
            await eventually(lambda: zero.runner.processed >= len(events), what="shard 0 read all")
            clock.now = (max(e.ts for e in events) + 10 * MIN) / 1000
            await eventually(lambda: not zero.engine.open_cascades(), what="BTC closed")
            await eventually(lambda: not again.engine.open_cascades(), what="ETH closed")
            await eventually(lambda: zero.producer.buffered == again.producer.buffered == 0, what="published")
            assert set(again.engine.assets) == {"ETH", "BNB"}  # adopting BTC's open cascade would add BTC
    states = await cascades(redis, streams.cascades)
    for base in ("BTC", "ETH"):
        mine = [s for s in states if s.base == base]
        assert [s.seq for s in mine] == list(range(len(mine)))
        assert [s.status for s in mine].count("open") == [s.status for s in mine].count("close") == 1
    assert by_cascade(states) == by_cascade(reference(events, shards[0]))


async def test_each_shard_runs_its_own_group(redis: aioredis.Redis, redis_url: str, streams: Streams) -> None:
    """``GROUP.{index}of{count}`` groups on the events stream, each of which received every entry."""
    events = two_cascades()[:200]
    await xadd(redis, streams.events, events)
    shards = [settings_for(streams, redis_url, SHARD_COUNT="2", SHARD_INDEX=str(k)) for k in (0, 1)]
    clock = Clock()
    async with running(shards[0], redis, clock) as zero, running(shards[1], redis, clock) as one:
        await eventually(lambda: zero.runner.processed == one.runner.processed == len(events), what="read")
        assert zero.processed + one.processed == len(events)
    groups = {g["name"]: g for g in await redis.xinfo_groups(streams.events)}
    assert set(groups) == {b"detector.0of2", b"detector.1of2"}
    assert all(g["pending"] == 0 for g in groups.values())


async def test_switching_to_shards_continues_where_the_single_detector_stopped(
    redis: aioredis.Redis, redis_url: str, streams: Streams
) -> None:
    """A single detector runs into both cascades and stops; two shards take over: their groups start at its
    position, so nothing it published is published again, and the lifecycles complete exactly once."""
    events = two_cascades()
    cut = next(i for i, e in enumerate(events) if e.ts >= T0 + 15 * MIN + 45_000)
    single = settings_for(streams, redis_url)
    shards = [settings_for(streams, redis_url, SHARD_COUNT="2", SHARD_INDEX=str(k)) for k in (0, 1)]
    clock = Clock()
    await xadd(redis, streams.events, events[:cut])
    async with running(single, redis, clock) as det:
        await eventually(lambda: det.processed >= cut, what="single detector read the first part")
        await eventually(lambda: det.producer.buffered == 0 and det.published >= 2, what="both opened")
    await xadd(redis, streams.events, events[cut:])
    async with running(shards[0], redis, clock) as zero, running(shards[1], redis, clock) as one:
        await eventually(lambda: zero.runner.processed == one.runner.processed == len(events) - cut, what="rest read")
        clock.now = (max(e.ts for e in events) + 10 * MIN) / 1000
        await eventually(lambda: not zero.engine.open_cascades() and not one.engine.open_cascades(), what="closed")
        await eventually(lambda: zero.producer.buffered == one.producer.buffered == 0, what="published")
    states = await cascades(redis, streams.cascades)
    assert by_cascade(states) == by_cascade(reference(events, single))
    groups = {g["name"]: g["pending"] for g in await redis.xinfo_groups(streams.events)}
    assert groups == {b"detector": 0, b"detector.0of2": 0, b"detector.1of2": 0}


async def test_a_new_group_inherits_only_from_other_layouts(
    redis: aioredis.Redis, redis_url: str, streams: Streams
) -> None:
    """Rescaling 2 -> 3 shards starts the new groups at the newest old position; a sibling of the same
    layout (starting at the same moment) and an unrelated ``detector.*`` group are never inherited from."""
    await xadd(redis, streams.events, two_cascades()[:10])
    ids = [entry_id for entry_id, _ in await redis.xrange(streams.events)]
    await redis.xgroup_create(streams.events, "detector.audit", id="$")  # someone else's group
    await redis.xgroup_create(streams.events, "detector.0of3", id=ids[2])  # a sibling already reading
    three = [settings_for(streams, redis_url, SHARD_COUNT="3", SHARD_INDEX=str(k)) for k in range(3)]
    assert await inherit_position(redis, three[1]) is None  # neither the sibling nor the audit group
    await redis.xgroup_create(streams.events, "detector.0of2", id=ids[3])
    await redis.xgroup_create(streams.events, "detector.1of2", id=ids[6])
    assert await inherit_position(redis, three[2]) == ids[6]
    assert await inherit_position(redis, three[2]) is None  # exists now
    groups = {g["name"]: g["last-delivered-id"] for g in await redis.xinfo_groups(streams.events)}
    assert groups[b"detector.2of3"] == ids[6]
    assert b"detector.1of3" not in groups  # left to the runner, which starts it at 0
