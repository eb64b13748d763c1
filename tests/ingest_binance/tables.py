"""Instrument tables for tests that normalise without a server."""

from __future__ import annotations

from decimal import Decimal

import httpx

from liq_common.events import Market
from liq_ingest_binance.instruments import Instruments, Meta

# exchange-feeds.md §2.4: BTCUSD contracts are 100 USD (CONFIRMED, exchangeInfo sample), others 10 USD.
STATIC: dict[Market, dict[str, Meta]] = {
    "linear": {
        "BTCUSDT": Meta("BTC", "USDT", None),
        "ETHUSDT": Meta("ETH", "USDT", None),
    },
    "inverse": {
        "BTCUSD_200925": Meta("BTC", "USD", Decimal(100)),
        "BTCUSD_PERP": Meta("BTC", "USD", Decimal(100)),
        "ETHUSD_PERP": Meta("ETH", "USD", Decimal(10)),
    },
}


def static_instruments(market: Market) -> Instruments:
    """An instrument table filled from :data:`STATIC` (its HTTP client is never used)."""
    table = Instruments(market, "http://127.0.0.1:9", httpx.AsyncClient())
    table.symbols = dict(STATIC[market])
    return table
