"""Wire frames exactly as the exchanges send them: field names, order, and strings vs numbers.

Binance forceOrder: exchange-feeds.md §1.4 (USD-M) and §2.3 (COIN-M, extra ``ps``); combined-stream envelope §1.3.
Bybit v5 ``allLiquidation``: §3.3; subscribe/ping replies: §3.4. Numbers other than times are strings.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from liq_exchange_sim.truth import TruthRecord

_encoder = msgspec.json.Encoder()


def dec(value: Decimal) -> str:
    """Plain decimal text as exchanges print it (never exponent notation)."""
    return format(value, "f")


class _BinanceOrder(msgspec.Struct):
    s: str
    ps: str | msgspec.UnsetType = msgspec.UNSET
    S: str = ""
    o: str = "LIMIT"
    f: str = "IOC"
    q: str = ""
    p: str = ""
    ap: str = ""
    X: str = "FILLED"
    l: str = ""  # noqa: E741 - Binance's field name
    z: str = ""
    T: int = 0


class _ForceOrder(msgspec.Struct):
    e: str
    E: int
    o: _BinanceOrder


class _BybitItem(msgspec.Struct):
    T: int
    s: str
    S: str
    v: str
    p: str


class _BybitPush(msgspec.Struct):
    topic: str
    type: str
    ts: int
    data: list[_BybitItem]


def binance_force_order(record: TruthRecord, pair: str | None) -> bytes:
    """A raw ``forceOrder`` event; ``pair`` (COIN-M ``ps``) is omitted on USD-M when ``None``.

    ``S`` is the liquidation ORDER side: ``SELL`` closes a long (exchange-feeds.md §1.5).
    """
    size = dec(record.size)
    order = _BinanceOrder(
        s=record.symbol,
        ps=pair if pair is not None else msgspec.UNSET,
        S="SELL" if record.side == "long" else "BUY",
        q=size,
        p=dec(record.order_price if record.order_price is not None else record.price),
        ap=dec(record.price),
        l=size,
        z=size,
        T=record.ts,
    )
    return _encoder.encode(_ForceOrder(e="forceOrder", E=record.ts, o=order))


def binance_envelope(stream: str, payload: bytes) -> bytes:
    """Combined-stream wrapper ``{"stream":...,"data":...}`` around an already encoded payload."""
    return b'{"stream":' + _encoder.encode(stream) + b',"data":' + payload + b"}"


def bybit_topic(symbol: str) -> str:
    """The current liquidation topic of a symbol (exchange-feeds.md §3.2)."""
    return f"allLiquidation.{symbol}"


def bybit_push(symbol: str, ts: int, records: list[TruthRecord]) -> bytes:
    """One ``allLiquidation`` push carrying every liquidation of the interval; ``S=Buy`` means a long."""
    items = [
        _BybitItem(T=r.ts, s=r.symbol, S="Buy" if r.side == "long" else "Sell", v=dec(r.size), p=dec(r.price))
        for r in records
    ]
    return _encoder.encode(_BybitPush(topic=bybit_topic(symbol), type="snapshot", ts=ts, data=items))


class _BinanceResult(msgspec.Struct):
    result: list[str] | None
    id: int | str | None


class _BinanceError(msgspec.Struct):
    code: int
    msg: str
    id: int | str | msgspec.UnsetType | None = msgspec.UNSET


def binance_result(request_id: int | str | None, result: list[str] | None = None) -> bytes:
    """Reply to a method frame: ``{"result":null,"id":N}`` (or the list for ``LIST_SUBSCRIPTIONS``)."""
    return _encoder.encode(_BinanceResult(result=result, id=request_id))


def binance_error(code: int, msg: str, request_id: int | str | msgspec.UnsetType | None = msgspec.UNSET) -> bytes:
    """Error reply in the form of Binance's error table (exchange-feeds.md §1.3)."""
    return _encoder.encode(_BinanceError(code=code, msg=msg, id=request_id))


class _BybitReply(msgspec.Struct):
    success: bool
    ret_msg: str
    conn_id: str
    req_id: str
    op: str


def bybit_reply(success: bool, ret_msg: str, conn_id: str, req_id: str, op: str) -> bytes:
    """Linear/inverse reply to ``subscribe``/``unsubscribe``/``ping`` (exchange-feeds.md §3.4)."""
    return _encoder.encode(_BybitReply(success=success, ret_msg=ret_msg, conn_id=conn_id, req_id=req_id, op=op))
