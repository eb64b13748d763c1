"""Fixtures of the alerter tests: fake Discord and Telegram servers, and log capture for secret checks.

Every log line of the alerter tests (structlog, stdlib logging at DEBUG, and the output of alerter
subprocesses) goes to ``harness.CAPTURE``; after each test no line may contain a webhook token or a
bot token. httpx is set to DEBUG before each test: the alerter itself must quiet it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
import structlog

from liq_common.logs import configure_logging
from tests.alerter.fake_discord import FakeDiscord
from tests.alerter.fake_telegram import FakeTelegram
from tests.alerter.harness import BOT_TOKEN, CAPTURE, CHAT_ID, WEBHOOK_ID, WEBHOOK_TOKEN, LogCapture


@pytest.fixture(scope="package", autouse=True)
def captured_logs() -> Iterator[LogCapture]:
    """Route structlog (production configuration, JSON) and stdlib logging into CAPTURE."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_structlog = structlog.get_config()
    configure_logging("alerter-tests", "debug", "json")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=CAPTURE))  # type: ignore[arg-type]
    handler = CAPTURE.handler()
    root.handlers[:] = [*saved_handlers, handler]
    root.setLevel(logging.DEBUG)
    yield CAPTURE
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    structlog.configure(**saved_structlog)


@pytest.fixture(autouse=True)
def no_secret_in_logs(captured_logs: LogCapture) -> Iterator[None]:
    """After each test: no captured line holds a secret."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    start = len(captured_logs.lines)
    yield
    leaked = captured_logs.leaks(start)
    assert not leaked, f"secrets in {len(leaked)} log lines, e.g. {leaked[0][:300]}"


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    fake = await FakeDiscord().start()
    fake.add_webhook(WEBHOOK_ID, WEBHOOK_TOKEN)
    yield fake
    await fake.close()


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = await FakeTelegram(BOT_TOKEN, {CHAT_ID}).start()
    yield fake
    await fake.close()
