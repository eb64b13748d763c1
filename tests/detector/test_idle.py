"""The detector's idle loop: event time moves on with the wall clock while the stream is quiet, and only then."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from tests.conftest import Streams
from tests.detector.test_service import MIN, Clock, cascades, crash_events, running, settings_for, xadd
from tests.waiting import eventually


async def test_quiet_market_closes_cascades_when_events_run_ahead_of_the_clock(
    redis: aioredis.Redis, redis_url: str, streams: Streams
) -> None:
    """Events far ahead of this host's clock (a fast replay, ``make demo``): quiet time still closes a cascade.

    Before the fix the idle watermark was only ever "now - lateness", which stayed behind such event times,
    so the cascade stayed open until the host clock caught up with the replay.
    """
    settings = settings_for(streams, redis_url)
    events = crash_events()
    clock = Clock()  # 1970: every event time is decades ahead of it
    await xadd(redis, settings.events_stream, events)
    async with running(settings, client=redis, clock=clock) as det:
        await eventually(lambda: det.processed >= len(events) - det.engine.duplicates, what="events processed")
        assert det.engine.open_cascades()
        clock.now += 10 * MIN / 1000  # ten quiet minutes pass on the host, still decades before the events
        await eventually(lambda: not det.engine.open_cascades(), what="idle close")
        await eventually(lambda: det.producer.buffered == 0, what="published")
    states = await cascades(redis, streams.cascades)
    assert states[-1].status == "close"
    assert states[-1].base == "BTC"


async def test_an_idle_start_does_not_push_the_watermark_past_older_events(
    redis: aioredis.Redis, redis_url: str, streams: Streams
) -> None:
    """The detector idles before its first event while the host clock reads today; the stream then
    delivers older events (a replay, a synthetic market). They are evaluated as they come: the cascade
    opens with no further idle spell.

    Before the fix the first idle round moved the watermark to "now - lateness" although nothing had
    arrived, every later event waited behind it, and with this fixed clock the cascade never opened.
    """
    settings = settings_for(streams, redis_url)  # IDLE_MS=200
    events = crash_events()
    clock = Clock(now=time.time())  # today: months after the events
    async with running(settings, client=redis, clock=clock) as det:
        rounds = det.idle_rounds
        await eventually(lambda: det.idle_rounds >= rounds + 3, what="idle rounds with nothing to advance")
        assert not det.engine.has_work
        await xadd(redis, settings.events_stream, events)
        # published counts the open state when it is produced (an idle close may follow soon after)
        await eventually(lambda: det.published > 0 and det.producer.buffered == 0, what="the cascade opened")
    states = await cascades(redis, streams.cascades)
    assert states[0].status == "open"
    assert states[0].base == "BTC"
