"""Turning a Bybit ``allLiquidation`` push into normalised :class:`~liq_common.events.Liquidation` events.

Rules (exchange-feeds.md §0.2, §3.3, §3.5):

* one push carries several liquidations in ``data`` (an array);
* side: ``S`` is the POSITION side, ``Buy`` means a LONG was liquidated (opposite of Binance's order side);
* price: ``p``, the bankruptcy price;
* linear: ``v`` is base coin, notional = ``v * p`` (USDT/USDC treated as USD);
* inverse: ``v`` is USD contracts, notional = ``v`` USD, base qty = ``v / p``;
* event time ``T``; ``throttled=False``: ``allLiquidation`` pushes every liquidation (§3.6);
* ``event_id``: :func:`~liq_common.events.make_event_id` over the raw ``T``, ``v`` and ``p`` strings.

A push is all or nothing: if any entry is impossible the whole frame is rejected, since a frame that
carries one impossible entry cannot be trusted for the others.
"""

from __future__ import annotations

from typing import Literal

from liq_common.events import Liquidation, Market
from liq_common.ingest.ids import EventIds
from liq_common.ingest.numbers import positive
from liq_common.ingest.rejects import Rejected
from liq_ingest_bybit.instruments import Symbols
from liq_ingest_bybit.wire import Item

_SIDE: dict[str, Literal["long", "short"]] = {"Buy": "long", "Sell": "short"}


class Normaliser:
    """Normalises the pushes of one Bybit market (``linear`` or ``inverse``)."""

    def __init__(self, market: Market, symbols: Symbols) -> None:
        self.market = market
        self.symbols = symbols
        self._ids = EventIds("bybit", market)

    def normalise(self, items: list[Item], recv_ts: int) -> list[Liquidation]:
        """The liquidations of one push, in order.

        Identical entries within one push (same time, side, size and price) are distinct liquidations:
        the second gets ``#2`` in its id, so a replayed push still maps to the same ids.

        Raises:
            Rejected: Any entry is impossible (bad or non-positive numbers, bad time).
        """
        events: list[Liquidation] = []
        seen: dict[str, int] = {}  # event id -> how many entries of this push had it
        linear = self.market == "linear"
        pair, known = self._ids.pair, self.symbols.assets_of.get
        for item in items:
            price = positive(item.p, "p")
            size = positive(item.v, "v")
            if item.T <= 0:
                raise Rejected("bad_time", f"T={item.T}")
            side = _SIDE[item.S]
            # The id covers (symbol, side, time, size, price): equal ids are identical entries.
            event_id = pair(item.s, side, item.T, item.v, item.p)
            n = seen.get(event_id, 0) + 1
            seen[event_id] = n
            if n > 1:
                event_id = self._ids.make(item.s, side, item.T, item.v, item.p, f"#{n}")
            base, quote = known(item.s) or self.symbols.assets(item.s, self.market)
            if linear:
                qty, notional, contracts = size, size * price, None
            else:
                qty, notional, contracts = size / price, size, size
            events.append(
                Liquidation(
                    event_id=event_id,
                    exchange="bybit",
                    market=self.market,
                    symbol=item.s,
                    base=base,
                    quote=quote,
                    side=side,
                    price=price,
                    qty=qty,
                    notional_usd=notional,
                    ts=item.T,
                    recv_ts=recv_ts,
                    contracts=contracts,
                    throttled=False,
                )
            )
        return events
