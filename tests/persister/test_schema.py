"""Migrations (versioned, locked, recorded) and the logical schema the dashboards and CLI query."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from liq_common.events import Liquidation
from liq_common.observability import Health
from liq_persister import schema
from liq_persister.database import Database, DatabaseStatus
from liq_persister.writer import LiquidationWriter, prepare_stage
from tests.persister.conftest import scalar
from tests.persister.factories import liquidations

EXPECTED = [(1, "liquidations"), (2, "cascades"), (3, "timeseries.plain"), (4, "grants"), (5, "feed_health")]


async def test_concurrent_migrators_apply_each_version_exactly_once(pg_url):
    """Three persisters migrating the same empty database at once: each file runs once, all succeed."""
    results = await asyncio.gather(*(schema.migrate(pg_url) for _ in range(3)))
    applied = sorted((m.version, m.name) for result in results for m in result)
    assert applied == EXPECTED
    async with await psycopg.AsyncConnection.connect(pg_url) as conn:
        cur = await conn.execute(b"SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
        rows = await cur.fetchall()
    assert [(v, n) for v, n, _ in rows] == EXPECTED
    assert all(isinstance(at, datetime) for _, _, at in rows)
    assert await schema.migrate(pg_url) == []
    await schema.check(pg_url)


async def test_check_refuses_a_schema_behind_the_code(pg_url):
    """A persister that may not migrate refuses to run on an empty or older schema, naming the fix."""
    with pytest.raises(schema.SchemaError, match="version 0, this persister needs 5"):
        await schema.check(pg_url)


async def test_auto_without_timescaledb_records_the_plain_flavour(migrated_url):
    """On plain PostgreSQL the time-series migration is the plain one, recorded by name."""
    assert await schema.flavour_of(migrated_url) == "plain"
    assert await scalar(migrated_url, "SELECT relkind::text FROM pg_class WHERE relname = 'liquidations_1m'") == "v"
    assert (
        await scalar(
            migrated_url, "SELECT count(*) FROM pg_indexes WHERE tablename = 'liquidations' AND indexdef LIKE '%brin%'"
        )
        == 2
    )


async def _write(url: str, events: list[Liquidation]) -> None:
    db = Database(url, "test", DatabaseStatus(Health()), 30.0, on_connect=prepare_stage)
    try:
        await LiquidationWriter(db).write(events)
    finally:
        await db.close()


async def _minute_rows(url: str, since: datetime) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            b"SELECT bucket, exchange, base, side, count, usd, min_price, max_price FROM liquidations_1m"
            b" WHERE bucket >= %s ORDER BY bucket, exchange, base, side",
            (since,),
        )
        return await cur.fetchall()


def _expected_minutes(events: list[Liquidation]) -> list[tuple[object, ...]]:
    groups: dict[tuple[object, ...], list[Liquidation]] = defaultdict(list)
    for e in events:
        minute = datetime.fromtimestamp(e.ts // 60_000 * 60, UTC)
        groups[(minute, e.exchange, e.base, e.side)].append(e)
    return [
        (*key, len(g), sum((e.notional_usd for e in g), Decimal(0)), min(e.price for e in g), max(e.price for e in g))
        for key, g in sorted(groups.items())
    ]


async def test_liquidations_1m_aggregates_per_minute_exchange_base_and_side(migrated_url):
    """liquidations_1m returns count, exact USD and min/max price per minute, exchange, base and side."""
    events = liquidations(20_000, seed=11)  # 7 ms apart: 140 s, three minutes
    await _write(migrated_url, events)
    rows = await _minute_rows(migrated_url, datetime(2000, 1, 1, tzinfo=UTC))
    assert rows == _expected_minutes(events)
    later = datetime.fromtimestamp(events[-1].ts // 60_000 * 60, UTC)
    assert await _minute_rows(migrated_url, later) == [r for r in _expected_minutes(events) if r[0] >= later]


async def test_timescaledb_on_follows_what_the_server_has(pg_url):
    """TIMESCALEDB=on is a requirement, never a silent fallback.

    Without the extension (plain PostgreSQL, as on CI): the migration fails and applies nothing. With it:
    hypertable with 1-day chunks, compression after 7 days, a continuous aggregate with a refresh policy,
    optional retention, and the same liquidations_1m query as on plain PostgreSQL.
    """
    available = await scalar(pg_url, "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
    if not available:
        with pytest.raises(psycopg.Error):
            await schema.migrate(pg_url, timescaledb="on")
        assert await schema.current_version(pg_url) == 0
        return
    await schema.migrate(pg_url, timescaledb="on", retention_days=30)
    assert await schema.flavour_of(pg_url) == "timescale"
    assert await scalar(
        pg_url, "SELECT time_interval FROM timescaledb_information.dimensions WHERE hypertable_name = 'liquidations'"
    ) == timedelta(days=1)
    jobs = await scalar(
        pg_url,
        "SELECT array_agg(proc_name::text ORDER BY proc_name) FROM timescaledb_information.jobs"
        " WHERE hypertable_name IN ('liquidations', (SELECT materialization_hypertable_name"
        " FROM timescaledb_information.continuous_aggregates WHERE view_name = 'liquidations_1m'))",
    )
    assert jobs == ["policy_compression", "policy_refresh_continuous_aggregate", "policy_retention"]
    events = liquidations(5000, seed=12)
    await _write(pg_url, events)
    assert await _minute_rows(pg_url, datetime(2000, 1, 1, tzinfo=UTC)) == _expected_minutes(events)
