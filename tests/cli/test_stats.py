"""``liq stats`` against rows written by the persister's own writers, checked with independent SQL."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal

import psycopg

from tests.cli.factories import cascade, env_for, liq, run_liq, store
from tests.conftest import Streams

HOUR = 3_600_000


def dataset(now: int) -> tuple[list, list]:
    """Liquidations over the last 30 h (some outside the 24 h range) and cascades of several tiers."""
    events = []
    amounts = ["1234.56", "98765.43", "0.01", "500000", "77777.77", "15000.5", "2500.25"]
    for i in range(60):
        exchange = ("binance", "bybit")[i % 2]
        base = ("BTC", "ETH", "SOL")[i % 3]
        side = ("long", "short")[(i // 2) % 2]
        ts = now - (i * 30 * 60_000) - 60_000  # every 30 min back from one minute ago: 30 h
        events.append(liq(exchange, base, side, amounts[i % len(amounts)], ts, price=str(100 + i)))
    states = [
        cascade("BTC", now - 2 * HOUR, "high", 0.75, "2000000.10"),
        cascade("BTC", now - 5 * HOUR, "critical", 1.2, "9000000", status="close", seq=3),
        cascade("ETH", now - 3 * HOUR, "medium", 0.4, "300000.05"),
        cascade("SOL", now - 26 * HOUR, "low", 0.2, "50000"),  # outside 24 h
    ]
    return events, states


async def expected(url: str, hours: int, base: str | None) -> dict:
    """The same figures, computed here with plain SQL."""
    where = "ts >= now() - make_interval(hours => %s) AND (%s::text IS NULL OR base = %s)"
    args = (hours, base, base)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:

        async def rows(sql: str) -> list:
            return await (await conn.execute(sql, args)).fetchall()

        totals = "count(*), sum(notional_usd), avg(notional_usd), max(notional_usd)"
        [(count, total, avg, biggest)] = await rows(f"SELECT {totals} FROM liquidations WHERE {where}")
        sides = dict(await rows(f"SELECT side, sum(notional_usd) FROM liquidations WHERE {where} GROUP BY 1"))
        exchanges = dict(await rows(f"SELECT exchange, sum(notional_usd) FROM liquidations WHERE {where} GROUP BY 1"))
        tiers = dict(
            await rows(
                "SELECT tier, count(*) FROM cascades WHERE window_start >= now() - make_interval(hours => %s)"
                " AND (%s::text IS NULL OR base = %s) GROUP BY tier"
            )
        )
    return {
        "count": count,
        "usd": total,
        "avg": avg,
        "max": biggest,
        "sides": sides,
        "exchanges": exchanges,
        "tiers": tiers,
    }


def pct(part: Decimal, whole: Decimal) -> float:
    return float(round(part * 100 / whole, 2))


async def test_stats_json_equals_independent_sql(redis_url: str, streams: Streams, migrated_url: str) -> None:
    """Counts, exact USD, side and exchange shares, tiers, average and largest match SQL, overall and per asset."""
    events, states = dataset(int(time.time() * 1000))
    await store(migrated_url, events, states)
    env = env_for(redis_url, streams, migrated_url)

    for asset in (None, "ETH"):
        args = ["stats", "--since", "24h", "--json", *(["--asset", asset.lower()] if asset else [])]
        result = await run_liq(*args, env=env)
        assert result.code == 0, result.err
        got = json.loads(result.out)
        want = await expected(migrated_url, 24, asset)

        assert got["asset"] == asset
        assert got["events"] == want["count"]
        assert 0 < want["count"] < len(events)  # the range really excludes the older rows
        assert Decimal(got["usd"]) == want["usd"]
        assert got["lower_bound"] is True  # Binance rows are throttled
        assert {s: Decimal(v["usd"]) for s, v in got["sides"].items()} == want["sides"]
        assert {s: v["pct"] for s, v in got["sides"].items()} == {
            s: pct(v, want["usd"]) for s, v in want["sides"].items()
        }
        assert {e: Decimal(v["usd"]) for e, v in got["exchanges"].items()} == want["exchanges"]
        assert {e: v["pct"] for e, v in got["exchanges"].items()} == {
            e: pct(v, want["usd"]) for e, v in want["exchanges"].items()
        }
        assert round(Decimal(got["average_usd"]), 10) == round(want["avg"], 10)
        assert Decimal(got["largest"]["usd"]) == want["max"]
        assert {t: c["count"] for t, c in got["cascades"].items() if c["count"]} == want["tiers"]
        assert set(got["cascades"]) == {"low", "medium", "high", "critical"}


async def test_stats_table_writes_usd_with_separators_and_lower_bounds(
    redis_url: str, streams: Streams, migrated_url: str
) -> None:
    """The human output writes every USD as $1,234.56 and throttled totals as 'at least'."""
    events, states = dataset(int(time.time() * 1000))
    await store(migrated_url, events, states)
    result = await run_liq("stats", "--since", "24h", "--asset", "BTC", env=env_for(redis_url, streams, migrated_url))
    assert result.code == 0, result.err
    want = await expected(migrated_url, 24, "BTC")
    assert f"USD: at least ${want['usd']:,.2f}" in result.out
    assert f"Largest liquidation: ${want['max']:,.2f}" in result.out
    amounts = re.findall(r"\$[0-9][0-9,]*(?:\.[0-9]+)?", result.out)
    assert amounts
    assert all(re.fullmatch(r"\$\d{1,3}(,\d{3})*\.\d{2}", a) for a in amounts), amounts
    assert "high" in result.out
    assert "critical" in result.out


async def test_stats_reports_an_unreachable_database_in_one_line(redis_url: str, streams: Streams) -> None:
    """A database that is not there gives exit status 1 and one line saying so."""
    env = env_for(redis_url, streams, "postgresql://postgres@127.0.0.1:1/none")
    result = await run_liq("stats", env=env)
    assert result.code == 1
    assert result.err.startswith("liq stats: database unreachable")
    assert len(result.err.strip().splitlines()) == 1
