"""Versioned SQL migrations shipped in ``liq_persister/migrations``, applied under an advisory lock.

Files are named ``NNNN_name.sql`` (every installation) or ``NNNN_name.plain.sql`` /
``NNNN_name.timescale.sql`` (one of the two, by flavour). Each pending file runs in its own transaction
together with its ``schema_migrations`` row, so a migration is either fully applied and recorded or not
at all. A session advisory lock serialises migrators: a second persister starting at the same moment
waits, then finds nothing left to do.

The flavour is chosen once, when the time-series migration is first applied, and read back from
``schema_migrations`` afterwards: TimescaleDB when ``CREATE EXTENSION timescaledb`` succeeds (setting
``TIMESCALEDB=auto``), plain PostgreSQL otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import psycopg
import structlog

from liq_persister.database import connect

log = structlog.get_logger(__name__)

Flavour = Literal["plain", "timescale"]
LOCK_KEY = int.from_bytes(b"liq_migr", "big") >> 1
"""Advisory lock key (per database) held while migrating."""

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(plain|timescale))?\.sql$")
_BOOTSTRAP = b"""
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class SchemaError(RuntimeError):
    """The schema is missing or older than this persister and cannot be migrated with this connection."""


@dataclass(frozen=True)
class Migration:
    """One SQL file: ``version``, ``name`` (recorded in ``schema_migrations``) and its flavour (None: any)."""

    version: int
    name: str
    flavour: Flavour | None
    sql: bytes


def available() -> list[Migration]:
    """Every migration file in the package, sorted by version."""
    found: list[Migration] = []
    for entry in (resources.files("liq_persister") / "migrations").iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        version, name, flavour = match.groups()
        full = f"{name}.{flavour}" if flavour else name
        found.append(Migration(int(version), full, flavour, entry.read_bytes()))  # type: ignore[arg-type]
    return sorted(found, key=lambda m: (m.version, m.name))


def plan(flavour: Flavour) -> list[Migration]:
    """The migrations of ``flavour``, one per version, in order."""
    chosen = [m for m in available() if m.flavour in (None, flavour)]
    versions = [m.version for m in chosen]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migration versions must be 1..n without gaps or repeats, found {versions}")
    return chosen


def latest_version() -> int:
    """Version of the newest migration (the schema version this persister needs)."""
    return max(m.version for m in available())


async def migrate(url: str, *, timescaledb: str = "auto", retention_days: int = 0) -> list[Migration]:
    """Apply pending migrations on ``url`` under the advisory lock; returns those applied now.

    Args:
        url: Connection string of the owner role.
        timescaledb: ``auto``, ``on`` (fail unless the extension can be created) or ``off``.
        retention_days: TimescaleDB only: drop liquidation chunks older than this; 0 removes the policy.

    Raises:
        psycopg.Error: A migration failed (its transaction was rolled back) or the database is down.
    """
    async with await connect(url, 30.0, "liq-persister/migrate") as conn:
        await conn.execute(b"SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            if await _table_missing(conn):
                await conn.execute(_BOOTSTRAP)
            applied = await _applied(conn)
            flavour = await _flavour(conn, applied, timescaledb)
            done: list[Migration] = []
            for migration in plan(flavour):
                if migration.version in applied:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        b"INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                log.info("migration_applied", version=migration.version, name=migration.name)
                done.append(migration)
            if flavour == "timescale":
                if 0 < retention_days <= 3:
                    # The aggregate refreshes the last 3 days: raw chunks dropped inside that window
                    # would erase those minutes from liquidations_1m too.
                    log.warning("retention_shorter_than_aggregate_refresh_window", retention_days=retention_days)
                await _set_retention(conn, retention_days)
            elif retention_days:
                log.warning("retention_needs_timescaledb", retention_days=retention_days)
            return done
        finally:
            await conn.execute(b"SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


async def current_version(url: str) -> int:
    """The highest applied migration version on ``url`` (0 when none), read with any role."""
    async with await connect(url, 30.0, "liq-persister/check") as conn:
        if await _table_missing(conn):
            return 0
        applied = await _applied(conn)
        return max(applied, default=0)


async def check(url: str) -> None:
    """Raise :class:`SchemaError` unless the schema on ``url`` is at :func:`latest_version`."""
    version = await current_version(url)
    if version < latest_version():
        raise SchemaError(
            f"schema is at version {version}, this persister needs {latest_version()}: "
            "run `liq-persister migrate` with MIGRATE_DATABASE_URL set to the owner role"
        )
    if version > latest_version():
        log.warning("schema_newer_than_code", version=version, known=latest_version())


async def flavour_of(url: str) -> Flavour | None:
    """The flavour recorded in ``schema_migrations`` (None before the time-series migration ran)."""
    async with await connect(url, 30.0, "liq-persister/check") as conn:
        return _recorded_flavour(await _applied(conn))


async def _table_missing(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> bool:
    cur = await conn.execute(b"SELECT to_regclass('schema_migrations') IS NULL")
    row = await cur.fetchone()
    return bool(row and row[0])


async def _applied(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> dict[int, str]:
    cur = await conn.execute(b"SELECT version, name FROM schema_migrations")
    return {int(str(version)): str(name) for version, name in await cur.fetchall()}


def _recorded_flavour(applied: dict[int, str]) -> Flavour | None:
    for name in applied.values():
        if name.endswith(".timescale"):
            return "timescale"
        if name.endswith(".plain"):
            return "plain"
    return None


async def _flavour(conn: psycopg.AsyncConnection[tuple[object, ...]], applied: dict[int, str], mode: str) -> Flavour:
    recorded = _recorded_flavour(applied)
    if recorded is not None:
        return recorded
    if mode == "off":
        return "plain"
    if mode == "auto":
        cur = await conn.execute(b"SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        if await cur.fetchone() is None:
            return "plain"
    try:
        async with conn.transaction():
            await conn.execute(b"CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        if mode == "on":
            raise
        # Installed but unusable (not in shared_preload_libraries, or no right to create it).
        log.warning("timescaledb_unusable_using_plain_postgresql", error=str(exc).strip())
        return "plain"
    return "timescale"


async def _set_retention(conn: psycopg.AsyncConnection[tuple[object, ...]], days: int) -> None:
    try:
        async with conn.transaction():
            await conn.execute(b"SELECT remove_retention_policy('liquidations', if_exists => TRUE)")
            if days > 0:
                await conn.execute(b"SELECT add_retention_policy('liquidations', make_interval(days => %s))", (days,))
    except psycopg.errors.InsufficientPrivilege:
        # A runtime role "migrating" an up-to-date schema at start: only the owner changes policies.
        log.warning("retention_unchanged_not_owner", retention_days=days)
