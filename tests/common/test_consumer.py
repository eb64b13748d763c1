"""The consumer-group runner against the real Redis: redelivery, dead letters, NOGROUP, ack-after-success."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from liq_common.codec import FIELD, LIQUIDATIONS, to_fields
from liq_common.consumer import ConsumerRunner
from liq_common.events import Liquidation
from tests.conftest import Streams
from tests.waiting import eventually

Batch = list[tuple[bytes, Liquidation]]


def liq(i: int, symbol: str = "BTCUSDT") -> Liquidation:
    return Liquidation(
        event_id=f"id{i}",
        exchange="bybit",
        market="linear",
        symbol=symbol,
        base="BTC",
        quote="USDT",
        side="long",
        price=Decimal("100.5"),
        qty=Decimal(i + 1),
        notional_usd=Decimal("100.5") * (i + 1),
        ts=1_700_000_000_000 + i,
        recv_ts=1_700_000_000_001 + i,
    )


async def add(redis: aioredis.Redis, stream: str, events: list[Liquidation]) -> list[bytes]:
    pipe = redis.pipeline(transaction=False)
    for event in events:
        pipe.xadd(stream, to_fields(event))
    return list(await pipe.execute())


def runner(redis: aioredis.Redis, streams: Streams, handler, consumer: str = "c1", **kw) -> ConsumerRunner[Liquidation]:
    options = dict(batch_size=50, block_ms=100, claim_interval=0.05)
    options.update(kw)
    return ConsumerRunner(
        redis,
        stream=streams.events,
        group="g",
        consumer=consumer,
        codec=LIQUIDATIONS,
        handler=handler,
        dead_stream=streams.dead,
        **options,
    )


class Running:
    """Runs a ConsumerRunner in a task; stop() sets the stop event and awaits a clean return."""

    def __init__(self, r: ConsumerRunner[Liquidation]) -> None:
        self.runner = r
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(r.run(self.stop_event))

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, timeout=10)

    async def kill(self) -> None:
        """Cancel mid-flight, as a crash would: no ack, nothing flushed."""
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


async def test_entries_of_a_killed_consumer_are_redelivered_after_restart(redis, streams) -> None:
    """A consumer killed inside its handler (no ack) gets the same entries again when it restarts."""
    ids = await add(redis, streams.events, [liq(i) for i in range(10)])
    entered = asyncio.Event()

    async def hang(batch: Batch) -> None:
        entered.set()
        await asyncio.Event().wait()

    first = Running(runner(redis, streams, hang))
    await asyncio.wait_for(entered.wait(), 10)
    await first.kill()
    assert (await redis.xpending(streams.events, "g"))["pending"] == 10

    seen: list[bytes] = []

    async def record(batch: Batch) -> None:
        seen.extend(entry_id for entry_id, _ in batch)

    second = Running(runner(redis, streams, record))
    await eventually(lambda: len(seen) >= 10, what="redelivery")
    await second.stop()
    assert seen == ids
    assert (await redis.xpending(streams.events, "g"))["pending"] == 0


async def test_idle_entries_of_a_dead_consumer_are_claimed_by_another(redis, streams) -> None:
    """XAUTOCLAIM moves a dead consumer's pending entries to a live one after claim_idle_ms."""
    await add(redis, streams.events, [liq(i) for i in range(5)])
    entered = asyncio.Event()

    async def hang(batch: Batch) -> None:
        entered.set()
        await asyncio.Event().wait()

    dead = Running(runner(redis, streams, hang, consumer="dead"))
    await asyncio.wait_for(entered.wait(), 10)
    await dead.kill()
    seen: list[str] = []

    async def record(batch: Batch) -> None:
        seen.extend(e.event_id for _, e in batch)

    live = Running(runner(redis, streams, record, consumer="live", claim_idle_ms=50))
    await eventually(lambda: len(seen) == 5, what="claimed entries")
    await live.stop()
    assert sorted(seen) == [f"id{i}" for i in range(5)]


async def test_undecodable_entry_goes_to_dead_letters_and_the_rest_continue(redis, streams) -> None:
    """A broken entry lands in the dead-letter stream with its reason; the good ones around it are handled."""
    await add(redis, streams.events, [liq(0)])
    await redis.xadd(streams.events, {FIELD: b'{"kind":"liquidation","exchange":42}'})
    await redis.xadd(streams.events, {b"junk": b"1"})
    await add(redis, streams.events, [liq(1)])
    seen: list[str] = []

    async def record(batch: Batch) -> None:
        seen.extend(e.event_id for _, e in batch)

    running = Running(runner(redis, streams, record))
    await eventually(lambda: len(seen) == 2, what="good entries")
    await eventually(lambda: running.runner.dead == 2, what="dead letters")
    await running.stop()
    dead = await redis.xrange(streams.dead)
    reasons = [fields[b"reason"].decode() for _, fields in dead]
    assert any("$.exchange" in r for r in reasons)
    assert any("no 'data' field" in r for r in reasons)
    assert dead[0][1][FIELD] == b'{"kind":"liquidation","exchange":42}'
    assert (await redis.xpending(streams.events, "g"))["pending"] == 0


