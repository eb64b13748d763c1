"""The venue-neutral "truth" liquidation record that the simulator renders into exchange frames."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

Exchange = Literal["binance", "bybit"]
Market = Literal["linear", "inverse"]
Side = Literal["long", "short"]
"""Side of the liquidated POSITION (exchange-feeds.md §0.2), never the liquidation order side."""
Feed = Literal["binance_usdm", "binance_coinm", "bybit_linear", "bybit_inverse"]
"""One production endpoint family: a host (Binance) or a path (Bybit) with its own symbol list."""

FEEDS: tuple[Feed, ...] = ("binance_usdm", "binance_coinm", "bybit_linear", "bybit_inverse")

_FEED_OF: dict[tuple[str, str], Feed] = {
    ("binance", "linear"): "binance_usdm",
    ("binance", "inverse"): "binance_coinm",
    ("bybit", "linear"): "bybit_linear",
    ("bybit", "inverse"): "bybit_inverse",
}
_VENUE_OF: dict[Feed, tuple[Exchange, Market]] = {
    "binance_usdm": ("binance", "linear"),
    "binance_coinm": ("binance", "inverse"),
    "bybit_linear": ("bybit", "linear"),
    "bybit_inverse": ("bybit", "inverse"),
}


class TruthRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One liquidation as it happened on the exchange, before any feed rule or fault.

    Attributes:
        exchange: ``binance`` or ``bybit``.
        market: ``linear`` (Binance USD-M, Bybit linear) or ``inverse`` (Binance COIN-M, Bybit inverse).
        symbol: The exchange's own symbol, e.g. ``BTCUSDT``, ``BTCUSD_PERP``, ``BTCUSD``.
        side: Liquidated position side, ``long`` or ``short``.
        price: Binance average fill price (``ap``) or Bybit bankruptcy price (``p``), quote per base.
        size: Size in the exchange's unit: base coin (Binance USD-M, Bybit linear), contracts (Binance
            COIN-M), USD (Bybit inverse).
        ts: Event time, ms since the Unix epoch.
        order_price: Binance liquidation order limit price (``p``); ``None`` renders ``price``.
    """

    exchange: Exchange
    market: Market
    symbol: str
    side: Side
    price: Decimal
    size: Decimal
    ts: int
    order_price: Decimal | None = None


def feed_of(exchange: str, market: str) -> Feed:
    """The feed that carries liquidations of ``exchange``/``market``.

    Raises:
        KeyError: Not a simulated venue.
    """
    return _FEED_OF[(exchange, market)]


def venue_of(feed: Feed) -> tuple[Exchange, Market]:
    """``(exchange, market)`` of a feed."""
    return _VENUE_OF[feed]


def usd_notional(feed: Feed, price: Decimal, size: Decimal, contract_size: Decimal) -> Decimal:
    """USD value of a liquidation from the simulator's own instrument data (exchange-feeds.md §0.2).

    Binance USD-M ``z*ap``; Binance COIN-M ``z*contractSize``; Bybit linear ``v*p``; Bybit inverse ``v``.
    """
    if feed == "binance_coinm":
        return size * contract_size
    if feed == "bybit_inverse":
        return size
    return size * price
