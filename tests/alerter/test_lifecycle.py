"""One cascade's alerts end to end against the fakes: post, edits, escalation, close; exactly once."""

from __future__ import annotations

import itertools
import time

import redis.asyncio as aioredis

from liq_alerter import metrics
from tests.alerter.fake_discord import FakeDiscord
from tests.alerter.fake_telegram import FakeTelegram
from tests.alerter.harness import (
    CAPTURE,
    CHAT_ID,
    RunningAlerter,
    assert_lifecycle,
    cascade,
    discord_actions,
    discord_text,
    env,
    idle,
    publish,
    telegram_actions,
)
from tests.conftest import Streams
from tests.waiting import eventually, scaled


def shows(fake_d: FakeDiscord, fake_t: FakeTelegram, index: int, text: str) -> bool:
    """Both platforms' message ``index`` (0-based, creation order) currently contains ``text``."""
    d = list(fake_d.messages.values())
    t = list(fake_t.messages.values())
    return len(d) > index and len(t) > index and text in discord_text(d[index]) and text in t[index].current


async def escalate_and_close(
    redis: aioredis.Redis, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram, run: RunningAlerter, seq: int
) -> None:
    """States ``seq`` (escalation to Critical) and ``seq + 1`` (close); then the alerter has no work left and
    stops, and both platforms show exactly: post 1, its edits, post 2, its edits."""
    await publish(redis, streams, cascade(seq, "critical", usd="5000000"))
    await eventually(lambda: shows(discord, telegram, 1, "CRITICAL"), what="critical posts")
    await publish(redis, streams, cascade(seq + 1, "critical", status="close", usd="6000000"))
    await eventually(lambda: shows(discord, telegram, 1, "closed"), what="final edits")
    await eventually(lambda: idle(redis, f"{streams.cascades}:alert:", "dc", "tg"), what="no work left")
    await run.stop()
    assert_lifecycle(discord_actions(discord))
    assert_lifecycle(telegram_actions(telegram))


async def test_lifecycle_with_redelivery_and_restart(
    redis: aioredis.Redis, redis_url: str, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram
) -> None:
    """Open at High, grow, escalate to Critical, close: one post, edits, one Critical post, a final edit.

    States are redelivered (published twice) and the alerter is restarted in the middle.
    """
    environ = env(streams, redis_url, discord.api_base, telegram.api_base)
    run = RunningAlerter(environ, redis)
    await publish(redis, streams, cascade(0, "high", usd="1000000"))
    await eventually(lambda: shows(discord, telegram, 0, "$1,000,000.00"), what="first posts")
    await publish(redis, streams, cascade(1, "high", usd="2000000"), cascade(2, "high", usd="3000000.5"))
    await eventually(lambda: shows(discord, telegram, 0, "$3,000,000.50"), what="edits of the first posts")
    await run.stop()

    run = RunningAlerter(environ, redis)
    await publish(redis, streams, *(cascade(i, "high", usd="1000000") for i in range(3)))  # redelivered
    await escalate_and_close(redis, streams, discord, telegram, run, seq=3)
    first_d, second_d = discord.messages.values()
    assert "HIGH" in first_d.payload["embeds"][0]["title"]
    assert "$6,000,000.00" in discord_text(second_d)
    assert "cascade over" in discord_text(second_d)
    first_t, second_t = telegram.messages.values()
    assert first_t.chat_id == CHAT_ID
    assert "$6,000,000.00" in second_t.current
    assert "cascade over" in second_t.current
    assert discord.early == []
    assert telegram.early == []


async def test_edits_respect_the_interval(
    redis: aioredis.Redis, redis_url: str, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram
) -> None:
    """A burst of updates gives edits at least EDIT_INTERVAL apart, the last showing the newest state."""
    run = RunningAlerter(env(streams, redis_url, discord.api_base, telegram.api_base, EDIT_INTERVAL="0.4"), redis)
    await publish(redis, streams, cascade(0, "high"))
    await eventually(lambda: len(telegram.messages) == 1 and len(discord.messages) == 1, what="posts")
    for seq in range(1, 16):
        await publish(redis, streams, cascade(seq, "high", usd=str(1_000_000 + seq)))
    await eventually(lambda: shows(discord, telegram, 0, "$1,000,015.00"), what="newest state shown")
    await run.stop()
    for fake in (discord, telegram):
        times = [r.at for r in fake.ok()]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps, "no edits"
        assert min(gaps) >= 0.4, gaps
        assert len(times) < 16  # coalesced, not one edit per update


async def test_below_tier_and_other_assets_are_not_posted(
    redis: aioredis.Redis, redis_url: str, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram
) -> None:
    """A medium cascade is not posted until it reaches High; an asset outside the filter never is."""
    from tests.alerter.harness import destinations_json

    environ = env(
        streams, redis_url, discord.api_base, telegram.api_base, DESTINATIONS=destinations_json(assets=["BTC"])
    )
    prefix = f"{streams.cascades}:alert:"
    run = RunningAlerter(environ, redis)
    await publish(redis, streams, cascade(0, "medium"), cascade(0, "critical", base="ETH", cascade_id="ETH-1"))
    await eventually(lambda: idle(redis, prefix, "dc", "tg"), what="states handled")
    assert discord.requests == []
    assert telegram.requests == []
    await publish(redis, streams, cascade(1, "high"))
    await eventually(lambda: len(discord.messages) == 1 and len(telegram.messages) == 1, what="posts at high")
    await run.stop()


