"""``liq top``: the live terminal dashboard, redrawn every second from the detector's Redis state.

:func:`render` turns a :class:`~liq_cli.dashboard.DashState` into a rich layout (pure, so tests render
it to text); :func:`run` is the loop: read, draw, wait up to a second for ``q``, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import termios
import time
import tty
from collections.abc import Iterator
from datetime import UTC, datetime

from redis.exceptions import RedisError
from rich.console import Console, Group, RenderableType
from rich.layout import Layout
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from liq_cli.dashboard import WINDOWS, DashboardReader, DashState
from liq_cli.money import age, usd
from liq_common.streams import REDIS_DOWN, connect_redis

TIER_STYLES = {"low": "dim", "medium": "yellow", "high": "bold dark_orange", "critical": "bold white on red"}
LARGE_TIERS = ((1_000_000.0, "bold white on red"), (500_000.0, "bold red"), (250_000.0, "yellow"), (0.0, "white"))
"""Colour of a large liquidation by its USD size (first threshold it reaches)."""
NO_DATA = (
    "No liquidation data yet: the detector has written nothing under {prefix}.\n\n"
    "To get some, start the pipeline:\n"
    "  make run     live Binance and Bybit feeds (all five services)\n"
    "  make demo    a simulated market with a cascade episode\n"
    "or replay a recording:  liq replay FILE.jsonl"
)


def window_label(minutes: int) -> str:
    """``1m``, ``5m``, ``1h``."""
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def large_style(amount: float) -> str:
    """Rich style of a large liquidation of ``amount`` USD."""
    return next(style for threshold, style in LARGE_TIERS if amount >= threshold)


def render(state: DashState, prefix: str, error: str | None = None) -> Layout:
    """The whole screen for ``state``; ``error`` (Redis unreachable) replaces the body."""
    layout = Layout(name="root")
    header = _header(state, error)
    footer = Text("q or Ctrl-C to quit · refreshes every second", style="dim")
    if error is not None or state.empty:
        body: RenderableType = Panel(
            Text(error or NO_DATA.format(prefix=prefix)), title="liq top", border_style="red" if error else "cyan"
        )
        layout.split_column(Layout(header, size=4), Layout(body), Layout(footer, size=1))
        return layout
    layout.split_column(Layout(header, size=6), Layout(name="upper"), Layout(name="lower"), Layout(footer, size=1))
    layout["upper"].split_row(Layout(_assets(state)), Layout(_cascades(state)))
    layout["lower"].split_row(Layout(_large(state)), Layout(_levels(state)))
    return layout


def _header(state: DashState, error: str | None) -> Panel:
    stamp = datetime.fromtimestamp(state.anchor_ms / 1000, UTC)
    title = f"liq top · {stamp:%Y-%m-%d %H:%M:%S} UTC"
    if state.replayed:
        title += " · newest data is older than 1h: windows end at the newest event"
    if error is not None or state.empty:
        return Panel(Text("USD liquidated: no data"), title=title, title_align="left")
    lines = Table.grid(padding=(0, 3))
    for _ in range(3):
        lines.add_column()
    totals = [
        f"last {window_label(m)}: {usd(t.usd, lower_bound=state.lower_bound)} ({t.count:,} events)"
        for m, t in zip(WINDOWS, state.windows, strict=True)
    ]
    lines.add_row(*totals)
    whole = sum(t.usd for t in state.sides.values()) or 1.0
    longs, shorts = state.sides.get("long"), state.sides.get("short")
    split = Text("1h split: ")
    split.append(f"longs {100 * (longs.usd if longs else 0.0) / whole:.2f}% ", style="red")
    split.append(f"shorts {100 * (shorts.usd if shorts else 0.0) / whole:.2f}%", style="green")
    total_ex = sum(t.usd for t in state.exchanges.values()) or 1.0
    shares = " · ".join(
        f"{name} {100 * t.usd / total_ex:.2f}%"
        for name, t in sorted(state.exchanges.items(), key=lambda kv: (-kv[1].usd, kv[0]))
    )
    lines.add_row(split, Text(f"1h by exchange: {shares}"), "")
    notes = []
    if state.lower_bound:
        notes.append("Binance publishes at most 1 liquidation per symbol per second: totals are lower bounds")
    if state.bad_entries:
        notes.append(f"{state.bad_entries} unreadable dashboard entries skipped")
    return Panel(Group(lines, Text("; ".join(notes), style="dim")), title=title, title_align="left")


def _assets(state: DashState) -> Panel:
    table = Table(expand=True, box=None)
    table.add_column("asset")
    for minutes in WINDOWS:
        table.add_column(window_label(minutes), justify="right")
    table.add_column("long %", justify="right")
    for row in state.assets[:10]:
        both = row.long_usd + row.short_usd
        mark = "≥" if row.lower_bound else ""
        table.add_row(
            row.base,
            *(f"{mark}{usd(v)}" if v else "-" for v in row.usd),
            f"{100 * row.long_usd / both:.2f}%" if both else "-",
        )
    return Panel(table, title="top assets (1h) · ≥ at least: includes throttled feeds", title_align="left")


def _cascades(state: DashState) -> Panel:
    if not state.cascades:
        return Panel(Text("none open", style="dim"), title="open cascades", title_align="left")
    table = Table(expand=True, box=None)
    for name, justify in (
        ("asset", "left"),
        ("tier", "left"),
        ("score", "right"),
        ("USD", "right"),
        ("long/short", "right"),
        ("move", "right"),
        ("for", "right"),
        ("exchanges", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in state.cascades:
        both = float(c.long.usd + c.short.usd) or 1.0
        table.add_row(
            c.base,
            Text(c.tier, style=TIER_STYLES.get(c.tier, "")),
            f"{c.score:.2f}",
            ("≥" if c.lower_bound else "") + usd(c.usd),
            f"{100 * float(c.long.usd) / both:.0f}/{100 * float(c.short.usd) / both:.0f}",
            f"{c.price_move_pct:+.2f}%",
            age(c.duration_ms / 1000),
            ",".join(c.exchanges),
        )
    return Panel(table, title="open cascades · ≥ at least", title_align="left")


def _large(state: DashState) -> Panel:
    table = Table(expand=True, box=None)
    for name in ("time", "asset", "side", "USD", "price", "exchange"):
        table.add_column(name, justify="right" if name in ("USD", "price") else "left")
    for ev in state.large:
        amount = float(ev.notional_usd)
        style = large_style(amount)
        table.add_row(
            f"{datetime.fromtimestamp(ev.ts / 1000, UTC):%H:%M:%S}",
            ev.base,
            Text(ev.side, style="red" if ev.side == "long" else "green"),
            Text(usd(ev.notional_usd), style=style),
            f"{ev.price:,}",
            f"{ev.exchange} {ev.symbol}",
        )
    empty = Text("none in the last hour", style="dim")
    return Panel(table if state.large else empty, title="latest large liquidations", title_align="left")


def _levels(state: DashState) -> Panel:
    title = "price-level clusters"
    if state.levels_asset:
        title += f" · {state.levels_asset}"
        if state.levels_step is not None:
            title += f" · bucket {state.levels_step:,}"
    if not state.levels:
        return Panel(Text("no levels yet", style="dim"), title=title, title_align="left")
    table = Table(expand=True, box=None)
    table.add_column("price ≥", justify="right")
    table.add_column("USD", justify="right")
    table.add_column("", ratio=1)
    peak = max(amount for _, amount in state.levels) or 1.0
    price = state.last_price
    for level, amount in state.levels:
        near = price is not None and state.levels_step is not None and level <= price < level + state.levels_step
        bar = "█" * max(1, round(20 * amount / peak))
        table.add_row(
            Text(f"{level:,}", style="bold" if near else ""),
            usd(amount),
            Text(bar + (" ◀ price" if near else ""), style="red" if price is not None and level > price else "cyan"),
        )
    return Panel(table, title=title, title_align="left")


@contextlib.contextmanager
def _keys(fd: int | None) -> Iterator[None]:
    """Single-key input on ``fd`` (cbreak: Ctrl-C still signals) for the duration; restored after."""
    if fd is None:
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def run(redis_url: str, prefix: str, *, interval: float = 1.0, console: Console | None = None) -> int:
    """Show the dashboard until ``q``, Ctrl-C or SIGTERM; returns the exit status (0)."""
    out = console or Console()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    fd = sys.stdin.fileno() if sys.stdin.isatty() else None

    def on_key() -> None:
        assert fd is not None
        data = os.read(fd, 64)
        if not data or b"q" in data.lower() or b"\x03" in data:
            stop.set()

    client = connect_redis(redis_url, socket_timeout=5.0)
    reader = DashboardReader(client, prefix)
    try:
        with _keys(fd), Live(console=out, screen=out.is_terminal, auto_refresh=False) as live:
            if fd is not None:
                loop.add_reader(fd, on_key)
            while not stop.is_set():
                try:
                    state = await reader.read()
                    live.update(render(state, prefix), refresh=True)
                except (RedisError, *REDIS_DOWN) as exc:
                    error = f"Redis unreachable at {redis_url}: {exc}\nRetrying every second."
                    live.update(render(DashState(anchor_ms=int(time.time() * 1000)), prefix, error), refresh=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)
    finally:
        if fd is not None:
            loop.remove_reader(fd)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await client.aclose()
    return 0
