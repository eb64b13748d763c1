"""Binance instrument metadata from ``exchangeInfo``: base/quote assets and COIN-M contract sizes.

USD-M: ``GET {BINANCE_USDM_REST_URL}/fapi/v1/exchangeInfo``; COIN-M:
``GET {BINANCE_COINM_REST_URL}/dapi/v1/exchangeInfo`` (exchange-feeds.md §1.10, §2.4). The table is
loaded at start, refreshed periodically and on demand when a frame names a symbol it does not hold (a
new listing); fetches are spaced at least ``min_refresh_gap`` seconds apart so a stream of unknown
symbols cannot hammer the REST API.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal

import httpx
import msgspec
import structlog

from liq_common.events import Market
from liq_common.ingest.metrics import REST_ERRORS
from liq_ingest_binance.wire import EXCHANGE_INFO_DECODER

log = structlog.get_logger(__name__)

PATHS: dict[Market, str] = {"linear": "/fapi/v1/exchangeInfo", "inverse": "/dapi/v1/exchangeInfo"}


@dataclass(frozen=True, slots=True)
class Meta:
    """What normalisation needs to know about one symbol."""

    base: str
    quote: str
    contract_size: Decimal | None


class InstrumentsUnavailable(RuntimeError):
    """exchangeInfo could not be fetched or decoded."""


class Instruments:
    """Symbol table of one Binance market, fetched from exchangeInfo.

    Args:
        market: ``linear`` (USD-M) or ``inverse`` (COIN-M).
        rest_url: REST base URL, e.g. ``https://dapi.binance.com``.
        client: Shared httpx client.
        min_refresh_gap: Shortest time between two fetches, seconds.
    """

    def __init__(self, market: Market, rest_url: str, client: httpx.AsyncClient, min_refresh_gap: float = 5.0) -> None:
        self.market = market
        self.url = rest_url.rstrip("/") + PATHS[market]
        self.client = client
        self.min_refresh_gap = min_refresh_gap
        self.symbols: dict[str, Meta] = {}
        self.refreshes = 0
        self.last_fetch = float("-inf")
        self._lock = asyncio.Lock()

    def get(self, symbol: str) -> Meta | None:
        """Metadata of ``symbol``, or None when exchangeInfo did not list it at the last refresh."""
        return self.symbols.get(symbol)

    async def refresh(self, *, force: bool = True) -> bool:
        """Fetch exchangeInfo and replace the table; False when the fetch failed (table kept).

        Concurrent callers share one fetch; without ``force`` a fetch younger than ``min_refresh_gap``
        is reused.
        """
        async with self._lock:
            if not force and time.monotonic() - self.last_fetch < self.min_refresh_gap:
                return True
            try:
                self.symbols = await self._fetch()
            except InstrumentsUnavailable as exc:
                REST_ERRORS.labels("binance", PATHS[self.market]).inc()
                log.warning("exchange_info_failed", market=self.market, url=self.url, error=str(exc))
                return False
            finally:
                self.last_fetch = time.monotonic()
            self.refreshes += 1
            log.info("exchange_info_loaded", market=self.market, symbols=len(self.symbols))
            return True

    async def _fetch(self) -> dict[str, Meta]:
        try:
            response = await self.client.get(self.url)
            response.raise_for_status()
            info = EXCHANGE_INFO_DECODER.decode(response.content)
        except (httpx.HTTPError, msgspec.DecodeError) as exc:
            raise InstrumentsUnavailable(repr(exc)) from exc
        return {
            i.symbol: Meta(base=i.baseAsset, quote=i.quoteAsset, contract_size=i.contractSize) for i in info.symbols
        }