async def test_crash_between_post_and_record_never_doubles(
    redis: aioredis.Redis, redis_url: str, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram
) -> None:
    """A crash while a post is in flight (sent, answer not recorded) never re-posts that tier.

    The post's outcome is unknown: it is counted and logged; the Critical tier still posts later.
    """
    environ = env(streams, redis_url, discord.api_base, telegram.api_base)
    prefix = f"{streams.cascades}:alert:"
    unknown = metrics.UNKNOWN_POSTS.labels("dc")
    before = unknown._value.get()
    discord.hold_methods = {"POST"}
    discord.hold.engage()
    run = RunningAlerter(environ, redis)
    await publish(redis, streams, cascade(0, "high"))
    await eventually(lambda: discord.hold.held == 1, what="post in flight")
    await run.crash()
    discord.hold.release()

    run = RunningAlerter(environ, redis)
    await publish(redis, streams, cascade(1, "high", usd="2000000"))
    await eventually(lambda: idle(redis, prefix, "dc", "tg"), what="update handled")
    assert len(discord.messages) == 1  # the first post reached Discord; it is not sent again
    assert discord.ok("PATCH") == []  # and its id is unknown, so it cannot be edited
    assert unknown._value.get() == before + 1
    await publish(redis, streams, cascade(2, "critical"))
    await eventually(lambda: len(discord.messages) == 2, what="critical post")
    await run.stop()
    assert [r.method for r in discord.requests] == ["POST", "POST"]
    assert any("alert_post_outcome_unknown" in line for line in CAPTURE.lines)


async def test_discord_outage_does_not_delay_telegram(
    redis: aioredis.Redis, redis_url: str, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram
) -> None:
    """With Discord hung, Telegram's post arrives as fast as without it; Discord catches up afterwards."""
    discord.hold.engage()
    run = RunningAlerter(env(streams, redis_url, discord.api_base, telegram.api_base, HTTP_TIMEOUT="20"), redis)
    started = time.monotonic()
    await publish(redis, streams, cascade(0, "high"))
    await eventually(lambda: len(telegram.ok("sendMessage")) == 1, what="telegram post")
    assert telegram.ok("sendMessage")[0].at - started < scaled(2.0)  # Discord would hold it 20 s
    await publish(redis, streams, cascade(1, "high", usd="2000000"))
    await eventually(lambda: "$2,000,000.00" in telegram.messages[1].current, what="telegram edit")
    assert discord.hold.held == 1
    assert discord.ok() == []
    discord.hold.release()
    await eventually(lambda: len(discord.ok("PATCH")) == 1, what="discord catches up")
    await run.stop()
    assert len(discord.messages) == 1


async def test_symbols_full_of_specials_render_correctly_end_to_end(
    redis: aioredis.Redis, redis_url: str, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram
) -> None:
    """HTML and Markdown specials in asset and symbols pass both fakes' parsers and read literally."""
    from tests.alerter.fake_discord import render_markdown
    from tests.alerter.test_content import HOSTILE

    run = RunningAlerter(env(streams, redis_url, discord.api_base, telegram.api_base), redis)
    await publish(redis, streams, cascade(0, "critical", base="<b>&_*", symbols=HOSTILE))
    await eventually(lambda: len(discord.messages) == 1 and len(telegram.messages) == 1, what="posts")
    await run.stop()
    assert [r.status for r in discord.requests + telegram.requests] == [200, 200]
    assert f"Symbols: {', '.join(HOSTILE)}" in telegram.messages[1].current
    assert "<b>&_*" in telegram.messages[1].current
    fields = {f["name"]: f["value"] for f in next(iter(discord.messages.values())).current["embeds"][0]["fields"]}
    assert render_markdown(fields["Symbols"]) == ", ".join(HOSTILE)


async def test_records_lost_by_redis_are_restored_from_memory(
    redis: aioredis.Redis, redis_url: str, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram
) -> None:
    """Redis loses every alerter key mid-cascade (restart without persistence): no tier is posted twice.

    The next state of the cascade edits the message posted before the loss, and the escalation still
    gets its own post: the same lifecycle as without the loss.
    """
    environ = env(streams, redis_url, discord.api_base, telegram.api_base)
    prefix = f"{streams.cascades}:alert:"
    run = RunningAlerter(environ, redis)
    restored = metrics.RECORDS_RESTORED.labels("dc")._value.get()
    await publish(redis, streams, cascade(0, "high", usd="1000000"))
    await eventually(lambda: shows(discord, telegram, 0, "$1,000,000.00"), what="first posts")
    await eventually(lambda: idle(redis, prefix, "dc", "tg"), what="first posts recorded")

    # What a Redis restart without persistence leaves: none of the records, the due sets or the stream.
    lost = [key async for key in redis.scan_iter(match=f"{streams.prefix}*", count=1000)]
    assert any(k.startswith(prefix.encode()) for k in lost)
    await redis.delete(*lost)

    await publish(redis, streams, cascade(1, "high", usd="2000000"))
    await eventually(lambda: shows(discord, telegram, 0, "$2,000,000.00"), what="edits of the first posts")
    await escalate_and_close(redis, streams, discord, telegram, run, seq=2)
    assert metrics.RECORDS_RESTORED.labels("dc")._value.get() > restored
    # and the restored fields went back to Redis: a restarted alerter would find them
    record = await redis.hgetall(f"{prefix}dc:c:BTC-1700000000000")
    assert {b"m:high", b"m:critical"} <= set(record)
