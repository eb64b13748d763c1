"""``liq chart``: draw :class:`~liq_cli.chart_data.ChartData` to a PNG (matplotlib, Agg) or the terminal (plotext).

The side chart mirrors the two sides around zero: liquidated longs above (red: forced sells), shorts
below (green: forced buys); each cascade is a band from its first to its last liquidation, coloured by
tier. The heatmap shows USD liquidated per price bucket (rows) and time bin (columns).
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import matplotlib.dates as mdates
import plotext
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from liq_cli.chart_data import ChartData
from liq_cli.money import usd_short

TIER_COLOURS = {"low": "#9e9e9e", "medium": "#f5c518", "high": "#ff8c00", "critical": "#d62728"}
LONG_COLOUR = "#d62728"
SHORT_COLOUR = "#2ca02c"


def title(data: ChartData, heatmap: bool) -> str:
    """Chart title: asset, what is shown and the UTC range."""
    what = "USD liquidated per price level" if heatmap else "liquidations by side"
    return f"{data.asset} {what}, {data.since:%Y-%m-%d %H:%M} to {data.until:%Y-%m-%d %H:%M} UTC"


def to_png(data: ChartData, out: Path, *, heatmap: bool, width: int, height: int, dpi: int = 100) -> None:
    """Write the chart to ``out``: exactly ``width`` x ``height`` pixels."""
    # A bare Figure on the Agg canvas: no pyplot, no global figure registry, no display needed.
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if heatmap:
        _heat_axes(fig, ax, data)
    else:
        _side_axes(ax, data)
    ax.set_title(title(data, heatmap), fontsize=10)
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    fig.tight_layout()  # rearranges inside the figure; the canvas size stays width x height
    fig.savefig(out, dpi=dpi, format="png")


def _side_axes(ax: Axes, data: ChartData) -> None:
    bar = data.width.total_seconds() / 86400 * 0.9  # matplotlib date units are days
    xs = [_num(t) for t in data.times]
    ax.bar(xs, data.long_usd, width=bar, align="edge", color=LONG_COLOUR, label="longs liquidated")
    ax.bar(xs, [-v for v in data.short_usd], width=bar, align="edge", color=SHORT_COLOUR, label="shorts liquidated")
    ax.axhline(0, color="black", linewidth=0.5)
    seen: set[str] = set()
    for mark in data.cascades:
        label = None if mark.tier in seen else f"cascade ({mark.tier})"
        seen.add(mark.tier)
        end = max(mark.end, mark.start + data.width / 4)
        ax.axvspan(_num(mark.start), _num(end), color=TIER_COLOURS.get(mark.tier, "#9e9e9e"), alpha=0.3, label=label)
    ax.set_xlim(_num(data.since), _num(data.until))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: usd_short(abs(v))))
    ax.set_ylabel(f"USD per {_width_text(data)} (longs up, shorts down)")
    ax.legend(loc="upper left", fontsize=8)


def _heat_axes(fig: Figure, ax: Axes, data: ChartData) -> None:
    if not data.heat:
        ax.text(0.5, 0.5, "no liquidations", ha="center", va="center", transform=ax.transAxes)
        return
    times = [_num(t) for t in (*data.heat_times, data.heat_times[-1] + data.width)]
    step = float(data.price_step)
    levels = [float(p) for p in data.price_levels] + [float(data.price_levels[-1]) + step]
    grid = [[data.heat[i][j] or float("nan") for i in range(len(data.heat_times))] for j in range(len(levels) - 1)]
    peak = max(max(row) for row in data.heat)
    mesh = ax.pcolormesh(times, levels, grid, cmap="inferno", norm=LogNorm(vmin=max(peak / 1e4, 1.0), vmax=peak))
    fig.colorbar(mesh, ax=ax, format=FuncFormatter(lambda v, _: usd_short(v)), label="USD liquidated")
    for mark in data.cascades:
        ax.axvline(_num(mark.start), color=TIER_COLOURS.get(mark.tier, "#9e9e9e"), linewidth=1)
    ax.set_xlim(_num(data.since), _num(data.until))
    ax.set_ylabel(f"price (bucket {data.price_step:,})")


def _num(ts: datetime) -> float:
    """Matplotlib's date number (days since its epoch) of ``ts``."""
    return float(mdates.date2num(ts))  # type: ignore[no-untyped-call]


def _width_text(data: ChartData) -> str:
    minutes = int(data.width.total_seconds() // 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h"


def to_terminal(data: ChartData, *, heatmap: bool, columns: int, rows: int, colour: bool = True) -> str:
    """The chart as text for a terminal ``columns`` x ``rows`` cells (ANSI colours when ``colour``)."""
    fig = plotext.figure
    fig.clear()
    fig.plot_size(columns, rows)
    if heatmap:
        fig.clear()
        return text_heatmap(data, columns, rows)
    labels = [f"{t:%m-%d %H:%M}" for t in data.times]
    fig.draw(fig.bar(labels, [data.long_usd, data.short_usd]))
    text: str = fig.build().string(colorless=not colour)
    fig.clear()
    # The title goes above the plot, not inside it: plotext drops a title wider than the plot.
    legend = f"USD per {_width_text(data)}: longs liquidated (1st bar of each pair), shorts (2nd)"
    return f"{title(data, False)}\n{legend}\n{text}"


SHADES = " ·░▒▓█"
"""Cell characters from no USD to the peak (log scale), readable without colours."""


def text_heatmap(data: ChartData, columns: int, rows: int) -> str:
    """The heatmap as characters: one row per price band (highest first), one column per time span."""
    if not data.heat:
        return f"{title(data, True)}\n(no liquidations)"
    label_width = max(len(f"{p:,}") for p in data.price_levels) + 1
    bins = max(1, math.ceil((data.until - data.since) / data.width))
    span = max(1, math.ceil(bins / max(1, columns - label_width - 1)))  # time bins per column
    band = max(1, math.ceil(len(data.price_levels) / max(1, rows - 4)))  # price buckets per row
    grid = [[0.0] * math.ceil(bins / span) for _ in range(math.ceil(len(data.price_levels) / band))]
    for i, t in enumerate(data.heat_times):
        col = min(len(grid[0]) - 1, max(0, int((t - data.since) / data.width) // span))
        for k, amount in enumerate(data.heat[i]):
            grid[k // band][col] += amount
    peak = max(max(row) for row in grid)
    low = math.log10(max(peak / 1e4, 1.0))
    top = math.log10(peak) if peak > 1 else 1.0
    lines = [
        title(data, True),
        f"one column = {span} x {_width_text(data)}, one row = {data.price_step * band:,} of price",
    ]
    for r in reversed(range(len(grid))):
        cells = []
        for amount in grid[r]:
            if amount <= 0:
                cells.append(SHADES[0])
                continue
            level = (math.log10(max(amount, 1.0)) - low) / max(top - low, 1e-9)
            cells.append(SHADES[1 + min(len(SHADES) - 2, max(0, int(level * (len(SHADES) - 1))))])
        lines.append(f"{data.price_levels[r * band]:>{label_width},} {''.join(cells)}")
    footer = f"{data.since:%m-%d %H:%M} ... {data.until:%m-%d %H:%M} UTC; darkest cell {usd_short(peak)}"
    lines.append(f"{'':>{label_width}} {footer}")
    return "\n".join(lines)
