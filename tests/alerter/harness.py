"""Shared pieces of the alerter tests: secrets, cascade states, settings, an in-process alerter."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from liq_alerter.destinations import parse_destinations
from liq_alerter.service import Alerter
from liq_alerter.settings import Settings
from liq_common.codec import to_fields
from liq_common.events import Cascade, RiskFactors, SideStats, Tier
from liq_common.settings import load_settings
from liq_common.streams import connect_redis
from tests.conftest import Streams

# Distinctive secrets: the log checks look for them (and their halves) in every captured line.
WEBHOOK_ID = "112233445566778899"
WEBHOOK_TOKEN = f"whtok-{uuid.uuid4().hex}{uuid.uuid4().hex}"
BOT_TOKEN = f"7654321:AAH{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"
CHAT_ID = "-1001234567890"
SECRETS = (WEBHOOK_TOKEN, BOT_TOKEN, BOT_TOKEN.split(":", 1)[1])

SCORES: dict[Tier, float] = {"low": 0.1, "medium": 0.4, "high": 0.7, "critical": 1.2}


def cascade(
    seq: int,
    tier: Tier,
    *,
    status: str | None = None,
    usd: str = "1000000",
    count: int = 10,
    base: str = "BTC",
    symbols: list[str] | None = None,
    cascade_id: str = "BTC-1700000000000",
    lower_bound: bool = False,
) -> Cascade:
    """A cascade state; ``usd`` is split 70/30 between longs and shorts."""
    total = Decimal(usd)
    now = int(time.time() * 1000)
    return Cascade(
        cascade_id=cascade_id,
        seq=seq,
        status=status or ("open" if seq == 0 else "update"),  # type: ignore[arg-type]
        base=base,
        window_start=now - 5000 - seq * 1000,
        window_end=now,
        count=count,
        long=SideStats(count=count - count // 3, usd=total * Decimal("0.7")),
        short=SideStats(count=count // 3, usd=total * Decimal("0.3")),
        usd=total,
        by_exchange={"binance": SideStats(count=count, usd=total)},
        symbols=symbols or ["BTCUSDT", "BTCUSD_PERP"],
        exchanges=["binance", "bybit"],
        price_first=Decimal("60000.5"),
        price_last=Decimal("58000"),
        price_min=Decimal("57900.25"),
        price_max=Decimal("60100"),
        price_move_pct=-3.33,
        duration_ms=5000 + seq * 1000,
        score=SCORES[tier],
        factors=RiskFactors(size=SCORES[tier]),
        tier=tier,
        lower_bound=lower_bound,
        emitted_ts=now,
    )


async def publish(redis: aioredis.Redis, streams: Streams, *states: Cascade) -> None:
    pipe = redis.pipeline(transaction=False)
    for state in states:
        pipe.xadd(streams.cascades, to_fields(state))
    await pipe.execute()


def destinations_json(discord_base: bool = True, telegram: bool = True, **extra: Any) -> str:
    items: list[dict[str, Any]] = []
    if discord_base:
        items.append(
            {
                "kind": "discord",
                "name": "dc",
                "min_interval": 0.05,
                "webhook_url": f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}",
                **extra,
            }
        )
    if telegram:
        items.append(
            {
                "kind": "telegram",
                "name": "tg",
                "bot_token": BOT_TOKEN,
                "chat_id": CHAT_ID,
                "min_interval": 0.05,
                **extra,
            }
        )
    return json.dumps(items)


def env(streams: Streams, redis_url: str, discord_api: str, telegram_api: str, **overrides: str) -> dict[str, str]:
    """Environment of an alerter talking to the fakes, with test-sized intervals."""
    return {
        **streams.env(),
        "REDIS_URL": redis_url,
        "DESTINATIONS": destinations_json(),
        "DISCORD_API_BASE": discord_api,
        "TELEGRAM_API_BASE": telegram_api,
        "EDIT_INTERVAL": "0.3",
        "RETRY_BASE": "0.05",
        "RETRY_CAP": "0.2",
        "MAX_ATTEMPTS": "4",
        "HTTP_TIMEOUT": "3",
        "BLOCK_MS": "100",
        "CONSUMER_NAME": "alerter-test",
        **overrides,
    }


class RunningAlerter:
    """An Alerter in this event loop with its own Redis client, as a process would have.

    ``stop`` is a graceful stop; ``crash`` cancels it mid-flight and drops its connections (a cancelled
    redis-py command may leave its connection out of step, so a crashed alerter's client is never reused).
    """

    def __init__(self, environ: dict[str, str], _redis: aioredis.Redis | None = None) -> None:
        self.settings = load_settings(Settings, environ)
        self.client = connect_redis(self.settings.redis_url)
        self.alerter = Alerter(self.settings, parse_destinations(self.settings.destinations), self.client)
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(self.alerter.run(self.stop_event))

    def worker(self, name: str) -> Any:
        return next(w for w in self.alerter.workers if w.name == name)

    async def stop(self) -> None:
        self.stop_event.set()
        try:
            await asyncio.wait_for(self.task, timeout=10)
        finally:
            await self.client.aclose()

    async def crash(self) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        await self.client.connection_pool.disconnect()
        await self.client.aclose()


class LogCapture:
    """A file-like sink for structlog and a handler for stdlib logging; keeps every line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        if text.strip():
            self.lines.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def handler(self) -> logging.Handler:
        capture = self

        class _Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                capture.write(self.format(record))

        handler = _Handler(logging.DEBUG)
        handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        return handler

    def leaks(self, start: int = 0) -> list[str]:
        return [line for line in self.lines[start:] if any(secret in line for secret in SECRETS)]


CAPTURE = LogCapture()


def discord_actions(fake: Any) -> list[str]:
    """Successful Discord requests as ``P<n>`` (post creating message n) and ``E<n>`` (edit of n)."""
    order = list(fake.messages)
    out: list[str] = []
    posts = 0
    for req in fake.ok():
        if req.method == "POST":
            posts += 1
            out.append(f"P{posts}")
        else:
            out.append(f"E{order.index(req.path.rsplit('/', 1)[1]) + 1}")
    return out


def telegram_actions(fake: Any) -> list[str]:
    """Successful Telegram requests as ``P<n>`` and ``E<n>``."""
    out: list[str] = []
    posts = 0
    for req in fake.ok():
        if req.path.endswith("/sendMessage"):
            posts += 1
            out.append(f"P{posts}")
        else:
            out.append(f"E{req.json()['message_id']}")
    return out


def assert_lifecycle(actions: list[str]) -> None:
    """Exactly: post 1, edits of 1 (at least one), post 2, edits of 2 (at least the final one)."""
    assert actions.count("P1") == 1, actions
    assert actions.count("P2") == 1, actions
    second = actions.index("P2")
    assert actions[0] == "P1", actions
    assert second >= 2, actions
    assert set(actions[1:second]) == {"E1"}, actions
    assert len(actions) > second + 1, actions
    assert set(actions[second + 1 :]) == {"E2"}, actions


def discord_text(message: Any) -> str:
    embed = message.current["embeds"][0]
    parts = [embed["title"], embed["description"], embed["footer"]["text"]]
    parts += [f"{f['name']}: {f['value']}" for f in embed["fields"]]
    return "\n".join(parts)


async def idle(redis: aioredis.Redis, prefix: str, *names: str) -> bool:
    """True when no destination has work left (every due set empty)."""
    for name in names:
        if await redis.zcard(f"{prefix}{name}:due"):
            return False
    return True
