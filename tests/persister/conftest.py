"""Fixtures of the persister tests: a migrated database and the service running in this process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest

from liq_common.observability import Health
from liq_common.runtime import ServiceContext
from liq_common.settings import Secret
from liq_common.streams import connect_redis
from liq_persister import schema, service
from liq_persister.settings import Settings
from tests.conftest import Streams


@pytest.fixture
async def migrated_url(pg_url: str) -> str:
    """A fresh database with every migration applied."""
    await schema.migrate(pg_url)
    return pg_url


async def scalar(url: str, query: str, *params: object) -> Any:
    """First column of the first row of ``query`` on ``url``."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(query.encode(), params or None)
        row = await cur.fetchone()
        return row[0] if row else None


async def row_count(url: str) -> int:
    """Rows in ``liquidations``; 0 while the migrations have not created it yet."""
    try:
        return int(await scalar(url, "SELECT count(*) FROM liquidations"))
    except psycopg.errors.UndefinedTable:
        return 0


def make_settings(redis_url: str, streams: Streams, database_url: str, **overrides: Any) -> Settings:
    """Settings pointing the persister at this test's streams and database."""
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "events_stream": streams.events,
        "cascades_stream": streams.cascades,
        "dead_stream": streams.dead,
        "feed_status_stream": streams.feed,
        "database_url": Secret(database_url),
        "consumer": "test-persister",
        "metrics_port": 0,
        **overrides,
    }
    return Settings(**values)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[ServiceContext]:
    """Run the persister body in this event loop; on exit, stop it the way SIGTERM does and wait."""
    ctx = ServiceContext(service="persister", stop=asyncio.Event(), health=Health(), metrics_port=0)
    client = connect_redis(settings.redis_url)
    task = asyncio.create_task(service.run(settings, ctx, client))
    try:
        yield ctx
    finally:
        ctx.stop.set()
        try:
            await asyncio.wait_for(task, timeout=30)
        finally:
            await client.aclose()


@pytest.fixture
def settings_for(redis_url: str, streams: Streams) -> Callable[..., Settings]:
    """``settings_for(database_url, **overrides)`` -> Settings for this test's streams."""

    def build(database_url: str, **overrides: Any) -> Settings:
        return make_settings(redis_url, streams, database_url, **overrides)

    return build
