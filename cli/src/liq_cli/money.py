"""How money, shares and times are written for people: ``$1,234,567.89``, ``62.5%``, ``3m 05s``.

USD always has thousands separators and exactly two decimals. Totals built from throttled feeds
(Binance publishes at most one liquidation per symbol per second, exchange-feeds.md §1.7) are lower
bounds, so they are written ``at least $X``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

_CENT = Decimal("0.01")


def usd(amount: Decimal | float | int, *, lower_bound: bool = False) -> str:
    """``$1,234.50``; ``at least $1,234.50`` when ``lower_bound``; negative as ``-$5.00``."""
    value = Decimal(str(amount)) if isinstance(amount, float) else Decimal(amount)
    cents = value.quantize(_CENT, rounding=ROUND_HALF_EVEN)
    text = f"-${-cents:,.2f}" if cents < 0 else f"${cents:,.2f}"
    return f"at least {text}" if lower_bound else text


def usd_short(amount: Decimal | float | int) -> str:
    """Compact USD for narrow cells: ``$4.20M``, ``$950.00K``, ``$12.00`` (two decimals always)."""
    value = float(amount)
    for threshold, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= threshold:
            return f"${value / threshold:,.2f}{suffix}"
    return usd(Decimal(str(value)))


def pct(part: Decimal | int, whole: Decimal | int) -> float:
    """``part`` as a percentage of ``whole`` (0.0 when ``whole`` is 0), rounded to 2 decimals."""
    if not whole:
        return 0.0
    return float((Decimal(part) * 100 / Decimal(whole)).quantize(_CENT, rounding=ROUND_HALF_EVEN))


def age(seconds: float) -> str:
    """A duration for people: ``42s``, ``3m 05s``, ``2h 07m``, ``3d 04h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"
