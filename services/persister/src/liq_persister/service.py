"""The persister service: schema check at start, then one paced consumer runner per stream.

Flow of one batch: ``XREADGROUP COUNT N`` -> decode -> one transaction -> ``COMMIT`` -> ``XACK``. The
acknowledgement follows the commit (the runner acknowledges only after the handler returned), so a
crash between the two only redelivers rows the unique key then skips. While the database is down the
handler raises :class:`DatabaseUnavailable`, which the runner treats as transient: the batch stays
pending and is retried with capped, jittered backoff until the database is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, TypeVar

import msgspec
import psycopg
import redis.asyncio as aioredis
import structlog

from liq_common.backoff import Backoff
from liq_common.codec import CASCADES, FEED_STATUS, LIQUIDATIONS, EventCodec
from liq_common.consumer import ConsumerRunner, Handler
from liq_common.runtime import ServiceContext
from liq_persister import schema
from liq_persister.database import Database, DatabaseStatus, DatabaseUnavailable, watch_database
from liq_persister.feed import FeedWriter
from liq_persister.settings import Settings
from liq_persister.writer import CascadeWriter, LiquidationWriter, prepare_stage

log = structlog.get_logger(__name__)

T = TypeVar("T", bound=msgspec.Struct)


def retry_backoff() -> Backoff:
    """Backoff of retries while the database is down: full jitter, ceiling doubling from 0.1 s to 5 s."""
    return Backoff(base=0.1, cap=5.0, reset_after=0)


class PacedRunner(ConsumerRunner[T]):
    """A consumer runner that writes at ``batch_size`` rows or every ``flush_s``, whichever comes first.

    ``XREADGROUP COUNT N`` returns at once with whatever is available (up to N). After a full batch the
    next read follows immediately; after a short one it waits until ``flush_s`` after the previous read
    began, so entries accumulate and small batches do not cost one commit each. An entry therefore
    waits at most ``flush_s`` plus one write before it is committed.
    """

    def __init__(self, *args: Any, flush_s: float, stop: asyncio.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.flush_s = flush_s
        self._stop = stop

    async def poll_once(self) -> int:
        """One paced read-and-write round; returns entries read."""
        started = time.monotonic()
        count = await super().poll_once()
        remaining = started + self.flush_s - time.monotonic()
        if 0 < count < self.batch_size and remaining > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=remaining)
        return count


async def prepare_schema(settings: Settings, stop: asyncio.Event, status: DatabaseStatus | None = None) -> bool:
    """Migrate (if enabled) and check the schema, retrying while the database is unreachable.

    Returns False if ``stop`` was set first.

    Raises:
        schema.SchemaError: The schema is behind and this persister may not migrate it.
    """
    backoff = retry_backoff()
    while not stop.is_set():
        try:
            if settings.migrate_on_start:
                await schema.migrate(
                    settings.owner_url, timescaledb=settings.timescaledb, retention_days=settings.retention_days
                )
            await schema.check(settings.database_url.get())
            return True
        except (OSError, TimeoutError, psycopg.OperationalError) as exc:
            log.warning("database_unreachable_at_start", error=str(exc).strip())
            if status is not None:
                status.report("start", False, f"{type(exc).__name__}: {str(exc).strip()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff.next_delay())
    return False


def _runner(
    settings: Settings,
    client: aioredis.Redis,
    stop: asyncio.Event,
    stream: str,
    consumer: str,
    codec: EventCodec[T],
    handler: Handler[T],
) -> PacedRunner[T]:
    return PacedRunner(
        client,
        stream=stream,
        group=settings.group,
        consumer=consumer,
        codec=codec,
        handler=handler,
        dead_stream=settings.dead_stream,
        transient=(DatabaseUnavailable,),
        batch_size=settings.batch_rows,
        dead_maxlen=settings.stream_maxlen,
        backoff=retry_backoff(),
        flush_s=settings.flush_ms / 1000,
        stop=stop,
    )


async def run(settings: Settings, ctx: ServiceContext, client: aioredis.Redis) -> None:
    """The service body: runs until ``ctx.stop``, then finishes and acknowledges the batches in hand.

    ``client`` is the service's Redis client (bytes replies); its owner watches its health and closes it.

    Liquidations are consumed by ``settings.writers`` runners (consumers ``<consumer>-0``, ``-1``, ...),
    each with its own connection, so one decodes while another waits for PostgreSQL; cascades by one, and
    the feed-status stream by one (lifecycle events and outage gaps).
    """
    status = DatabaseStatus(ctx.health)
    if not await prepare_schema(settings, ctx.stop, status):
        return
    status.report("start", True)
    url = settings.database_url.get()
    databases = [
        Database(url, f"liquidations-{i}", status, settings.db_timeout, on_connect=prepare_stage)
        for i in range(settings.writers)
    ]
    cascades_db = Database(url, "cascades", status, settings.db_timeout)
    feed_db = Database(url, "feed", status, settings.db_timeout)
    runners: list[ConsumerRunner[Any]] = [
        _runner(
            settings,
            client,
            ctx.stop,
            settings.events_stream,
            f"{settings.consumer}-{i}",
            LIQUIDATIONS,
            LiquidationWriter(db).handle,
        )
        for i, db in enumerate(databases)
    ]
    runners.append(
        _runner(
            settings,
            client,
            ctx.stop,
            settings.cascades_stream,
            settings.consumer,
            CASCADES,
            CascadeWriter(cascades_db).handle,
        )
    )
    runners.append(
        _runner(
            settings,
            client,
            ctx.stop,
            settings.feed_status_stream,
            settings.consumer,
            FEED_STATUS,
            FeedWriter(feed_db).handle,
        )
    )
    log.info("persister_consuming", consumers={r.consumer: r.stream for r in runners}, group=settings.group)
    try:
        async with asyncio.TaskGroup() as tasks:
            for runner in runners:
                tasks.create_task(runner.run(ctx.stop))
            tasks.create_task(watch_database(status, url, ctx.stop))
    finally:
        for db in [*databases, cascades_db, feed_db]:
            await db.close()
