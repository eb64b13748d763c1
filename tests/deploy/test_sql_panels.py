"""Every SQL query of the dashboards runs against the real schema, as Grafana's read-only role.

A fresh database is migrated by the persister itself (`python -m liq_persister migrate`) on plain
PostgreSQL (TimescaleDB gives ``liquidations_1m`` the same columns), a few liquidations and a cascade
are written, and each panel query, template variable query and annotation query is expanded the way
Grafana does (``grafana_sql``) and executed under ``SET ROLE liq_reader`` (the group of Grafana's
``liq_dashboard`` login). Every query must succeed, return the shape its panel format needs, and find
the seeded rows.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.deploy import artifacts
from tests.deploy.grafana_sql import TimeRange, expand

SQL_TYPES = {"grafana-postgresql-datasource", "postgres"}
READER_ROLE = "liq_reader"
END = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
RANGE = TimeRange(start=END - timedelta(hours=6), end=END)

# (minutes before END, exchange, market, symbol, base, side, price, qty, usd)
LIQUIDATIONS = [
    (30, "binance", "linear", "BTCUSDT", "BTC", "long", "65000.1", "2", "130000.2"),
    (30, "binance", "linear", "BTCUSDT", "BTC", "short", "65100", "1", "65100"),
    (29, "bybit", "linear", "BTCUSDT", "BTC", "long", "64900.5", "3", "194701.5"),
    (28, "bybit", "inverse", "ETHUSD", "ETH", "short", "3400", "10", "34000"),
    (90, "binance", "inverse", "ETHUSD_PERP", "ETH", "long", "3390", "1", "3390"),
]

# (exchange, market, conn, start and end in seconds before now() (None: still down), reason)
FEED_GAPS = [
    ("binance", "linear", "0", 7230, 7200, "connection_lost"),
    ("binance", "linear", "0", 300, None, "silent:no_control_data"),
    ("bybit", "inverse", "1", 25 * 3600, 23 * 3600, "pong_timeout"),  # 1 h of it inside the last 24 h
    ("bybit", "linear", "0", 3 * 86400, 3 * 86400 - 60, "server_closed"),  # too old
]


def _seed(conn: psycopg.Connection[Any]) -> None:
    for i, (minutes, exchange, market, symbol, base, side, price, qty, usd) in enumerate(LIQUIDATIONS):
        ts = END - timedelta(minutes=minutes)
        conn.execute(
            "INSERT INTO liquidations (ts, exchange, event_id, market, symbol, base, quote, side, price, qty,"
            " notional_usd, contracts, throttled, recv_ts, v)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, %s, %s, 1)",
            (ts, exchange, f"{i:032x}", market, symbol, base, "USD", side, price, qty, usd, exchange == "binance", ts),
        )
    start = END - timedelta(minutes=31)
    conn.execute(
        "INSERT INTO cascades (cascade_id, seq, status, base, window_start, window_end, duration_ms, count, usd,"
        " long_count, long_usd, short_count, short_usd, by_exchange, symbols, exchanges, price_first, price_last,"
        " price_min, price_max, price_move_pct, score, tier, factors, lower_bound, coverage, emitted_ts,"
        " closed_at, v)"
        " VALUES ('c1', 3, 'close', 'BTC', %s, %s, 120000, 3, 389801.7, 2, 324701.7, 1, 65100,"
        ' \'{"binance": {"count": 2, "usd": 195100.2}, "bybit": {"count": 1, "usd": 194701.5}}\','
        " ARRAY['BTCUSDT'], ARRAY['binance', 'bybit'], 65000.1, 64900.5, 64900.5, 65100, -0.15, 71.5, 'high',"
        ' \'{"size": 30}\', true, \'{"binance:linear": 1.0, "bybit:linear": 0.75}\', %s, %s, 1)',
        (start, start + timedelta(minutes=2), start + timedelta(minutes=3), start + timedelta(minutes=3)),
    )
    # The feed-gap panels look at the last 24 h before now(), whatever the time range.
    for exchange, market, conn_, started, ended, reason in FEED_GAPS:
        conn.execute(
            "INSERT INTO feed_gaps (exchange, market, conn, start_ts, end_ts, reason)"
            " VALUES (%s, %s, %s, now() - %s::interval, now() - %s::interval, %s)",
            (exchange, market, conn_, timedelta(seconds=started), ended and timedelta(seconds=ended), reason),
        )


def migrate(url: str) -> None:
    """Create the schema with the persister's documented command, `python -m liq_persister migrate`
    (plain PostgreSQL flavour; TimescaleDB gives the same columns)."""
    env = {**os.environ, "DATABASE_URL": url, "MIGRATE_DATABASE_URL": url, "TIMESCALEDB": "off", "LOG_FORMAT": "json"}
    result = subprocess.run(
        [sys.executable, "-m", "liq_persister", "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"liq_persister migrate failed:\n{result.stdout}\n{result.stderr}"


def _variable_values(dashboard: dict[str, Any], conn: psycopg.Connection[Any]) -> dict[str, str | list[str]]:
    """Values Grafana would substitute: every option of custom multi/All variables; the first row of
    query variables (their query runs here too, so it is checked like a panel)."""
    values: dict[str, str | list[str]] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        name, kind = variable["name"], variable["type"]
        if kind == "custom":
            options = [o.strip() for o in str(variable["query"]).split(",") if o.strip()]
            values[name] = options if variable.get("multi") or variable.get("includeAll") else options[0]
        elif kind == "query" and variable["datasource"]["type"] in SQL_TYPES:
            sql = expand(str(variable["query"]), RANGE, values)
            rows = conn.execute(sql).fetchall()
            assert rows, f"variable ${name} finds no value in the seeded data: {sql}"
            values[name] = [str(r[0]) for r in rows] if variable.get("multi") else str(rows[0][0])
        elif kind in ("constant", "textbox"):
            values[name] = str(variable.get("query", ""))
    return values


def _sql_queries() -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    found = []
    for file, dashboard in artifacts.dashboards().items():
        for where, datasource, query in artifacts.queries(dashboard):
            if datasource.get("type") in SQL_TYPES and not where.startswith("variable"):
                found.append((f"{file} {where}", file, dashboard, query))
    return found


def _interval(dashboard: dict[str, Any], where: str) -> str:
    """The panel's minimum interval (Grafana's $__interval is at least that)."""
    for panel in artifacts.panels(dashboard):
        if where.split(" ", 1)[1].startswith(f"panel {panel.get('title')!r}"):
            return str(panel.get("interval") or "1m")
    return "1m"


def test_dashboards_have_sql_panels_for_every_table() -> None:
    """The dashboards query the three schema objects and the feed gaps, and have a database heatmap."""
    sql = " ".join(str(q.get("rawSql", "")) for _, _, _, q in _sql_queries())
    for table in ("liquidations_1m", "liquidations", "cascades", "feed_gaps"):
        assert re.search(rf"\bFROM\s+{table}\b(?!_)", sql), f"no query reads {table}"
    heatmaps = [
        p
        for d in artifacts.dashboards().values()
        for p in artifacts.panels(d)
        if p["type"] == "heatmap" and p["datasource"]["type"] in SQL_TYPES
    ]
    assert heatmaps, "no heatmap panel on the database"


def test_every_sql_query_runs_on_the_migrated_schema_as_the_reader_role(pg_url: str) -> None:
    """Each query, expanded like Grafana, runs as liq_reader and returns the seeded data in the shape
    of its format (time series need a "time" column; annotations "time" and "text")."""
    migrate(pg_url)
    queries = _sql_queries()
    assert len(queries) >= 10
    failures = []
    with psycopg.connect(pg_url, autocommit=True) as conn:
        _seed(conn)
        conn.execute(f"SET ROLE {READER_ROLE}")
        variables = {file: _variable_values(d, conn) for file, d in artifacts.dashboards().items()}
        for where, file, dashboard, query in queries:
            rng = TimeRange(RANGE.start, RANGE.end, _interval(dashboard, where))
            sql = expand(str(query["rawSql"]), rng, variables[file])
            try:
                cursor = conn.execute(sql)
                rows = cursor.fetchall()
            except psycopg.Error as exc:
                failures.append(f"{where}: {type(exc).__name__}: {str(exc).strip()}\n  {sql}")
                continue
            columns = [c.name for c in cursor.description or []]
            if query.get("format") == "time_series" and "time" not in columns:
                failures.append(f"{where}: time series without a time column: {columns}")
            if where.split(" ", 1)[1].startswith("annotation") and not {"time", "text"} <= set(columns):
                failures.append(f"{where}: annotation needs time and text columns: {columns}")
            values = [v for row in rows for column, v in zip(columns, row, strict=True) if column != "time"]
            if all(v is None for v in values):
                failures.append(f"{where}: no data from the seeded rows\n  {sql}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("role", [READER_ROLE])
def test_the_reader_role_cannot_write(pg_url: str, role: str) -> None:
    """The dashboards' role is read-only (the migrations grant SELECT only), so SQL panels cannot
    change data even if edited."""
    migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"SET ROLE {role}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM cascades")


def _panel_sql(file: str, needle: str) -> str:
    """The SQL of the one panel of ``file`` whose query matches ``needle``."""
    found = [
        str(t["rawSql"])
        for p in artifacts.panels(artifacts.dashboards()[file])
        for t in p.get("targets", [])
        if re.search(needle, str(t.get("rawSql", "")))
    ]
    assert len(found) == 1, f"{file}: {len(found)} queries match {needle!r}"
    return found[0]


def test_feed_health_panels_show_the_gaps_of_the_last_24_hours(pg_url: str) -> None:
    """As the reader role: the gap table lists the outages touching the last 24 h, newest first, an
    open one with its age so far; the per-feed summary counts them, sums the seconds down inside the
    24 h (an outage that began earlier counts from the window's start) and the still-open ones; the
    coverage table of the Liquidations dashboard lists the least covered feed of a cascade first."""
    migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        _seed(conn)
        conn.execute(f"SET ROLE {READER_ROLE}")
        gaps = conn.execute(expand(_panel_sql("pipeline-health.json", r"ORDER BY start_ts DESC"), RANGE, {})).fetchall()
        summary = conn.execute(expand(_panel_sql("pipeline-health.json", r"GROUP BY exchange"), RANGE, {})).fetchall()
        coverage_sql = _panel_sql("liquidations.json", r"jsonb_each_text\(c\.coverage\)")
        coverage = conn.execute(expand(coverage_sql, RANGE, {"exchange": ["binance", "bybit"]})).fetchall()

    assert [(r[0], r[1], r[5], r[3] is None) for r in gaps] == [
        ("binance:linear", "0", "silent:no_control_data", True),
        ("binance:linear", "0", "connection_lost", False),
        ("bybit:inverse", "1", "pong_timeout", False),
    ]
    seconds = [float(r[4]) for r in gaps]
    assert 300 <= seconds[0] < 330
    assert seconds[1:] == [30.0, 2 * 3600.0]

    by_feed = {r[0]: (r[1], float(r[2]), r[3]) for r in summary}
    assert set(by_feed) == {"binance:linear", "bybit:inverse"}
    # The window's start is the query's now() - 24 h: seconds after the seed, so a hair under 1 h.
    count, down, still_open = by_feed["bybit:inverse"]
    assert (count, still_open) == (1, 0)
    assert down == pytest.approx(3600.0, abs=10)
    count, down, still_open = by_feed["binance:linear"]
    assert (count, still_open) == (2, 1)
    assert 330 <= down < 360

    assert [(r[1], r[3], r[4]) for r in coverage] == [("BTC", "bybit:linear", 0.75), ("BTC", "binance:linear", 1.0)]
