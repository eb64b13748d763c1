"""Turning a Binance ``forceOrder`` event into a normalised :class:`~liq_common.events.Liquidation`.

Rules (exchange-feeds.md §0.2, §1.4-1.7, §2.4):

* side: ``o.S`` is the liquidation ORDER side, so ``SELL`` means a LONG was liquidated (§1.5);
* price: the average fill price ``ap``, not the order's limit price ``p``;
* size: the accumulated filled quantity ``z`` (not ``l``, the last fill, nor ``q``, the order size);
* USD-M (``linear``): ``z`` is base coin, notional = ``z * ap`` (USDT/USDC treated as USD) (§1.6);
* COIN-M (``inverse``): ``z`` is contracts, notional USD = ``z * contractSize`` and base qty =
  notional / ``ap``; ``contractSize`` comes from ``/dapi/v1/exchangeInfo``, never from a guess (§2.4);
* base/quote from exchangeInfo; event time = the order trade time ``T``;
* ``throttled=True``: Binance pushes at most one liquidation per symbol per 1000 ms (§1.7);
* ``event_id``: :func:`~liq_common.events.make_event_id` over the raw ``T``, ``ap`` and ``z`` strings.
"""

from __future__ import annotations

from typing import Literal

from liq_common.events import Liquidation, Market
from liq_common.ingest.ids import EventIds
from liq_common.ingest.numbers import positive
from liq_common.ingest.rejects import Rejected
from liq_ingest_binance.instruments import Instruments
from liq_ingest_binance.wire import Event

_SIDE: dict[str, Literal["long", "short"]] = {"SELL": "long", "BUY": "short"}


class UnknownSymbol(LookupError):
    """The symbol is not (yet) in exchangeInfo: refresh it before normalising, never guess."""

    def __init__(self, symbol: str) -> None:
        super().__init__(symbol)
        self.symbol = symbol


class Normaliser:
    """Normalises the events of one Binance market (``linear`` = USD-M, ``inverse`` = COIN-M)."""

    def __init__(self, market: Market, instruments: Instruments) -> None:
        self.market = market
        self.instruments = instruments
        self._ids = EventIds("binance", market)

    def normalise(self, event: Event, recv_ts: int) -> Liquidation:
        """The liquidation an event reports.

        Raises:
            Rejected: The event is impossible (not a ``forceOrder``, bad or non-positive numbers, bad time).
            UnknownSymbol: The symbol is not in the instrument table; refresh and retry.
        """
        if event.e != "forceOrder":
            raise Rejected("unexpected_event", f"e={event.e!r}")
        order = event.o
        meta = self.instruments.get(order.s)
        if meta is None:
            raise UnknownSymbol(order.s)
        price = positive(order.ap, "ap")
        size = positive(order.z, "z")
        if order.T <= 0:
            raise Rejected("bad_time", f"T={order.T}")
        side = _SIDE[order.S]
        if self.market == "linear":
            qty, notional, contracts = size, size * price, None
        else:
            if meta.contract_size is None:
                raise Rejected("no_contract_size", f"{order.s} has no contractSize in exchangeInfo")
            notional = size * meta.contract_size
            qty, contracts = notional / price, size
        return Liquidation(
            event_id=self._ids.pair(order.s, side, order.T, order.ap, order.z),
            exchange="binance",
            market=self.market,
            symbol=order.s,
            base=meta.base,
            quote=meta.quote,
            side=side,
            price=price,
            qty=qty,
            notional_usd=notional,
            ts=order.T,
            recv_ts=recv_ts,
            contracts=contracts,
            throttled=True,
        )
