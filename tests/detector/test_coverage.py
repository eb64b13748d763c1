"""Coverage of a cascade window per feed, from feed-status events (pure: no Redis)."""

from __future__ import annotations

from liq_common.events import FeedState, FeedStatus
from liq_detector.coverage import FeedTimeline


def st(status: FeedState, ts: int, conn: str = "0", market: str = "linear", since_ts: int = 0) -> FeedStatus:
    return FeedStatus(exchange="binance", market=market, conn=conn, status=status, ts=ts, since_ts=since_ts)


def timeline(*events: FeedStatus) -> FeedTimeline:
    t = FeedTimeline(keep_ms=60_000)
    for e in events:
        t.apply(e)
    return t


def test_an_outage_inside_the_window_costs_its_share() -> None:
    t = timeline(st("connected", 0), st("disconnected", 2_000), st("reconnected", 5_000))
    assert t.coverage(["binance:linear", "bybit:linear"], 1_000, 11_000) == {"binance:linear": 0.7, "bybit:linear": 1.0}


def test_an_outage_still_open_counts_to_the_window_end_and_clips_at_its_start() -> None:
    t = timeline(st("disconnected", 0))
    assert t.coverage(["binance:linear"], 5_000, 10_000) == {"binance:linear": 0.0}
    t.apply(st("reconnected", 7_500))
    assert t.coverage(["binance:linear"], 5_000, 10_000) == {"binance:linear": 0.5}


def test_overlapping_outages_of_two_slots_are_merged_and_other_markets_ignored() -> None:
    t = timeline(
        st("disconnected", 1_000, conn="0"),
        st("disconnected", 2_000, conn="1"),
        st("reconnected", 3_000, conn="0"),
        st("reconnected", 4_000, conn="1"),
        st("disconnected", 0, market="inverse"),
    )
    assert t.coverage(["binance:linear"], 0, 10_000) == {"binance:linear": 0.7}


def test_a_silent_connection_is_down_from_when_its_data_stopped() -> None:
    t = timeline(st("silent", 6_000, since_ts=2_000), st("disconnected", 6_000), st("reconnected", 6_500))
    assert t.coverage(["binance:linear"], 0, 10_000) == {"binance:linear": 0.55}


def test_a_zero_length_window_is_covered_unless_its_instant_is_in_an_outage() -> None:
    t = timeline(st("disconnected", 1_000), st("reconnected", 2_000))
    assert t.coverage(["binance:linear"], 1_500, 1_500) == {"binance:linear": 0.0}
    assert t.coverage(["binance:linear"], 2_500, 2_500) == {"binance:linear": 1.0}


def test_prune_forgets_old_closed_outages_but_keeps_open_ones() -> None:
    t = timeline(st("disconnected", 0, conn="0"), st("reconnected", 1_000, conn="0"), st("disconnected", 500, conn="1"))
    t.apply(st("connected", 200_000, conn="2"))
    t.prune()
    assert ("binance", "linear", "0") not in t.outages
    assert t.outages[("binance", "linear", "1")] == [[500, None]]
