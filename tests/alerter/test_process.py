"""The alerter as a process (``python -m liq_alerter``), killed with SIGKILL in the middle of a cascade."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
import redis.asyncio as aioredis

from tests.alerter.fake_discord import FakeDiscord
from tests.alerter.fake_telegram import FakeTelegram
from tests.alerter.harness import (
    CAPTURE,
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

pytestmark = pytest.mark.e2e


class AlerterProcess:
    """``python -m liq_alerter`` with its output copied, line by line, into the log capture."""

    def __init__(self, environ: dict[str, str]) -> None:
        self.environ = {**os.environ, **environ, "METRICS_PORT": "0", "LOG_FORMAT": "json", "LOG_LEVEL": "debug"}
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> AlerterProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "liq_alerter",
            env=self.environ,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            CAPTURE.write(raw.decode(errors="replace"))

    async def finish(self, sig: int) -> int:
        assert self.proc is not None
        assert self._reader is not None
        self.proc.send_signal(sig)
        status = await asyncio.wait_for(self.proc.wait(), scaled(15))
        await asyncio.wait_for(self._reader, scaled(5))
        return status


def shows(discord: FakeDiscord, telegram: FakeTelegram, index: int, text: str) -> bool:
    d, t = list(discord.messages.values()), list(telegram.messages.values())
    return len(d) > index and len(t) > index and text in discord_text(d[index]) and text in t[index].current


async def test_kill_9_in_the_middle_still_gives_exactly_one_message_per_tier(
    redis: aioredis.Redis, redis_url: str, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram
) -> None:
    """Open High, grow, SIGKILL during an in-flight edit, restart, escalate to Critical, close.

    Both platforms show exactly: one post, edits, one Critical post, a final edit; SIGTERM exits 0.
    """
    environ = env(streams, redis_url, discord.api_base, telegram.api_base)
    first = await AlerterProcess(environ).start()
    try:
        await publish(redis, streams, cascade(0, "high", usd="1000000"))
        await eventually(lambda: shows(discord, telegram, 0, "$1,000,000.00"), 30, "first posts")
        await publish(redis, streams, cascade(1, "high", usd="2000000"), cascade(2, "high", usd="3000000"))
        await eventually(lambda: shows(discord, telegram, 0, "$3,000,000.00"), 20, "edits")

        discord.hold_methods = {"PATCH"}
        discord.hold.engage()
        telegram.hold.engage()
        await publish(redis, streams, cascade(3, "high", usd="3500000"))
        await eventually(lambda: discord.hold.held == 1 and telegram.hold.held == 1, 20, "edits in flight")
    finally:
        assert await first.finish(signal.SIGKILL) == -signal.SIGKILL
    discord.hold.release()
    telegram.hold.release()

    second = await AlerterProcess(environ).start()
    try:
        await publish(redis, streams, cascade(4, "critical", usd="5000000"))
        await eventually(lambda: shows(discord, telegram, 1, "CRITICAL"), 30, "critical posts")
        await publish(redis, streams, cascade(5, "critical", status="close", usd="6000000"))
        await eventually(lambda: shows(discord, telegram, 1, "cascade over"), 20, "final edits")
        await eventually(lambda: idle(redis, f"{streams.cascades}:alert:", "dc", "tg"), 10, "no work left")
    finally:
        status = await second.finish(signal.SIGTERM)
    assert status == 0
    assert_lifecycle(discord_actions(discord))
    assert_lifecycle(telegram_actions(telegram))
    assert "$6,000,000.00" in discord_text(list(discord.messages.values())[1])
    assert "$6,000,000.00" in telegram.messages[2].current
    assert any('"alert_posted"' in line and '"critical"' in line for line in CAPTURE.lines)


async def test_kill_9_while_a_post_is_in_flight_never_doubles_it(
    redis: aioredis.Redis, redis_url: str, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram
) -> None:
    """SIGKILL after Discord received a post but before its answer was recorded: after a restart that tier
    is not posted again (outcome unknown, logged); Critical still posts; Telegram is complete."""
    environ = env(streams, redis_url, discord.api_base, telegram.api_base)
    discord.hold_methods = {"POST"}
    discord.hold.engage()
    first = await AlerterProcess(environ).start()
    try:
        await publish(redis, streams, cascade(0, "high"))
        await eventually(lambda: discord.hold.held == 1, 30, "discord post in flight")
        tg_record = f"{streams.cascades}:alert:tg:c:{cascade(0, 'high').cascade_id}"
        await eventually(lambda: redis.hexists(tg_record, "m:high"), 10, "telegram post recorded")
    finally:
        await first.finish(signal.SIGKILL)
    discord.hold.release()

    second = await AlerterProcess(environ).start()
    try:
        await publish(redis, streams, cascade(1, "high", usd="2000000"))
        await eventually(lambda: "$2,000,000.00" in telegram.messages[1].current, 30, "telegram edit")
        await publish(redis, streams, cascade(2, "critical", usd="3000000"))
        await eventually(lambda: len(discord.messages) == 2 and len(telegram.messages) == 2, 20, "critical posts")
        await eventually(lambda: idle(redis, f"{streams.cascades}:alert:", "dc", "tg"), 10, "no work left")
    finally:
        assert await second.finish(signal.SIGTERM) == 0
    assert [r.method for r in discord.requests] == ["POST", "POST"]
    assert "CRITICAL" in discord_text(list(discord.messages.values())[1])
    assert any('"alert_post_outcome_unknown"' in line and '"dc"' in line for line in CAPTURE.lines)
