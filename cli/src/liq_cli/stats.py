"""``liq stats``: totals of a time range from the database, as a table or JSON.

Everything is computed from the ``liquidations`` and ``cascades`` tables (persister README): exact
NUMERIC sums, so the figures match any SQL a user runs on the same range. The range is
``[now - since, now)``, fixed once at the start so every query sees the same one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
from rich.console import Console
from rich.table import Table

from liq_cli.database import Conn
from liq_cli.money import pct, usd

_GROUPS = b"""
SELECT exchange, side, count(*), coalesce(sum(notional_usd), 0), bool_or(throttled)
FROM liquidations
WHERE ts >= %(since)s AND ts < %(until)s AND (%(base)s::text IS NULL OR base = %(base)s)
GROUP BY exchange, side
"""
_LARGEST = b"""
SELECT ts, exchange, symbol, base, side, price, notional_usd, throttled
FROM liquidations
WHERE ts >= %(since)s AND ts < %(until)s AND (%(base)s::text IS NULL OR base = %(base)s)
ORDER BY notional_usd DESC, ts
LIMIT 1
"""
_TIERS = b"""
SELECT tier, count(*), coalesce(sum(usd), 0)
FROM cascades
WHERE window_start >= %(since)s AND window_start < %(until)s AND (%(base)s::text IS NULL OR base = %(base)s)
GROUP BY tier
"""
TIER_ORDER = ("low", "medium", "high", "critical")


class Share(msgspec.Struct, frozen=True, kw_only=True):
    """Count, exact USD and share of the total USD (percent, 2 decimals) of one side or exchange."""

    count: int
    usd: Decimal
    pct: float
    lower_bound: bool


class Largest(msgspec.Struct, frozen=True, kw_only=True):
    """The single largest liquidation of the range."""

    ts: datetime
    exchange: str
    symbol: str
    base: str
    side: str
    price: Decimal
    usd: Decimal
    throttled: bool


class TierCount(msgspec.Struct, frozen=True, kw_only=True):
    """Cascades of one tier that started in the range, and their USD."""

    count: int
    usd: Decimal


class Stats(msgspec.Struct, frozen=True, kw_only=True):
    """What ``liq stats`` reports. USD values are exact decimals (JSON strings)."""

    since: datetime
    until: datetime
    asset: str | None
    events: int
    usd: Decimal
    lower_bound: bool
    sides: dict[str, Share]
    exchanges: dict[str, Share]
    cascades: dict[str, TierCount]
    average_usd: Decimal | None
    largest: Largest | None


@dataclass
class _Acc:
    count: int = 0
    usd: Decimal = Decimal(0)
    throttled: bool = False

    def add(self, count: int, amount: Decimal, throttled: bool) -> None:
        self.count += count
        self.usd += amount
        self.throttled = self.throttled or throttled


def _shares(groups: dict[str, _Acc], total: Decimal) -> dict[str, Share]:
    """Groups ordered by USD, largest first (name breaks ties)."""
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1].usd, kv[0]))
    return {
        name: Share(count=acc.count, usd=acc.usd, pct=pct(acc.usd, total), lower_bound=acc.throttled)
        for name, acc in ordered
    }


async def compute(conn: Conn, since: timedelta, asset: str | None, now: datetime | None = None) -> Stats:
    """Query the database for the range ``[now - since, now)`` and ``asset`` (None: all assets)."""
    until = now or datetime.now(UTC)
    base = asset.upper() if asset else None
    params = {"since": until - since, "until": until, "base": base}
    rows = await (await conn.execute(_GROUPS, params)).fetchall()
    largest_row = await (await conn.execute(_LARGEST, params)).fetchone()
    tier_rows = await (await conn.execute(_TIERS, params)).fetchall()

    total = _Acc()
    sides = {"long": _Acc(), "short": _Acc()}
    exchanges: dict[str, _Acc] = {}
    for exchange, side, count, amount, throttled in rows:
        values = (int(str(count)), Decimal(str(amount)), bool(throttled))
        total.add(*values)
        sides.setdefault(str(side), _Acc()).add(*values)
        exchanges.setdefault(str(exchange), _Acc()).add(*values)

    cascades = {tier: TierCount(count=0, usd=Decimal(0)) for tier in TIER_ORDER}
    for tier, count, amount in tier_rows:
        cascades[str(tier)] = TierCount(count=int(str(count)), usd=Decimal(str(amount)))
    largest = None
    if largest_row is not None:
        ts, exchange, symbol, row_base, side, price, amount, throttled = largest_row
        assert isinstance(ts, datetime)
        largest = Largest(
            ts=ts,
            exchange=str(exchange),
            symbol=str(symbol),
            base=str(row_base),
            side=str(side),
            price=Decimal(str(price)),
            usd=Decimal(str(amount)),
            throttled=bool(throttled),
        )
    return Stats(
        since=until - since,
        until=until,
        asset=base,
        events=total.count,
        usd=total.usd,
        lower_bound=total.throttled,
        sides=_shares(sides, total.usd),
        exchanges=_shares(exchanges, total.usd),
        cascades=cascades,
        average_usd=total.usd / total.count if total.count else None,
        largest=largest,
    )


_json = msgspec.json.Encoder(decimal_format="string")


def to_json(stats: Stats) -> bytes:
    """``stats`` as one JSON object (USD as exact decimal strings, times as RFC 3339)."""
    return _json.encode(stats)


def render(stats: Stats, console: Console) -> None:
    """Print ``stats`` as tables: USD with separators and 2 decimals, lower bounds marked ``at least``."""
    scope = stats.asset or "all assets"
    console.print(f"[bold]Liquidations, {scope}[/], {stats.since:%Y-%m-%d %H:%M} to {stats.until:%Y-%m-%d %H:%M} UTC")
    if not stats.events:
        console.print("No liquidations in this range.")
    else:
        console.print(f"Events: {stats.events:,}   USD: {usd(stats.usd, lower_bound=stats.lower_bound)}")
        if stats.average_usd is not None:
            console.print(f"Average liquidation: {usd(stats.average_usd)}")
        if stats.largest is not None:
            big = stats.largest
            console.print(
                f"Largest liquidation: {usd(big.usd)} {big.side} {big.symbol} on {big.exchange} "
                f"at {big.price:,} ({big.ts:%Y-%m-%d %H:%M:%S} UTC)"
            )
        console.print(_share_table("side", stats.sides))
        console.print(_share_table("exchange", stats.exchanges))
        if stats.lower_bound:
            console.print(
                "[dim]Throttled feeds (Binance: at most one liquidation per symbol per second) make these "
                "totals lower bounds.[/]"
            )
    tiers = Table(title="Cascades started in range", title_justify="left")
    tiers.add_column("tier")
    tiers.add_column("cascades", justify="right")
    tiers.add_column("USD", justify="right")
    for tier, count in stats.cascades.items():
        tiers.add_row(tier, f"{count.count:,}", usd(count.usd))
    console.print(tiers)


def _share_table(label: str, groups: dict[str, Share]) -> Table:
    table = Table(title=f"By {label}", title_justify="left")
    table.add_column(label)
    table.add_column("events", justify="right")
    table.add_column("USD", justify="right")
    table.add_column("share", justify="right")
    for name, share in groups.items():
        table.add_row(name, f"{share.count:,}", usd(share.usd, lower_bound=share.lower_bound), f"{share.pct:.2f}%")
    return table
