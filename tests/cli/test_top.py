"""``liq top`` against real Redis state written by the detector's own dashboard writer."""

from __future__ import annotations

import io
import time

import redis.asyncio as aioredis
from rich.console import Console

from liq_cli.dashboard import DashboardReader, DashState
from liq_cli.top import render
from tests.cli.factories import HOUR, MINUTE, cascade, dash_prefix, liq, seed_dashboard
from tests.conftest import Streams


def screen(layout: object, width: int = 200, height: int = 50) -> str:
    """What a terminal of ``width`` x ``height`` shows for ``layout``, as plain text."""
    console = Console(record=True, width=width, height=height, file=io.StringIO(), color_system=None)
    console.print(layout)
    return console.export_text()


def anchor() -> int:
    """Half past the previous hour, plus 30 s: every test event below lands in a known minute and hour."""
    now = int(time.time() * 1000)
    return now - now % HOUR - HOUR // 2 + 30_000


async def test_dashboard_shows_windows_split_exchanges_assets_large_cascades_and_levels(
    redis: aioredis.Redis, streams: Streams
) -> None:
    """Totals per window, side and exchange shares, top assets, large liquidations, cascades and levels."""
    now = anchor()
    this_min, prefix = now - 30_000, dash_prefix(streams)
    events = [
        liq("binance", "BTC", "long", "1200000.50", this_min + 1_000, price="100050"),
        liq("bybit", "BTC", "short", "300000.25", this_min + 2_000, price="100120"),
        liq("bybit", "ETH", "long", "50000", this_min + 3_000, price="3000"),
        liq("bybit", "BTC", "long", "100000", this_min - 3 * MINUTE, price="100055"),
        liq("binance", "SOL", "short", "20000", this_min - 30 * MINUTE, price="150"),
        liq("bybit", "SOL", "short", "999", now - 2 * 3_600_000, price="150"),  # outside the hour
    ]
    await seed_dashboard(redis, prefix, events, [cascade("BTC", this_min - 40_000, "high", 0.83, "1600000.75")])

    state = await DashboardReader(redis, prefix).read(now_ms=now)
    text = screen(render(state, prefix))

    # Binance contributed, so every total is a lower bound: "at least".
    assert "last 1m: at least $1,550,000.75 (3 events)" in text
    assert "last 5m: at least $1,650,000.75 (4 events)" in text
    assert "last 1h: at least $1,670,000.75 (5 events)" in text
    # 1h split: longs 1,350,000.50 of 1,670,000.75 = 80.84%; binance 1,220,000.50 = 73.05%.
    assert "longs 80.84%" in text
    assert "shorts 19.16%" in text
    assert "binance 73.05%" in text
    assert "bybit 26.95%" in text
    # Top assets ordered by 1h USD, with per-window cells.
    assets = text.split("top assets")[1].split("latest large")[0]
    cells = [line.split("│")[1].split() for line in assets.splitlines()[2:] if line.count("│") >= 2]
    assert [row[:4] for row in cells if row][:3] == [
        ["BTC", "≥$1,500,000.75", "≥$1,600,000.75", "≥$1,600,000.75"],
        ["ETH", "$50,000.00", "$50,000.00", "$50,000.00"],
        ["SOL", "-", "-", "≥$20,000.00"],
    ]
    # Large liquidations: the two >= $100k BTC ones, newest first, exact dollars.
    assert text.index("$300,000.25") < text.index("$1,200,000.50")
    assert "$50,000.00" not in text.split("latest large liquidations")[1].split("price-level")[0]
    # The open cascade with its tier and score, USD as a lower bound.
    assert "high" in text
    assert "0.83" in text
    assert "≥$1,600,000.75" in text
    # Price levels of the top asset (BTC): bucket $100 at 100k, the 100,000 level holds $1,300,000.50.
    assert "BTC · bucket 100" in text
    assert "100,000" in text
    assert "$1,300,000.50" in text
    assert "$300,000.25" in text.split("price-level clusters")[1]


async def test_dashboard_without_data_says_how_to_get_some(redis: aioredis.Redis, streams: Streams) -> None:
    """With no detector keys the screen says there is no data and names make run / make demo."""
    prefix = dash_prefix(streams)
    state = await DashboardReader(redis, prefix).read()
    text = screen(render(state, prefix), height=20)
    assert "No liquidation data yet" in text
    assert "make run" in text
    assert "make demo" in text
    assert prefix in text


async def test_old_data_is_shown_up_to_its_newest_event(redis: aioredis.Redis, streams: Streams) -> None:
    """A replay of events older than an hour is shown relative to its newest event, and says so."""
    prefix = dash_prefix(streams)
    old = anchor() - 5 * 3_600_000
    await seed_dashboard(redis, prefix, [liq("bybit", "ETH", "short", "12345.675", old)])
    state = await DashboardReader(redis, prefix).read()
    text = screen(render(state, prefix))
    assert state.replayed
    assert "newest data is older than 1h" in text
    assert "last 1m: $12,345.68 (1 events)" in text  # bybit only: not a lower bound, rounded to cents


async def test_unreadable_entries_are_counted_and_the_rest_still_shows(redis: aioredis.Redis, streams: Streams) -> None:
    """A corrupt minute field, large entry or cascade is skipped and counted; good data is still shown."""
    now, prefix = anchor(), dash_prefix(streams)
    await seed_dashboard(redis, prefix, [liq("bybit", "ETH", "long", "150000", now - 1_000)])
    minute = now - now % MINUTE
    await redis.hset(f"{prefix}min:{minute}", "BAD", b"{not json")
    await redis.lpush(f"{prefix}large", b'{"kind":"liquidation"}')
    await redis.hset(f"{prefix}cascades", "XRP", b"[]")

    state = await DashboardReader(redis, prefix).read(now_ms=now)
    text = screen(render(state, prefix))
    assert state.bad_entries == 3
    assert "3 unreadable dashboard entries skipped" in text
    assert "last 1m: $150,000.00 (1 events)" in text
    assert "$150,000.00" in text.split("latest large liquidations")[1]


def test_redis_down_is_shown_on_screen() -> None:
    """When Redis cannot be read the screen says so (the loop keeps retrying every second)."""
    text = screen(render(DashState(anchor_ms=0), "liq:dash:", "Redis unreachable at redis://h:1/0: refused"), height=12)
    assert "Redis unreachable at redis://h:1/0: refused" in text
    assert "No liquidation data yet" not in text
