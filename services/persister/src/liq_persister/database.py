"""Connections to PostgreSQL that survive outages, and the one place database errors are classified.

Every batch runs in :meth:`Database.transaction`. Errors are sorted in two kinds:

* the data's fault (SQLSTATE class 22 "data exception" or 23 "integrity constraint violation"): raised
  unchanged, so the consumer runner isolates the entry and eventually dead-letters it;
* anything else (connection refused or lost, server shutting down, timeout, missing privilege or table):
  the database is unusable right now. The connection is dropped and :class:`DatabaseUnavailable` is
  raised; the runner treats it as transient, keeps the batch pending and retries with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import psycopg
import structlog

from liq_common.observability import Health
from liq_persister import metrics

log = structlog.get_logger(__name__)

POISON_ERRORS = (psycopg.DataError, psycopg.IntegrityError)
"""Errors caused by the rows themselves: retrying cannot help, the entry must be isolated."""

OnConnect = Callable[[psycopg.AsyncConnection[tuple[object, ...]]], Awaitable[None]]


class DatabaseUnavailable(Exception):
    """The database cannot be used right now (down, unreachable, too slow, or refusing for lack of rights)."""


class DatabaseStatus:
    """Health check ``database`` and gauge ``liq_persister_db_up``, combined over several connections."""

    def __init__(self, health: Health) -> None:
        self.health = health
        self._down: dict[str, str] = {}
        self.health.set("database", False, "not connected yet")

    def report(self, name: str, ok: bool, detail: str = "") -> None:
        """Record the outcome of the last operation of connection ``name``."""
        if ok:
            self._down.pop(name, None)
        else:
            self._down[name] = detail
        healthy = not self._down
        self.health.set("database", healthy, "; ".join(f"{k}: {v}" for k, v in sorted(self._down.items())))
        metrics.DB_UP.set(1 if healthy else 0)


class Database:
    """One lazily (re)connected autocommit connection, used by one task at a time.

    Args:
        url: libpq connection string.
        name: Label in logs and in the ``database`` health detail.
        status: Shared health reporter.
        timeout: Seconds a connection attempt or one transaction may take.
        on_connect: Called on every new connection (e.g. to create the TEMP stage table).
    """

    def __init__(
        self, url: str, name: str, status: DatabaseStatus, timeout: float, on_connect: OnConnect | None = None
    ) -> None:
        self.url = url
        self.name = name
        self.status = status
        self.timeout = timeout
        self.on_connect = on_connect
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._log = log.bind(connection=name)

    async def _connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            conn = await connect(self.url, self.timeout, application_name=f"liq-persister/{self.name}")
            try:
                if self.on_connect is not None:
                    await self.on_connect(conn)
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
            self._log.info("database_connected")
        return self._conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[tuple[object, ...]]]:
        """A connection inside ``BEGIN ... COMMIT``; committed when the block exits without error.

        Raises:
            DatabaseUnavailable: Not the data's fault; the connection was dropped.
            psycopg.DataError, psycopg.IntegrityError: The rows were rejected; the connection is kept.
        """
        try:
            async with asyncio.timeout(self.timeout):
                conn = await self._connection()
                async with conn.transaction():
                    yield conn
        except POISON_ERRORS:
            metrics.DB_ERRORS.labels("data").inc()
            self.status.report(self.name, True)
            raise
        except (psycopg.Error, OSError, TimeoutError) as exc:
            metrics.DB_ERRORS.labels("unavailable").inc()
            detail = f"{type(exc).__name__}: {str(exc).strip() or 'timed out'}"
            self._log.warning("database_unavailable", error=detail)
            self.status.report(self.name, False, detail)
            await self.close()
            raise DatabaseUnavailable(detail) from exc
        self.status.report(self.name, True)

    async def close(self) -> None:
        """Close the connection (a new one is opened on next use)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()


async def connect(url: str, seconds: float, application_name: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    """Open an autocommit connection (connect timeout ``seconds``) with TCP keepalives, so a dead peer is noticed."""
    return await psycopg.AsyncConnection.connect(
        url,
        autocommit=True,
        connect_timeout=max(1, int(seconds)),
        application_name=application_name,
        keepalives=1,
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
    )


async def watch_database(status: DatabaseStatus, url: str, stop: asyncio.Event, interval: float = 5.0) -> None:
    """Keep the ``database`` check current while idle: ``SELECT 1`` every ``interval`` seconds until stop."""
    db = Database(url, "ping", status, timeout=max(interval, 2.0))
    try:
        while not stop.is_set():
            started = time.monotonic()
            with contextlib.suppress(DatabaseUnavailable):
                async with db.transaction() as conn:
                    await conn.execute(b"SELECT 1")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, interval - (time.monotonic() - started)))
    finally:
        await db.close()
