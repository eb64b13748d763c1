"""The fast per-feed event ids are exactly :func:`liq_common.events.make_event_id`."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from liq_common.events import make_event_id
from liq_common.ingest.ids import EventIds

text = st.text(min_size=0, max_size=20)


@given(
    exchange=text,
    market=text,
    symbol=text,
    side=st.sampled_from(["long", "short"]),
    ts=st.integers(min_value=0, max_value=2**62),
    parts=st.lists(text, max_size=3),
)
def test_make_equals_make_event_id(
    exchange: str, market: str, symbol: str, side: str, ts: int, parts: list[str]
) -> None:
    """Any text, any number of parts: the same 32 hex characters."""
    assert EventIds(exchange, market).make(symbol, side, ts, *parts) == make_event_id(
        exchange, market, symbol, side, ts, *parts
    )


@given(symbol=text, ts=st.integers(min_value=0), first=text, second=text)
def test_pair_equals_make_event_id(symbol: str, ts: int, first: str, second: str) -> None:
    """The two-part shortcut is the same id too."""
    assert EventIds("binance", "inverse").pair(symbol, "long", ts, first, second) == make_event_id(
        "binance", "inverse", symbol, "long", ts, first, second
    )
