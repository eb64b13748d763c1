"""REST answers: Binance ``exchangeInfo`` (fapi/dapi) and Bybit ``instruments-info`` with cursor pages.

Shapes: exchange-feeds.md §2.4 (dapi sample, ``contractSize``), §1.10 (fapi fields), §3.9 (Bybit, paging).
"""

from __future__ import annotations

import base64
import time
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from liq_exchange_sim.frames import dec
from liq_exchange_sim.instruments import Instrument, Universe
from liq_exchange_sim.truth import Feed

_encoder = msgspec.json.Encoder()
BYBIT_DEFAULT_LIMIT = 500
BYBIT_MAX_LIMIT = 1000
_RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
]


def _precision(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _binance_filters(inst: Instrument) -> list[dict[str, Any]]:
    return [
        {"minPrice": dec(inst.tick_size), "maxPrice": "1000000", "filterType": "PRICE_FILTER",
         "tickSize": dec(inst.tick_size)},
        {"stepSize": dec(inst.step_size), "filterType": "LOT_SIZE", "maxQty": "100000", "minQty": dec(inst.step_size)},
        {"limit": 200, "filterType": "MAX_NUM_ORDERS"},
    ]  # fmt: skip


def _binance_symbol(feed: Feed, inst: Instrument) -> dict[str, Any]:
    common: dict[str, Any] = {
        "symbol": inst.symbol,
        "pair": inst.pair,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": inst.onboard_ms,
    }
    if feed == "binance_coinm":
        common |= {"contractStatus": inst.status, "contractSize": int(inst.contract_size)}
    else:
        common |= {"status": inst.status}
    common |= {
        "marginAsset": inst.base if feed == "binance_coinm" else inst.quote,
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": inst.base,
        "quoteAsset": inst.quote,
        "pricePrecision": _precision(inst.tick_size),
        "quantityPrecision": _precision(inst.step_size),
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "filters": _binance_filters(inst),
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }
    return common


def binance_exchange_info(feed: Feed, universe: Universe) -> bytes:
    """``GET /fapi/v1/exchangeInfo`` (USD-M) or ``GET /dapi/v1/exchangeInfo`` (COIN-M) body."""
    body = {
        "timezone": "UTC",
        "serverTime": int(time.time() * 1000),
        "rateLimits": _RATE_LIMITS,
        "exchangeFilters": [],
        "symbols": [_binance_symbol(feed, inst) for inst in universe.instruments(feed)],
    }
    return _encoder.encode(body)


def _bybit_item(feed: Feed, inst: Instrument) -> dict[str, Any]:
    linear = feed == "bybit_linear"
    return {
        "symbol": inst.symbol,
        "contractType": "LinearPerpetual" if linear else "InversePerpetual",
        "status": inst.status,
        "baseCoin": inst.base,
        "quoteCoin": inst.quote,
        "launchTime": str(inst.onboard_ms),
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(_precision(inst.tick_size)),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": dec(inst.tick_size), "maxPrice": "1999999.80", "tickSize": dec(inst.tick_size)},
        "lotSizeFilter": {
            "maxOrderQty": "1000000",
            "minOrderQty": dec(inst.step_size),
            "qtyStep": dec(inst.step_size),
            "postOnlyMaxOrderQty": "1000000",
            "maxMktOrderQty": "200000",
            "minNotionalValue": "5" if linear else "1",
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": inst.quote if linear else inst.base,
        "copyTrading": "both",
        "upperFundingRate": "0.00375",
        "lowerFundingRate": "-0.00375",
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
        "symbolType": "",
    }


def _bybit_error(code: int, msg: str) -> bytes:
    return _encoder.encode(
        {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": int(time.time() * 1000)}
    )


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset={offset}".encode()).decode()


def _offset(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    key, _, value = text.partition("=")
    return int(value) if key == "offset" and value.isdigit() else None


def bybit_instruments(query: str, universe: Universe) -> bytes:
    """``GET /v5/market/instruments-info`` body: ``category`` required; ``symbol``, ``status``, ``baseCoin``,
    ``limit`` (1..1000, default 500) and an opaque ``cursor`` (``nextPageCursor``, empty on the last page).
    """
    params = dict(parse_qsl(query, keep_blank_values=True))
    category = params.get("category", "")
    feed: Feed
    if category == "linear":
        feed = "bybit_linear"
    elif category == "inverse":
        feed = "bybit_inverse"
    elif category in ("spot", "option"):
        return _encoder.encode(_page(category, [], ""))
    else:
        return _bybit_error(10001, "params error: category is invalid")
    raw_limit = params.get("limit", str(BYBIT_DEFAULT_LIMIT)) or str(BYBIT_DEFAULT_LIMIT)
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= BYBIT_MAX_LIMIT:
        return _bybit_error(10001, "params error: limit must be in [1, 1000]")
    limit = int(raw_limit)
    start = 0
    if params.get("cursor"):
        parsed = _offset(params["cursor"])
        if parsed is None:
            return _bybit_error(10001, "params error: cursor is invalid")
        start = parsed
    status = params.get("status", "Trading")
    items = [
        i
        for i in universe.instruments(feed)
        if i.status == status
        and (not params.get("symbol") or i.symbol == params["symbol"])
        and (not params.get("baseCoin") or i.base == params["baseCoin"])
    ]
    page = items[start : start + limit]
    following = _cursor(start + limit) if start + limit < len(items) else ""
    return _encoder.encode(_page(category, [_bybit_item(feed, i) for i in page], following))


def _page(category: str, items: list[dict[str, Any]], cursor: str) -> dict[str, Any]:
    return {
        "retCode": 0,
        "retMsg": "OK",
        "result": {"category": category, "list": items, "nextPageCursor": cursor},
        "retExtInfo": {},
        "time": int(time.time() * 1000),
    }
