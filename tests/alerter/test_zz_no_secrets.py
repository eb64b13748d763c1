"""Runs last in this folder: no line logged during the whole alerter test run holds a secret.

Each test already checks its own lines (conftest ``no_secret_in_logs``); this checks the whole capture
once more, including subprocess output, and that the capture really saw the alerter at work.
"""

from __future__ import annotations

import io
import json
import logging

import redis.asyncio as aioredis

from liq_alerter.console import ConsoleSink
from tests.alerter.fake_discord import FakeDiscord
from tests.alerter.fake_telegram import FakeTelegram
from tests.alerter.harness import CAPTURE, SECRETS, RunningAlerter, cascade, env, publish
from tests.conftest import Streams
from tests.waiting import eventually


async def test_failures_do_not_leak_secrets(
    redis: aioredis.Redis, redis_url: str, streams: Streams, discord: FakeDiscord, telegram: FakeTelegram
) -> None:
    """Connection errors, 401s and 404s are logged by the alerter without the token-bearing URLs."""
    start = len(CAPTURE.lines)
    telegram.token = "1:other"  # our token is now wrong: 401, destination disabled
    await discord.close()  # connection refused: retried, then given up
    run = RunningAlerter(env(streams, redis_url, discord.api_base, telegram.api_base, MAX_ATTEMPTS="2"), redis)
    await publish(redis, streams, cascade(0, "high"))
    await eventually(lambda: run.worker("tg").disabled, what="telegram disabled")
    await eventually(lambda: any('"alert_dead_lettered"' in line for line in CAPTURE.lines[start:]), what="dead")
    await run.stop()
    assert logging.getLogger("httpx").level == logging.WARNING  # the alerter quieted it again
    assert CAPTURE.leaks(start) == []


async def test_console_sink_prints_alerts() -> None:
    """The console sink writes one line per post and edit."""
    out = io.StringIO()
    sink = ConsoleSink(out)
    result = await sink.post(cascade(0, "high"))
    await sink.edit(result.message_id, cascade(1, "high"))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[NEW #1]")
    assert lines[1].startswith("[EDIT #1]")


def test_no_secret_in_any_captured_line() -> None:
    """The whole run's capture has the alerter's own lines and none holds a secret."""
    events = set()
    for line in CAPTURE.lines:
        try:
            events.add(json.loads(line).get("event"))
        except (ValueError, AttributeError):
            continue
    assert {"alert_posted", "alert_edited", "destination_disabled"} <= events
    leaked = CAPTURE.leaks()
    assert leaked == [], f"{len(leaked)} lines leak secrets; first: {leaked[0][:300] if leaked else ''}"
    assert all(len(secret) > 20 for secret in SECRETS)
