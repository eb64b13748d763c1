"""The event schema: round trips, determinism of ids, tiers, and what the wire looks like."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given

from liq_common.codec import CASCADES, FIELD, LIQUIDATIONS, EntryDecodeError, encode, to_fields
from liq_common.events import SCHEMA_VERSION, Cascade, Liquidation, make_event_id, tier_for
from tests.common.strategies import cascades, liquidations


@given(liquidations)
def test_liquidation_round_trips_through_the_stream_codec(event: Liquidation) -> None:
    """Any liquidation decodes back to an equal value from its stream fields."""
    assert event == LIQUIDATIONS.decode(to_fields(event))


@given(cascades)
def test_cascade_round_trips_through_the_stream_codec(event: Cascade) -> None:
    """Any cascade state decodes back to an equal value from its stream fields."""
    assert event == CASCADES.decode(to_fields(event))


def _liq(**over: object) -> Liquidation:
    base = dict(
        event_id="x",
        exchange="binance",
        market="linear",
        symbol="BTCUSDT",
        base="BTC",
        quote="USDT",
        side="long",
        price=Decimal("43511.70"),
        qty=Decimal("0.003"),
        notional_usd=Decimal("130.5351"),
        ts=1,
        recv_ts=2,
    )
    base.update(over)
    return Liquidation(**base)  # type: ignore[arg-type]


def test_wire_form_is_plain_json_with_decimal_strings_and_a_kind_tag() -> None:
    """Consumers in other languages read one JSON field; money keeps its exact digits as strings."""
    payload = msgspec.json.decode(to_fields(_liq())[FIELD])
    assert payload["kind"] == "liquidation"
    assert payload["price"] == "43511.70"
    assert payload["side"] == "long"
    assert payload["v"] == SCHEMA_VERSION


def test_decoder_skips_unknown_fields_and_defaults_missing_new_ones() -> None:
    """Schema evolution: a newer writer's extra field is ignored, an older writer's missing field defaults."""
    payload = msgspec.json.decode(encode(_liq()))
    payload["future_field"] = 1
    del payload["throttled"]
    event = LIQUIDATIONS.decode({FIELD: msgspec.json.encode(payload)})
    assert event.throttled is False


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({b"other": b"1"}, "no 'data' field"),
        ({FIELD: b"{not json"}, "JSON"),
        ({FIELD: b'{"kind":"liquidation","exchange":1}'}, "$.exchange"),
        ({FIELD: b'{"kind":"cascade"}'}, "cascade"),
    ],
)
def test_bad_entries_raise_one_error_type_naming_the_problem(fields: dict[bytes, bytes], needle: str) -> None:
    """Every way an entry can be broken surfaces as EntryDecodeError with a useful message."""
    with pytest.raises(EntryDecodeError, match=None) as info:
        LIQUIDATIONS.decode(fields)
    assert needle in str(info.value)


def test_side_outside_long_short_is_rejected() -> None:
    """The schema only knows position sides; exchange order sides never pass."""
    payload = msgspec.json.decode(encode(_liq()))
    payload["side"] = "SELL"
    with pytest.raises(EntryDecodeError, match="side"):
        LIQUIDATIONS.decode({FIELD: msgspec.json.encode(payload)})


def test_event_id_is_deterministic_and_sensitive_to_every_part() -> None:
    """Same inputs, same id; any changed part gives a different id."""
    args = ("binance", "linear", "BTCUSDT", "long", 1700000000000, "43511.70", "0.003")
    first = make_event_id(*args)
    assert first == make_event_id(*args)
    assert len(first) == 32
    for i in range(len(args)):
        changed = list(args)
        changed[i] = 1 if isinstance(args[i], int) else f"{args[i]}x"
        assert make_event_id(*changed) != first  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("score", "tier"),
    [
        (0.0, "low"),
        (0.299, "low"),
        (0.3, "medium"),
        (0.599, "medium"),
        (0.6, "high"),
        (0.999, "high"),
        (1.0, "critical"),
        (2.5, "critical"),
    ],
)
def test_tier_boundaries(score: float, tier: str) -> None:
    """Low < 0.3 <= Medium < 0.6 <= High < 1.0 <= Critical."""
    assert tier_for(score) == tier
