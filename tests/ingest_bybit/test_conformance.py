"""Every recorded Bybit ``allLiquidation`` push normalises to what the exchange meant (exchange-feeds.md §3).

The reference is tardis-node's normalised record of the same message: tardis ``sell`` = a LONG was
liquidated. Bybit's ``S`` is the POSITION side (``Buy`` = long, §3.5), so tardis inverts it and we map
it straight: ``S=Sell`` -> tardis ``buy`` -> our ``short``. Price is the bankruptcy price ``p`` and size
``v`` (base coin on linear) in both.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from liq_ingest_bybit.instruments import Symbols
from liq_ingest_bybit.normalise import Normaliser
from liq_ingest_bybit.wire import FRAME_DECODER
from tests.ingest_common.recorded import tardis_expected, tardis_messages

TARDIS_SIDE = {"sell": "long", "buy": "short"}


def _pushes() -> list[bytes]:
    rows = tardis_messages("bybit")
    return [msgspec.json.encode(r["message"]) for r in rows if r["message"]["topic"].startswith("allLiquidation.")]


def test_fixture_has_all_liquidation_pushes() -> None:
    """The recording holds allLiquidation pushes (a duplicate line included)."""
    assert len(_pushes()) >= 1


def test_every_recorded_push_normalises_like_tardis() -> None:
    """Every entry of every recorded push has tardis' side, price and size."""
    checked = 0
    for raw in _pushes():
        frame = FRAME_DECODER.decode(raw)
        assert frame.data is not None
        events = Normaliser("linear", Symbols()).normalise(frame.data, 1740480207600)
        assert len(frame.data) == len(events)
        for item, event in zip(frame.data, events, strict=True):
            expected = tardis_expected("bybit", item.s, item.T)
            assert TARDIS_SIDE[expected["side"]] == event.side
            assert Decimal(str(expected["price"])) == event.price
            assert Decimal(str(expected["amount"])) == event.qty
            assert event.qty * event.price == event.notional_usd
            assert (event.ts, event.exchange, event.market, event.throttled) == (item.T, "bybit", "linear", False)
            checked += 1
    assert checked >= 1


def test_pippin_push_values() -> None:
    """PIPPINUSDT Sell 2846 @ 0.02456 is a short worth 69.89776 USD, PIPPIN/USDT."""
    frame = FRAME_DECODER.decode(_pushes()[0])
    assert frame.data is not None
    (event,) = Normaliser("linear", Symbols()).normalise(frame.data, 0)
    assert ("short", Decimal("69.89776"), "PIPPIN", "USDT") == (event.side, event.notional_usd, event.base, event.quote)


def test_the_same_push_seen_twice_has_the_same_ids() -> None:
    """The recording's duplicate line maps to the same event id (dedup across a replay)."""
    pushes = _pushes()
    ids = [
        event.event_id
        for raw in pushes
        for event in Normaliser("linear", Symbols()).normalise(FRAME_DECODER.decode(raw).data or [], 0)
    ]
    assert len(pushes) == len(ids)
    assert len(set(ids)) == 1


def test_identical_entries_in_one_push_are_distinct_liquidations() -> None:
    """Two identical entries in one push are two liquidations; the same push again gives the same two ids."""
    item = {"T": 1740480207110, "s": "PIPPINUSDT", "S": "Buy", "v": "100", "p": "0.02"}
    raw = msgspec.json.encode({"topic": "allLiquidation.PIPPINUSDT", "ts": 1, "data": [item, item]})
    normaliser = Normaliser("linear", Symbols())
    first = normaliser.normalise(FRAME_DECODER.decode(raw).data or [], 0)
    again = normaliser.normalise(FRAME_DECODER.decode(raw).data or [], 0)
    assert len({e.event_id for e in first}) == 2
    assert [e.event_id for e in first] == [e.event_id for e in again]
    assert first[0].side == "long"


def test_inverse_sizes_are_usd() -> None:
    """Inverse: v=6949 USD at 0.5149 is 6949 USD notional and 6949/0.5149 XRP."""
    raw = msgspec.json.encode(
        {
            "topic": "allLiquidation.XRPUSD",
            "ts": 1,
            "data": [{"T": 1, "s": "XRPUSD", "S": "Sell", "v": "6949", "p": "0.5149"}],
        }
    )
    (event,) = Normaliser("inverse", Symbols()).normalise(FRAME_DECODER.decode(raw).data or [], 0)
    assert (event.side, event.notional_usd, event.contracts) == ("short", Decimal(6949), Decimal(6949))
    assert event.qty == Decimal(6949) / Decimal("0.5149")
    assert (event.base, event.quote) == ("XRP", "USD")
