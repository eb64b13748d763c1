"""Every envelope Binance can wrap a forceOrder in decodes to the same liquidation (exchange-feeds.md §1.3)."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from liq_common.ingest.rejects import Rejected
from liq_ingest_binance.normalise import Normaliser, UnknownSymbol
from liq_ingest_binance.wire import FRAME_DECODER
from tests.ingest_binance.tables import static_instruments

ORDER = {
    "s": "BTCUSDT",
    "S": "SELL",
    "o": "LIMIT",
    "f": "IOC",
    "q": "1.437",
    "p": "35100.81",
    "ap": "34959.70",
    "X": "FILLED",
    "l": "0.400",
    "z": "1.437",
    "T": 1698871323059,
    "st": "extra-unknown-field",
}
EVENT = {"e": "forceOrder", "E": 1698871323061, "o": ORDER}

ENVELOPES = {
    "combined_all_market": {"stream": "!forceOrder@arr", "data": EVENT},
    "raw_ws": EVENT,
    "combined_per_symbol": {"stream": "btcusdt@forceOrder", "data": EVENT},
}


@pytest.mark.parametrize("envelope", sorted(ENVELOPES))
def test_envelope_decodes_to_the_same_liquidation(envelope: str) -> None:
    """Combined, raw and per-symbol frames give one identical event: long, z × ap, time T."""
    frame = FRAME_DECODER.decode(msgspec.json.encode(ENVELOPES[envelope]))
    event = frame.event()
    assert event is not None
    liquidation = Normaliser("linear", static_instruments("linear")).normalise(event, 1698871323100)
    assert liquidation.side == "long"
    assert Decimal("34959.70") == liquidation.price
    assert Decimal("1.437") == liquidation.qty  # z, not l (last fill) nor q
    assert Decimal("1.437") * Decimal("34959.70") == liquidation.notional_usd
    assert liquidation.ts == 1698871323059
    assert liquidation.recv_ts - liquidation.ts == 41


def test_event_id_is_the_same_for_every_envelope() -> None:
    """The same event seen through two envelopes (a rotation overlap) has one event id."""
    normaliser = Normaliser("linear", static_instruments("linear"))
    ids = set()
    for body in ENVELOPES.values():
        event = FRAME_DECODER.decode(msgspec.json.encode(body)).event()
        assert event is not None
        ids.add(normaliser.normalise(event, 0).event_id)
    assert len(ids) == 1


def test_control_replies_carry_no_event() -> None:
    """SUBSCRIBE acks and error replies decode as control frames."""
    ack = FRAME_DECODER.decode(b'{"result":null,"id":1}')
    error = FRAME_DECODER.decode(b'{"code":2,"msg":"Invalid request","id":"x"}')
    assert ack.event() is None
    assert ack.id == 1
    assert error.event() is None
    assert error.code == 2


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [("ap", "NaN", "bad_number"), ("ap", "abc", "bad_number"), ("z", "-1", "non_positive"), ("z", "0", "non_positive")],
)
def test_impossible_numbers_are_rejected(field: str, value: str, reason: str) -> None:
    """NaN, text, negative and zero price/size are rejected with their reason."""
    body = {**EVENT, "o": {**ORDER, field: value}}
    event = FRAME_DECODER.decode(msgspec.json.encode(body)).event()
    assert event is not None
    with pytest.raises(Rejected) as caught:
        Normaliser("linear", static_instruments("linear")).normalise(event, 0)
    assert reason == caught.value.reason


def test_unknown_coinm_symbol_is_never_guessed() -> None:
    """A COIN-M symbol missing from exchangeInfo raises UnknownSymbol instead of assuming a contract size."""
    body = {**EVENT, "o": {**ORDER, "s": "DOTUSD_PERP"}}
    event = FRAME_DECODER.decode(msgspec.json.encode(body)).event()
    assert event is not None
    with pytest.raises(UnknownSymbol):
        Normaliser("inverse", static_instruments("inverse")).normalise(event, 0)


def test_coinm_converts_contracts() -> None:
    """COIN-M: 7 ETHUSD_PERP contracts of 10 USD at 2000 are 70 USD and 0.035 ETH."""
    body = {**EVENT, "o": {**ORDER, "s": "ETHUSD_PERP", "S": "BUY", "ap": "2000", "z": "7"}}
    event = FRAME_DECODER.decode(msgspec.json.encode(body)).event()
    assert event is not None
    liquidation = Normaliser("inverse", static_instruments("inverse")).normalise(event, 0)
    assert ("short", Decimal(70), Decimal("0.035"), Decimal(7)) == (
        liquidation.side,
        liquidation.notional_usd,
        liquidation.qty,
        liquidation.contracts,
    )
