"""Which Bybit symbols exist: ``GET /v5/market/instruments-info`` (every page) or ``BYBIT_SYMBOLS``.

The REST list is paginated: each page carries ``nextPageCursor`` and the last one an empty cursor
(exchange-feeds.md §3, bybit docs ``v5/market/instrument``). Only ``Trading`` instruments are
subscribed. Base and quote come from the listing; for symbols given in ``BYBIT_SYMBOLS`` they are
derived from the symbol's spelling (:func:`parse_assets`).
"""

from __future__ import annotations

import re

import httpx
import msgspec
import structlog

from liq_common.events import Market
from liq_common.ingest.metrics import REST_ERRORS
from liq_ingest_bybit.wire import INSTRUMENTS_DECODER

log = structlog.get_logger(__name__)

PATH = "/v5/market/instruments-info"
MAX_PAGES = 100
"""Safety stop for a server whose cursor never ends."""

_INVERSE = re.compile(r"^([A-Z0-9]+?)USD([FGHJKMNQUVXZ]\d{2})?$")
"""Inverse perpetuals (``BTCUSD``) and inverse futures (``BTCUSDH26``)."""


class InstrumentsUnavailable(RuntimeError):
    """The instrument list could not be fetched completely."""


def market_of(symbol: str) -> Market:
    """``inverse`` for coin-margined symbols (``BTCUSD``, ``BTCUSDH26``), else ``linear``."""
    return "inverse" if _INVERSE.match(symbol) else "linear"


def parse_assets(symbol: str, market: Market) -> tuple[str, str]:
    """Base and quote of a symbol from its spelling, when no listing says it.

    ``BTCUSDT`` -> (BTC, USDT); ``ETHPERP``/``ETH-26DEC25`` -> (ETH, USDC); ``BTCUSD``/``BTCUSDH26`` -> (BTC, USD).
    """
    if market == "inverse":
        match = _INVERSE.match(symbol)
        return (match.group(1) if match else symbol, "USD")
    core = symbol.split("-", 1)[0]
    for suffix, quote in (("USDT", "USDT"), ("USDC", "USDC"), ("PERP", "USDC")):
        if core.endswith(suffix) and len(core) > len(suffix):
            return core[: -len(suffix)], quote
    return core, "USDC"


class Symbols:
    """Trading symbols of one market with their assets."""

    def __init__(self) -> None:
        self.assets_of: dict[str, tuple[str, str]] = {}

    def assets(self, symbol: str, market: Market) -> tuple[str, str]:
        """Base and quote of ``symbol`` (from the listing, else from its spelling)."""
        known = self.assets_of.get(symbol)
        if known is None:
            known = self.assets_of[symbol] = parse_assets(symbol, market)
        return known

    def set(self, symbol: str, base: str, quote: str) -> None:
        """Record a listed symbol's assets."""
        self.assets_of[symbol] = (base, quote)


async def list_symbols(
    client: httpx.AsyncClient, rest_url: str, market: Market, symbols: Symbols, page_limit: int = 1000
) -> list[str]:
    """Every ``Trading`` symbol of ``market``, following the cursor through all pages.

    Raises:
        InstrumentsUnavailable: A page failed (HTTP error, bad JSON, ``retCode`` != 0) or too many pages.
    """
    url = rest_url.rstrip("/") + PATH
    found: list[str] = []
    cursor = ""
    for _ in range(MAX_PAGES):
        params = {"category": market, "limit": str(page_limit)}
        if cursor:
            params["cursor"] = cursor
        try:
            response = await client.get(url, params=params)
            response.raise_for_status()
            reply = INSTRUMENTS_DECODER.decode(response.content)
        except (httpx.HTTPError, msgspec.DecodeError) as exc:
            REST_ERRORS.labels("bybit", PATH).inc()
            raise InstrumentsUnavailable(f"{market} instruments: {exc!r}") from exc
        if reply.retCode != 0 or reply.result is None:
            REST_ERRORS.labels("bybit", PATH).inc()
            raise InstrumentsUnavailable(f"{market} instruments: retCode={reply.retCode} {reply.retMsg!r}")
        for item in reply.result.items:
            if item.status == "Trading":
                found.append(item.symbol)
                if item.baseCoin and item.quoteCoin:
                    symbols.set(item.symbol, item.baseCoin, item.quoteCoin)
        cursor = reply.result.nextPageCursor
        if not cursor:
            return found
    raise InstrumentsUnavailable(f"{market} instruments: more than {MAX_PAGES} pages")
