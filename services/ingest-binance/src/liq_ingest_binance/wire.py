"""Binance ``forceOrder`` frames as typed msgspec Structs (exchange-feeds.md §1.3-1.4, §2.3).

One Struct, :class:`Frame`, decodes every envelope the feed can send, in one pass:

* combined stream (``/stream?streams=...``, also per-symbol ``<symbol>@forceOrder``):
  ``{"stream": "!forceOrder@arr", "data": {"e": "forceOrder", "E": ..., "o": {...}}}``
* raw stream (``/ws/<stream>``): the payload itself, ``{"e": "forceOrder", "E": ..., "o": {...}}``
* control replies to live ``SUBSCRIBE`` requests: ``{"result": null, "id": 1}`` or
  ``{"code": 2, "msg": "...", "id": 1}``.

Numbers other than times are strings on the wire; they stay strings here so the event id hashes the
exact text the exchange sent, and the normaliser parses them into :class:`~decimal.Decimal`.
Unknown fields (``ps``, ``st``, ...) are ignored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec


class Order(msgspec.Struct, frozen=True, gc=False):
    """The ``o`` object of a ``forceOrder`` event: the liquidation order."""

    s: str
    """Symbol, upper case (``BTCUSDT``, ``BTCUSD_PERP``)."""
    S: Literal["BUY", "SELL"]
    """Side of the liquidation ORDER: ``SELL`` closes a long (exchange-feeds.md §1.5)."""
    ap: str
    """Average fill price, quote per base."""
    z: str
    """Accumulated filled quantity: base coin on USD-M, contracts on COIN-M (§1.6, §2.4)."""
    T: int
    """Order trade time, ms."""
    X: str = "FILLED"
    """Order status."""


class Event(msgspec.Struct, frozen=True, gc=False):
    """A ``forceOrder`` event."""

    e: str
    o: Order
    E: int = 0


class Frame(msgspec.Struct, frozen=True, gc=False):
    """Any frame of the liquidation streams: combined envelope, raw event or control reply."""

    stream: str | None = None
    data: Event | None = None
    e: str | None = None
    o: Order | None = None
    E: int = 0
    id: int | str | None = None
    result: list[str] | None = None
    code: int | None = None
    msg: str | None = None

    def event(self) -> Event | None:
        """The ``forceOrder`` event this frame carries, whatever its envelope; None for control frames."""
        if self.data is not None:
            return self.data
        if self.o is not None and self.e is not None:
            return Event(e=self.e, o=self.o, E=self.E)
        return None


FRAME_DECODER: msgspec.json.Decoder[Frame] = msgspec.json.Decoder(Frame)
"""Built once: decoders are reused (msgspec performance advice)."""


class Instrument(msgspec.Struct, frozen=True, gc=False):
    """One symbol of ``GET /fapi/v1/exchangeInfo`` or ``/dapi/v1/exchangeInfo`` (§1.10, §2.4)."""

    symbol: str
    baseAsset: str
    quoteAsset: str
    contractSize: Decimal | None = None
    """COIN-M only: USD face value of one contract (100 for BTC, 10 for others)."""


class ExchangeInfo(msgspec.Struct, frozen=True):
    """The part of ``exchangeInfo`` the ingestor reads."""

    symbols: list[Instrument]


EXCHANGE_INFO_DECODER: msgspec.json.Decoder[ExchangeInfo] = msgspec.json.Decoder(ExchangeInfo)