async def test_poison_entry_is_isolated_and_dead_lettered_after_max_attempts(redis, streams) -> None:
    """A handler that always fails on one entry: that entry goes to dead letters, the batch's others are acked."""
    await add(redis, streams.events, [liq(0), liq(1, symbol="POISON"), liq(2)])
    handled: list[str] = []
    attempts = 0

    async def picky(batch: Batch) -> None:
        nonlocal attempts
        if any(e.symbol == "POISON" for _, e in batch):
            attempts += 1
            raise ValueError("cannot handle POISON")
        handled.extend(e.event_id for _, e in batch)

    running = Running(runner(redis, streams, picky, max_attempts=3))
    await eventually(lambda: running.runner.dead == 1, what="poison dead-lettered")
    await running.stop()
    assert sorted(handled) == ["id0", "id2"]
    assert attempts >= 3
    ((_, fields),) = await redis.xrange(streams.dead)
    assert b"after 3 attempts" in fields[b"reason"]
    assert (await redis.xpending(streams.events, "g"))["pending"] == 0


class DatabaseDown(Exception):
    """Stands for a transient dependency failure (e.g. psycopg.OperationalError)."""


async def test_transient_failures_keep_entries_pending_and_never_dead_letter(redis, streams) -> None:
    """While a dependency is down entries stay pending; when it returns they are handled, none dead-lettered."""
    await add(redis, streams.events, [liq(i) for i in range(20)])
    failures = 0
    seen: list[str] = []

    async def flaky(batch: Batch) -> None:
        nonlocal failures
        if failures < 5:
            failures += 1
            pending = await redis.xpending(streams.events, "g")
            assert pending["pending"] >= len(batch)
            raise DatabaseDown("connection refused")
        seen.extend(e.event_id for _, e in batch)

    running = Running(runner(redis, streams, flaky, transient=(DatabaseDown,), max_attempts=2))
    await eventually(lambda: len(seen) == 20, what="recovery")
    await running.stop()
    assert running.runner.dead == 0
    assert sorted(seen) == sorted(f"id{i}" for i in range(20))


async def test_nothing_is_acked_before_the_handler_returns(redis, streams) -> None:
    """During the handler every entry of its batch is still pending; after it returns none is."""
    ids = await add(redis, streams.events, [liq(i) for i in range(30)])
    observed: list[set[bytes]] = []
    batches: list[set[bytes]] = []

    async def check(batch: Batch) -> None:
        detail = await redis.xpending_range(streams.events, "g", min="-", max="+", count=1000)
        observed.append({d["message_id"] for d in detail})
        batches.append({entry_id for entry_id, _ in batch})

    running = Running(runner(redis, streams, check, batch_size=7))
    await eventually(lambda: sum(map(len, batches)) == 30, what="all batches")
    await running.stop()
    for pending, batch in zip(observed, batches, strict=True):
        assert batch <= pending
    assert set().union(*batches) == set(ids)
    assert (await redis.xpending(streams.events, "g"))["pending"] == 0


async def test_group_is_recreated_after_nogroup_and_consumption_continues(redis, streams) -> None:
    """When the stream and group vanish (Redis restarted without persistence) the runner recreates them."""
    seen: list[str] = []

    async def record(batch: Batch) -> None:
        seen.extend(e.event_id for _, e in batch)

    running = Running(runner(redis, streams, record))
    await add(redis, streams.events, [liq(0)])
    await eventually(lambda: seen == ["id0"], what="first entry")
    await redis.delete(streams.events)  # what FLUSHALL or a restart without persistence does to our keys
    await add(redis, streams.events, [liq(1), liq(2)])
    await eventually(lambda: seen == ["id0", "id1", "id2"], what="entries after NOGROUP")
    await running.stop()
    groups = await redis.xinfo_groups(streams.events)
    assert [g["name"] for g in groups] == [b"g"]


async def test_stop_returns_promptly_when_idle(redis, streams) -> None:
    """Setting stop ends an idle runner within about one block interval."""

    async def nothing(batch: Batch) -> None:
        raise AssertionError("no entries were added")

    running = Running(runner(redis, streams, nothing, block_ms=200))
    await eventually(lambda: running.runner.healthy and not running.runner._read_pending, what="reading new")
    await running.stop()
    assert running.task.done()


async def test_a_cancellation_turned_into_a_transient_error_still_ends_the_runner(redis, streams) -> None:
    """A cancelled runner ends even when the cancellation came out of the handler as a retried error.

    Libraries can consume a cancellation and raise something else (seen: a runner cancelled in a Redis
    read kept polling forever, so a service never exited after its drain timeout). The runner must not
    retry forever in a task that was asked to cancel.
    """
    await add(redis, streams.events, [liq(0)])
    handled = asyncio.Event()

    async def converts_cancellation(batch: Batch) -> None:
        handled.set()
        try:
            await asyncio.sleep(3600)  # cancelled here
        except asyncio.CancelledError:
            raise TimeoutError("converted") from None  # what a misbehaving library does

    task = asyncio.create_task(
        runner(redis, streams, converts_cancellation, transient=(TimeoutError,)).run(asyncio.Event())
    )
    await asyncio.wait_for(handled.wait(), timeout=10)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)
    assert done, "the runner kept retrying after being cancelled"
    assert task.cancelled()
