"""Every recorded Binance liquidation normalises to what the exchange meant (exchange-feeds.md §1-2).

The reference is tardis-node's normalised record of the same message. tardis' conventions differ from
ours in two documented ways, so like is compared with like:

* price: tardis reports the order's limit price ``p``; we report the average fill price ``ap`` (what the
  position was actually closed at). The test checks tardis' price equals the frame's ``p`` and ours ``ap``.
* amount: tardis reports ``z`` as sent: base coin on USD-M, CONTRACTS on COIN-M. Our ``qty`` is base
  coin on USD-M; on COIN-M our ``contracts`` equals tardis' amount and ``qty`` = contracts × 100 USD / ap.
* side: tardis ``sell`` = a LONG was liquidated, exactly our ``long``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from liq_ingest_binance.normalise import Normaliser
from liq_ingest_binance.wire import FRAME_DECODER
from tests.ingest_binance.tables import STATIC, static_instruments
from tests.ingest_common.recorded import tardis_expected, tardis_messages

TARDIS_SIDE = {"sell": "long", "buy": "short"}
MARKET = {"binance-futures": "linear", "binance-delivery": "inverse"}
NOW_MS = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)


def _messages() -> list[dict[str, Any]]:
    return tardis_messages(*MARKET)


def test_fixture_has_both_binance_markets() -> None:
    """The recording holds at least one USD-M and one COIN-M forceOrder frame."""
    assert {m["tardis_exchange"] for m in _messages()} == set(MARKET)


@pytest.mark.parametrize("index", range(2))
def test_recorded_frame_normalises_like_tardis(index: int) -> None:
    """Side, price and size of each recorded frame agree with tardis' record of it."""
    row = _messages()[index]
    market = MARKET[row["tardis_exchange"]]
    raw = msgspec.json.encode(row["message"])
    event = FRAME_DECODER.decode(raw).event()
    assert event is not None
    liquidation = Normaliser(market, static_instruments(market)).normalise(event, NOW_MS)  # type: ignore[arg-type]
    order = row["message"]["data"]["o"]
    expected = tardis_expected(row["tardis_exchange"], order["s"], order["T"])

    assert TARDIS_SIDE[expected["side"]] == liquidation.side
    assert Decimal(str(expected["price"])) == Decimal(order["p"])
    assert Decimal(order["ap"]) == liquidation.price
    assert liquidation.ts == order["T"]
    assert liquidation.throttled
    if market == "linear":
        assert Decimal(str(expected["amount"])) == liquidation.qty
        assert liquidation.qty * liquidation.price == liquidation.notional_usd
        assert liquidation.contracts is None
    else:
        contract = STATIC["inverse"][order["s"]].contract_size
        assert contract is not None
        assert Decimal(str(expected["amount"])) == liquidation.contracts
        assert liquidation.contracts * contract == liquidation.notional_usd
        assert liquidation.notional_usd / liquidation.price == liquidation.qty


def test_usdm_fixture_values() -> None:
    """The USD-M frame (BUY, z=0.014, ap=4706.04) is a short of 0.014 BTC worth 65.88456 USD."""
    row = next(m for m in _messages() if m["tardis_exchange"] == "binance-futures")
    event = FRAME_DECODER.decode(msgspec.json.encode(row["message"])).event()
    assert event is not None
    liquidation = Normaliser("linear", static_instruments("linear")).normalise(event, NOW_MS)
    assert ("short", Decimal("0.014"), Decimal("65.88456")) == (
        liquidation.side,
        liquidation.qty,
        liquidation.notional_usd,
    )
    assert (liquidation.base, liquidation.quote) == ("BTC", "USDT")


def test_coinm_fixture_values() -> None:
    """The COIN-M frame (SELL, z=3 contracts of 100 USD) is a long worth exactly 300 USD."""
    row = next(m for m in _messages() if m["tardis_exchange"] == "binance-delivery")
    event = FRAME_DECODER.decode(msgspec.json.encode(row["message"])).event()
    assert event is not None
    liquidation = Normaliser("inverse", static_instruments("inverse")).normalise(event, NOW_MS)
    assert ("long", Decimal(300), Decimal(3)) == (liquidation.side, liquidation.notional_usd, liquidation.contracts)
    assert (liquidation.base, liquidation.quote) == ("BTC", "USD")
