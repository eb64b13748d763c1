"""Delivery under platform trouble: 429 storms, rate-limit buckets, 5xx, give-up, deleted webhooks."""

from __future__ import annotations

import redis.asyncio as aioredis

from liq_alerter import metrics
from liq_common.codec import FIELD
from tests.alerter.fake_discord import FakeDiscord
from tests.alerter.fake_telegram import FakeTelegram
from tests.alerter.harness import (
    CAPTURE,
    WEBHOOK_ID,
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
from tests.waiting import eventually


async def _lifecycle(redis: aioredis.Redis, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram) -> None:
    """Publish open, growth, escalation and close, waiting for each to show on both platforms."""
    await publish(redis, streams, cascade(0, "high"))
    await eventually(lambda: len(discord.messages) == 1 and len(telegram.messages) == 1, 20, "posts")
    await publish(redis, streams, cascade(1, "high", usd="2000000"))
    await eventually(
        lambda: (
            "$2,000,000.00" in discord_text(next(iter(discord.messages.values())))
            and "$2,000,000.00" in telegram.messages[1].current
        ),
        20,
        "edits",
    )
    await publish(redis, streams, cascade(2, "critical", usd="3000000"))
    await eventually(lambda: len(discord.messages) == 2 and len(telegram.messages) == 2, 20, "critical posts")
    await publish(redis, streams, cascade(3, "critical", status="close", usd="4000000"))
    await eventually(
        lambda: (
            len(discord.messages) == 2
            and "closed" in discord_text(list(discord.messages.values())[1])
            and len(telegram.messages) == 2
            and "closed" in telegram.messages[2].current
        ),
        20,
        "critical post and final edit",
    )


async def test_429_storms_are_ridden_out_without_early_requests(
    redis: aioredis.Redis, redis_url: str, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram
) -> None:
    """Every 429 is waited out (body retry_after and headers); nothing is lost and nothing arrives early."""
    discord.storm, discord.storm_retry_after = 4, 0.3
    telegram.storm, telegram.storm_retry_after = 2, 1
    run = RunningAlerter(env(streams, redis_url, discord.api_base, telegram.api_base, EDIT_INTERVAL="0.1"), redis)
    await _lifecycle(redis, streams, discord, telegram)
    await eventually(lambda: idle(redis, f"{streams.cascades}:alert:", "dc", "tg"), what="no work left")
    await run.stop()
    assert [r.status for r in discord.requests].count(429) == 4
    assert [r.status for r in telegram.requests].count(429) == 2
    assert discord.early == []
    assert telegram.early == []
    for fake, wait in ((discord, 0.3), (telegram, 1.0)):
        for before, after in zip(fake.requests, fake.requests[1:], strict=False):
            if before.status == 429:
                assert after.at - before.at >= wait
    assert_lifecycle(discord_actions(discord))
    assert_lifecycle(telegram_actions(telegram))


async def test_global_discord_429_holds_every_discord_destination(
    redis: aioredis.Redis, redis_url: str, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram
) -> None:
    """A global 429 is honoured and reported; the request is retried after it."""
    discord.storm, discord.storm_retry_after, discord.storm_global = 1, 0.5, True
    run = RunningAlerter(env(streams, redis_url, discord.api_base, telegram.api_base), redis)
    await publish(redis, streams, cascade(0, "high"))
    await eventually(lambda: len(discord.messages) == 1, what="post after the global limit")
    await run.stop()
    first, second = discord.requests
    assert first.status == 429
    assert second.at - first.at >= 0.5
    assert discord.early == []


async def test_rate_limit_headers_pace_requests(
    redis: aioredis.Redis, redis_url: str, streams: Streams, telegram: FakeTelegram
) -> None:
    """With X-RateLimit-Remaining: 0 the next request waits for X-RateLimit-Reset-After: no 429 at all."""
    from tests.alerter.harness import WEBHOOK_TOKEN

    discord = await FakeDiscord(capacity=2, window=0.6).start()
    discord.add_webhook(WEBHOOK_ID, WEBHOOK_TOKEN)
    try:
        run = RunningAlerter(env(streams, redis_url, discord.api_base, telegram.api_base, EDIT_INTERVAL="0"), redis)
        await publish(redis, streams, cascade(0, "high"))
        for seq in range(1, 7):
            await eventually(lambda: len(discord.messages) == 1, what="post")
            await publish(redis, streams, cascade(seq, "high", usd=str(1_000_000 + seq)))
            await eventually(
                lambda s=seq: f"$1,000,00{s}.00" in discord_text(next(iter(discord.messages.values()))),
                what=f"edit {seq}",
            )
        await run.stop()
        statuses = [r.status for r in discord.requests]
        assert 429 not in statuses
        assert len(statuses) >= 5
    finally:
        await discord.close()


async def test_5xx_is_retried_then_given_up_to_the_dead_letter_stream(
    redis: aioredis.Redis, redis_url: str, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram
) -> None:
    """5xx answers are retried with backoff; after MAX_ATTEMPTS the alert is dead-lettered and counted.

    A later state of the cascade is posted once the platform recovers (the failed post left no intent).
    """
    dead = metrics.DEAD.labels("tg", "retry")
    before = dead._value.get()
    telegram.outage_status = 502
    run = RunningAlerter(env(streams, redis_url, discord.api_base, telegram.api_base, MAX_ATTEMPTS="3"), redis)
    await publish(redis, streams, cascade(0, "high"))
    await eventually(lambda: dead._value.get() == before + 1, what="dead letter")
    assert [r.status for r in telegram.requests] == [502, 502, 502]
    entries = await redis.xrange(streams.dead)
    assert len(entries) == 1
    fields = entries[0][1]
    assert fields[b"reason"].startswith(b"alert:tg:retry")
    assert b'"seq":0' in fields[FIELD]
    assert len(discord.messages) == 1  # Discord is unaffected

    telegram.outage_status = 0
    await publish(redis, streams, cascade(1, "high", usd="2000000"))
    await eventually(lambda: len(telegram.messages) == 1, what="post after recovery")
    await run.stop()
    assert "$2,000,000.00" in telegram.messages[1].current


async def test_transient_5xx_then_success_posts_once(
    redis: aioredis.Redis, redis_url: str, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram
) -> None:
    """A post failing with 503 is retried and lands exactly once."""
    discord.outage_status = 503
    run = RunningAlerter(env(streams, redis_url, discord.api_base, telegram.api_base, MAX_ATTEMPTS="50"), redis)
    await publish(redis, streams, cascade(0, "high"))
    await eventually(lambda: len(discord.requests) >= 2, what="retries")
    discord.outage_status = 0
    await eventually(lambda: len(discord.messages) == 1, what="post")
    await eventually(lambda: idle(redis, f"{streams.cascades}:alert:", "dc"), what="recorded")
    await run.stop()
    assert [r.method for r in discord.ok()] == ["POST"]


async def test_deleted_webhook_disables_the_destination_loudly(
    redis: aioredis.Redis, redis_url: str, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram
) -> None:
    """404 Unknown Webhook: the destination stops, /health turns degraded, a metric and an error log say so."""
    discord.deleted.add(WEBHOOK_ID)
    run = RunningAlerter(env(streams, redis_url, discord.api_base, telegram.api_base), redis)
    worker = run.worker("dc")
    await publish(redis, streams, cascade(0, "high"))
    await eventually(lambda: worker.disabled, what="disabled")
    await eventually(lambda: len(telegram.messages) == 1, what="telegram still posts")
    assert run.alerter.health.checks["destination:dc"].ok is False
    assert metrics.DESTINATION_UP.labels("dc")._value.get() == 0
    assert any('"destination_disabled"' in line and '"dc"' in line for line in CAPTURE.lines)
    await publish(redis, streams, cascade(1, "high", usd="2000000"))
    await eventually(lambda: "$2,000,000.00" in telegram.messages[1].current, what="telegram edit")
    await run.stop()
    assert len(discord.requests) == 1  # never used again


async def test_message_deleted_by_a_user_is_not_reposted(
    redis: aioredis.Redis, redis_url: str, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram
) -> None:
    """Editing a deleted message (404 Unknown Message) stops edits for it; no new message at that tier."""
    run = RunningAlerter(env(streams, redis_url, discord.api_base, telegram.api_base), redis)
    await publish(redis, streams, cascade(0, "high"))
    await eventually(lambda: len(discord.messages) == 1, what="post")
    discord.messages.clear()
    telegram.messages.clear()
    await publish(redis, streams, cascade(1, "high", usd="2000000"))
    await eventually(lambda: idle(redis, f"{streams.cascades}:alert:", "dc", "tg"), what="handled")
    await publish(redis, streams, cascade(2, "high", usd="3000000"))
    await eventually(lambda: idle(redis, f"{streams.cascades}:alert:", "dc", "tg"), what="handled")
    await run.stop()
    assert [r.method for r in discord.requests] == ["POST", "PATCH"]
    assert [r.path.rsplit("/", 1)[1] for r in telegram.requests] == ["sendMessage", "editMessageText"]
