"""What an alert says, independent of the platform: the cascade's facts as plain strings.

Platforms escape and lay these out (``discord.py``, ``telegram.py``, ``console.py``). Money is USD
with thousands separators and exactly two decimals. When ``lower_bound`` is set (a throttled feed
contributed: Binance publishes at most one liquidation per symbol per second, exchange-feeds.md §1.7),
counts and totals are worded "at least".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

import msgspec

from liq_common.events import Cascade, SideStats, Tier

CENT = Decimal("0.01")
TIER_EMOJI: dict[Tier, str] = {"low": "⚪", "medium": "🟡", "high": "🟠", "critical": "🔴"}
MAX_ITEM = 40
"""Longest single symbol/exchange name shown; longer ones are cut (hostile or broken input)."""


def usd(value: Decimal) -> str:
    """``$1,234,567.80``: thousands separators, exactly two decimals (half-up)."""
    return f"${value.quantize(CENT, rounding=ROUND_HALF_UP):,.2f}"


def number(value: Decimal) -> str:
    """A price as the exchange sent it, without trailing zeros, with thousands separators."""
    return f"{value.normalize():,f}"


def duration(ms: int) -> str:
    """``45s``, ``2m 05s`` or ``1h 02m``."""
    seconds = max(ms, 0) // 1000
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def cut(text: str, limit: int) -> str:
    """``text`` without control characters, cut to ``limit`` characters, ending in ``…`` when cut."""
    text = _CONTROL.sub(" ", text)
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: what Telegram and Discord count (an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def join_limited(items: list[str], limit: int, render: Callable[[str], str] = str) -> str:
    """Render and join ``items`` with ``, `` within ``limit`` UTF-16 units, then ``… (+N more)``.

    Each item is cut to :data:`MAX_ITEM` characters before ``render`` (an escaper) so an escape
    sequence is never split.
    """
    out: list[str] = []
    used = 0
    for i, item in enumerate(items):
        piece = render(cut(item, MAX_ITEM))
        more = f"… (+{len(items) - i} more)"
        sep = 2 if out else 0
        # Keep room for the "more" marker unless this is the last item.
        reserve = 0 if i == len(items) - 1 else utf16_len(more) + 2
        if used + sep + utf16_len(piece) + reserve > limit:
            out.append(more)
            break
        out.append(piece)
        used += sep + utf16_len(piece)
    return ", ".join(out)


class Facts(msgspec.Struct, frozen=True, kw_only=True):
    """The plain-text facts of one cascade state (nothing escaped yet)."""

    base: str
    tier: Tier
    closed: bool
    title: str
    total: str
    count: str
    longs: str
    shorts: str
    price: str
    move: str
    duration: str
    risk: str
    exchanges: list[str]
    symbols: list[str]
    summary: str
    footer: str


def _side(stats: SideStats, total: Decimal, bound: str) -> str:
    share = float(stats.usd / total * 100) if total > 0 else 0.0
    return f"{bound}{stats.count:,} · {bound}{usd(stats.usd)} ({share:.1f}%)"


def _same(text: str) -> str:
    return text


def facts(state: Cascade, render: Callable[[str], str] = _same) -> Facts:
    """The facts shown for ``state``; bounded in length whatever the input.

    ``render`` escapes the input-derived strings embedded in sentences (asset, cascade id) for a
    platform whose other values need no escaping; symbols and exchanges stay raw lists.
    """
    bound = "at least " if state.lower_bound else ""
    base = render(cut(state.base, 24))
    status = "closed" if state.status == "close" else "ongoing"
    long_pct = float(state.long.usd / state.usd * 100) if state.usd > 0 else 0.0
    dominant = f"{long_pct:.0f}% longs" if long_pct >= 50 else f"{100 - long_pct:.0f}% shorts"
    summary = (
        f"{base}: {bound}{usd(state.usd)} liquidated ({bound}{state.count:,} positions, {dominant}) "
        f"on {len(state.exchanges)} exchange{'s' if len(state.exchanges) != 1 else ''} in "
        f"{duration(state.duration_ms)}; price {state.price_move_pct:+.2f}%; risk {state.tier} ({state.score:.2f})"
        + ("." if state.status != "close" else "; cascade over.")
    )
    footer = f"cascade {render(cut(state.cascade_id, 64))} · update {state.seq} · {status}"
    if state.lower_bound:
        footer += " · Binance reports at most one liquidation per symbol per second: totals are lower bounds"
    return Facts(
        base=base,
        tier=state.tier,
        closed=state.status == "close",
        title=f"{TIER_EMOJI[state.tier]} {state.tier.upper()} liquidation cascade: {base} ({status})",
        total=f"{bound}{usd(state.usd)}",
        count=f"{bound}{state.count:,}",
        longs=_side(state.long, state.usd, bound),
        shorts=_side(state.short, state.usd, bound),
        price=f"{number(state.price_first)} → {number(state.price_last)} "
        f"(range {number(state.price_min)} – {number(state.price_max)})",
        move=f"{state.price_move_pct:+.2f}%",
        duration=duration(state.duration_ms),
        risk=f"{state.score:.2f} ({state.tier})",
        exchanges=list(state.exchanges),
        symbols=list(state.symbols),
        summary=summary,
        footer=footer,
    )
