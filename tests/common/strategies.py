"""Hypothesis strategies for the event schema (one module, reused by every property test)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from liq_common.events import TIERS, Cascade, Liquidation, RiskFactors, SideStats

decimals = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1e12"), allow_nan=False, places=8)
times = st.integers(min_value=0, max_value=4_102_444_800_000)
names = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=1, max_size=20)
floats = st.floats(min_value=0, max_value=10, allow_nan=False, allow_infinity=False)

liquidations = st.builds(
    Liquidation,
    event_id=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    exchange=st.sampled_from(["binance", "bybit", "okx"]),
    market=st.sampled_from(["linear", "inverse"]),
    symbol=names,
    base=names,
    quote=names,
    side=st.sampled_from(["long", "short"]),
    price=decimals,
    qty=decimals,
    notional_usd=decimals,
    ts=times,
    recv_ts=times,
    contracts=st.none() | decimals,
    throttled=st.booleans(),
)

side_stats = st.builds(SideStats, count=st.integers(0, 10**6), usd=decimals)

cascades = st.builds(
    Cascade,
    cascade_id=names,
    seq=st.integers(0, 1000),
    status=st.sampled_from(["open", "update", "close"]),
    base=names,
    window_start=times,
    window_end=times,
    count=st.integers(0, 10**6),
    long=side_stats,
    short=side_stats,
    usd=decimals,
    by_exchange=st.dictionaries(st.sampled_from(["binance", "bybit"]), side_stats),
    symbols=st.lists(names, max_size=5),
    exchanges=st.lists(st.sampled_from(["binance", "bybit"]), max_size=2),
    price_first=decimals,
    price_last=decimals,
    price_min=decimals,
    price_max=decimals,
    price_move_pct=st.floats(min_value=-100, max_value=1000, allow_nan=False),
    duration_ms=st.integers(0, 10**8),
    score=floats,
    factors=st.builds(RiskFactors, size=floats, intensity=floats, breadth=floats),
    tier=st.sampled_from(TIERS),
    lower_bound=st.booleans(),
    coverage=st.dictionaries(st.sampled_from(["binance:linear", "bybit:inverse"]), st.floats(0, 1)),
    emitted_ts=times,
)
