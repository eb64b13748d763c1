"""``liq chart``: PNGs of the requested size with real content, and a terminal rendering."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from matplotlib import image

from liq_cli import chart, chart_data, database
from tests.cli.factories import cascade, env_for, liq, run_liq, store
from tests.conftest import Streams

HOUR = 3_600_000


async def seed(url: str) -> None:
    """Two days of BTC liquidations on both sides with moving prices, two cascades, and some ETH."""
    now = int(time.time() * 1000)
    events = [
        liq(
            ("binance", "bybit")[i % 2],
            "BTC",
            ("long", "short")[i % 3 == 0],
            f"{1000 + 137 * i}.25",
            now - i * 20 * 60_000 - 30_000,
            price=str(95_000 + 40 * (i % 50)),
        )
        for i in range(140)
    ]
    events += [liq("bybit", "ETH", "long", "5000", now - i * HOUR, price="3000") for i in range(1, 5)]
    states = [
        cascade("BTC", now - 6 * HOUR, "high", 0.8, "400000"),
        cascade("BTC", now - 60 * HOUR, "critical", 1.3, "900000"),
    ]
    await store(url, events, states)


def check_png(path: Path, width: int, height: int) -> None:
    """``path`` is a ``width`` x ``height`` PNG whose pixels are far from one flat colour."""
    pixels = image.imread(path)
    assert pixels.shape[:2] == (height, width)
    rgb = pixels[..., :3].reshape(-1, 3)
    colours = np.unique((rgb * 255).round().astype(np.uint8), axis=0)
    assert len(colours) > 20, f"only {len(colours)} distinct colours: the chart looks blank"
    background = (rgb > 0.97).all(axis=1).mean()
    assert background < 0.95, f"{background:.1%} of the pixels are white"


async def test_chart_out_writes_a_png_of_the_requested_size(
    redis_url: str, streams: Streams, migrated_url: str, tmp_path: Path
) -> None:
    """liq chart --out writes a PNG of exactly --width x --height pixels that is not blank."""
    await seed(migrated_url)
    out = tmp_path / "btc.png"
    args = ("chart", "--asset", "btc", "--since", "2d", "--out", str(out), "--width", "1000", "--height", "560")
    result = await run_liq(*args, env=env_for(redis_url, streams, migrated_url))
    assert result.code == 0, result.err
    check_png(out, 1000, 560)
    assert "140 events" in result.err


async def test_heatmap_png_and_terminal_renderings(migrated_url: str, tmp_path: Path) -> None:
    """The heatmap PNG has the requested size and content; the terminal side chart and heatmap draw the data."""
    await seed(migrated_url)
    async with await database.connect(migrated_url) as conn:
        heat = await chart_data.load(conn, "BTC", timedelta(days=3), heatmap=True)
        sides = await chart_data.load(conn, "BTC", timedelta(days=2), heatmap=False)
    assert heat.events == 140
    assert sum(map(sum, heat.heat)) == sum(sides.long_usd) + sum(sides.short_usd)  # every event, once

    out = tmp_path / "heat.png"
    chart.to_png(heat, out, heatmap=True, width=900, height=500)
    check_png(out, 900, 500)

    text = chart.to_terminal(sides, heatmap=False, columns=120, rows=30, colour=False)
    assert "BTC liquidations by side" in text
    assert "█" in text  # bars were drawn
    text = chart.to_terminal(heat, heatmap=True, columns=120, rows=30, colour=False)
    assert "BTC USD liquidated per price level" in text
    assert sum(text.count(shade) for shade in "░▒▓█") >= 47  # events in each of ~47 hourly columns
    assert [m.tier for m in sides.cascades] == ["high"]  # the critical one started 60 h ago


async def test_chart_without_data_says_so(redis_url: str, streams: Streams, migrated_url: str, tmp_path: Path) -> None:
    """An asset with no liquidations in the range gives exit status 1 and a one-line reason, no file."""
    out = tmp_path / "never.png"
    result = await run_liq("chart", "--asset", "DOGE", "--out", str(out), env=env_for(redis_url, streams, migrated_url))
    assert result.code == 1
    assert "no liquidations of DOGE" in result.err
    assert not out.exists()
