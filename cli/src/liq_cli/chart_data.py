"""The numbers behind ``liq chart``: USD by side over time, cascades, and USD per price bucket over time.

Side series come from ``liquidations_1m`` (persister README: always filter on ``bucket``), re-binned to
a width that gives at most :data:`MAX_BINS` bars; the heatmap reads ``liquidations`` because it needs
prices. Bins are aligned on 2000-01-01 UTC like the 1-minute view, so a bin never straddles a minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from liq_cli.database import Conn

MAX_BINS = 120
"""Most time bins of a chart (bars must stay a few pixels or terminal cells wide)."""
PRICE_BINS = 40
"""Target number of price buckets of the heatmap."""
_WIDTHS = tuple(timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30, 60, 120, 240, 360, 720, 1440, 2880, 10080))

_SIDES = b"""
SELECT date_bin(%(width)s, bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS t, side, sum(usd), sum(count)
FROM liquidations_1m
WHERE bucket >= %(since)s AND bucket < %(until)s AND base = %(base)s
GROUP BY 1, 2
ORDER BY 1
"""
_CASCADES = b"""
SELECT window_start, window_end, tier, score, usd, lower_bound
FROM cascades
WHERE base = %(base)s AND window_start >= %(since)s AND window_start < %(until)s
ORDER BY window_start
"""
_PRICE_RANGE = b"""
SELECT min(price), max(price) FROM liquidations WHERE ts >= %(since)s AND ts < %(until)s AND base = %(base)s
"""
_HEAT = b"""
SELECT date_bin(%(width)s, ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS t,
       floor(price / %(step)s) AS level, sum(notional_usd)
FROM liquidations
WHERE ts >= %(since)s AND ts < %(until)s AND base = %(base)s
GROUP BY 1, 2
"""


@dataclass(frozen=True)
class CascadeMark:
    """One cascade to mark on the chart."""

    start: datetime
    end: datetime
    tier: str
    score: float
    usd: Decimal
    lower_bound: bool


@dataclass
class ChartData:
    """USD liquidated per time bin and side, cascades, and (with ``--heatmap``) USD per price bucket.

    ``times`` are bin starts (UTC); ``long_usd``/``short_usd`` align with them. ``heat[i][j]`` is the USD
    liquidated in time bin ``heat_times[i]`` at prices ``[price_levels[j], price_levels[j] + price_step)``.
    """

    asset: str
    since: datetime
    until: datetime
    width: timedelta
    times: list[datetime] = field(default_factory=list)
    long_usd: list[float] = field(default_factory=list)
    short_usd: list[float] = field(default_factory=list)
    events: int = 0
    cascades: list[CascadeMark] = field(default_factory=list)
    price_step: Decimal = Decimal(0)
    price_levels: list[Decimal] = field(default_factory=list)
    heat_times: list[datetime] = field(default_factory=list)
    heat: list[list[float]] = field(default_factory=list)


def bin_width(span: timedelta) -> timedelta:
    """The smallest standard width that cuts ``span`` into at most :data:`MAX_BINS` bins."""
    for width in _WIDTHS:
        if span / width <= MAX_BINS:
            return width
    return _WIDTHS[-1]


def nice_step(raw: float) -> Decimal:
    """The first 1, 2, 2.5 or 5 times a power of ten that is >= ``raw`` (``raw`` > 0)."""
    exponent = math.floor(math.log10(raw))
    for mantissa in ("1", "2", "2.5", "5", "10"):
        step = Decimal(mantissa).scaleb(exponent)
        if step >= Decimal(str(raw)):
            return _plain(step)
    return _plain(Decimal(10).scaleb(exponent))


def _plain(step: Decimal) -> Decimal:
    """``step`` without exponent notation: 50 rather than 5E+1, 0.25 rather than 2.50E-1."""
    whole = step.to_integral_value()
    return whole.quantize(Decimal(1)) if step == whole else step.normalize()


async def load(conn: Conn, asset: str, since: timedelta, *, heatmap: bool, now: datetime | None = None) -> ChartData:
    """Read the chart's numbers for ``asset`` over ``[now - since, now)``."""
    until = now or datetime.now(UTC)
    width = bin_width(since)
    start = until - since
    data = ChartData(asset=asset.upper(), since=start, until=until, width=width)
    params: dict[str, object] = {"width": width, "since": start, "until": until, "base": data.asset}
    by_time: dict[datetime, list[float]] = {}
    for t, side, amount, count in await (await conn.execute(_SIDES, params)).fetchall():
        assert isinstance(t, datetime)
        slot = by_time.setdefault(t, [0.0, 0.0])
        slot[0 if side == "long" else 1] += float(str(amount))
        data.events += int(str(count))
    data.times = sorted(by_time)
    data.long_usd = [by_time[t][0] for t in data.times]
    data.short_usd = [by_time[t][1] for t in data.times]
    for row in await (await conn.execute(_CASCADES, params)).fetchall():
        first, last, tier, score, amount, lower = row
        assert isinstance(first, datetime)
        assert isinstance(last, datetime)
        data.cascades.append(CascadeMark(first, last, str(tier), float(str(score)), Decimal(str(amount)), bool(lower)))
    if heatmap and data.events:
        await _load_heat(conn, data, params)
    return data


async def _load_heat(conn: Conn, data: ChartData, params: dict[str, object]) -> None:
    low, high = await (await conn.execute(_PRICE_RANGE, params)).fetchone() or (None, None)
    if low is None or high is None:
        return
    lo, hi = Decimal(str(low)), Decimal(str(high))
    # A flat price still gets a visible band: 0.1% of the price, the detector's cluster width.
    spread = float(hi - lo) or float(hi) * 0.001 or 1.0
    step = nice_step(spread / PRICE_BINS)
    params = {**params, "step": step}
    rows = await (await conn.execute(_HEAT, params)).fetchall()
    first_level = int((lo / step).to_integral_value(rounding="ROUND_FLOOR"))
    last_level = int((hi / step).to_integral_value(rounding="ROUND_FLOOR"))
    times = sorted({t for t, _, _ in rows if isinstance(t, datetime)})
    index = {t: i for i, t in enumerate(times)}
    data.price_step = step
    data.price_levels = [step * n for n in range(first_level, last_level + 1)]
    data.heat = [[0.0] * len(data.price_levels) for _ in times]
    for t, level, amount in rows:
        assert isinstance(t, datetime)
        data.heat[index[t]][int(str(level)) - first_level] += float(str(amount))
    data.heat_times = times
