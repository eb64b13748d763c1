"""Fixtures shared by every test: real Redis and PostgreSQL, isolated per test.

Redis: ``REDIS_URL`` or the local server at 127.0.0.1:6379. Each test gets stream names under a unique
prefix (``t:<hex>:``) and its keys are deleted afterwards, so tests never see each other's data and may
run beside other processes using the same server. Never FLUSHALL a shared server.

PostgreSQL: ``DATABASE_URL`` (an admin connection, default the local ``postgres`` database) is used to
create one fresh database per test that asks for ``pg_url``; it is dropped afterwards.

When neither the variable nor a local server is there and Docker is, testcontainers starts one
(fallback only; on CI the servers always run).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis.asyncio as aioredis

from liq_common.streams import connect_redis

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real Redis server."""
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS)
    if _reachable(url, 6379) or os.environ.get("CI"):
        yield url
        return
    from testcontainers.redis import RedisContainer  # fallback where Docker exists

    with RedisContainer("redis:7") as container:
        yield f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """URL of a real PostgreSQL server's admin database (used to create per-test databases)."""
    url = os.environ.get("DATABASE_URL", DEFAULT_PG)
    if _reachable(url, 5432) or os.environ.get("CI"):
        yield url
        return
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("timescale/timescaledb:latest-pg16", driver=None) as container:
        yield container.get_connection_url()


@dataclass(frozen=True)
class Streams:
    """Stream names for one test, under a unique prefix."""

    prefix: str

    @property
    def events(self) -> str:
        return f"{self.prefix}liq:events"

    @property
    def cascades(self) -> str:
        return f"{self.prefix}liq:cascades"

    @property
    def dead(self) -> str:
        return f"{self.prefix}liq:dead"

    @property
    def feed(self) -> str:
        return f"{self.prefix}liq:feed"

    def env(self) -> dict[str, str]:
        """Environment variables pointing a service at these streams."""
        return {
            "EVENTS_STREAM": self.events,
            "CASCADES_STREAM": self.cascades,
            "DEAD_STREAM": self.dead,
            "FEED_STATUS_STREAM": self.feed,
        }


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client of the real Redis (bytes replies)."""
    client = connect_redis(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def streams(redis: aioredis.Redis) -> AsyncIterator[Streams]:
    """Unique stream names for this test; every key under the prefix is deleted afterwards."""
    names = Streams(prefix=f"t:{uuid.uuid4().hex[:12]}:")
    yield names
    keys = [key async for key in redis.scan_iter(match=f"{names.prefix}*", count=1000)]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """URL of a fresh, empty database for this test (dropped afterwards)."""
    import psycopg

    name = f"liq_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(pg_admin_url)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
