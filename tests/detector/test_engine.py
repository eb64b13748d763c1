"""The Sans-I/O engine on synthetic scenarios: lifecycle, relative thresholds, event time, determinism."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import pytest

from liq_common.events import TIERS, Cascade, Liquidation
from liq_detector.config import EngineConfig
from liq_detector.engine import Engine
from liq_detector.settings import AssetRule
from tests.detector.scenarios import T0, Scenario, liq, shuffled_within

MIN = 60_000
BTC_PX = 90_000.0


def run(events: Sequence[Liquidation], cfg: EngineConfig | None = None, batch: int = 50) -> list[Cascade]:
    """Feed ``events`` in batches, then drain so every cascade closes."""
    engine = Engine(cfg or EngineConfig())
    out: list[Cascade] = []
    for i in range(0, len(events), batch):
        out += engine.ingest(events[i : i + batch])
    return out + engine.drain()


def btc_crash() -> Scenario:
    """15 min of $100k/min two-sided BTC background, then $5M of longs in 60 s across both venues, -2 %."""
    return Scenario().background("BTC", T0, 15, 100_000, BTC_PX).cascade("BTC", T0 + 15 * MIN, 60, 5e6, BTC_PX, -2.0)


def encoded(states: Sequence[Cascade]) -> list[bytes]:
    return [msgspec.json.encode(s) for s in states]


class TestCrossExchangeCascade:
    def test_one_lifecycle_with_both_exchanges_and_critical_tier(self) -> None:
        """A one-sided cross-exchange crash is ONE cascade: open, a few updates, close."""
        states = run(btc_crash().sorted())
        assert len({s.cascade_id for s in states}) == 1
        assert ["open"] + ["update"] * (len(states) - 2) + ["close"] == [s.status for s in states]
        assert 3 <= len(states) <= 8
        assert list(range(len(states))) == [s.seq for s in states]
        final = states[-1]
        assert final.exchanges == ["binance", "bybit"]
        assert final.tier == "critical"
        assert final.lower_bound  # Binance contributed, so counts are lower bounds
        assert final.long.usd > 20 * final.short.usd
        assert final.price_move_pct < -1.5
        assert final.window_start >= T0 + 15 * MIN - 60_000
        assert {"BTCUSDT"} == set(final.symbols)
        assert final.by_exchange["binance"].count + final.by_exchange["bybit"].count == final.count

    def test_tiers_never_go_down_and_score_is_factor_sum(self) -> None:
        """The reported score is the cascade's peak, so tier only escalates; factors add up to it."""
        states = run(btc_crash().sorted())
        ranks = [TIERS.index(s.tier) for s in states]
        assert sorted(ranks) == ranks
        for s in states:
            f = s.factors
            parts = f.size + f.intensity + f.acceleration + f.breadth + f.one_sidedness + f.displacement
            assert abs(s.score - parts) < 1e-3

    def test_single_exchange_scores_lower_than_cross_exchange(self) -> None:
        """Breadth adds risk: the same crash seen on one venue only scores less."""
        both = run(btc_crash().sorted())[-1]
        one = Scenario().background("BTC", T0, 15, 100_000, BTC_PX)
        one.cascade("BTC", T0 + 15 * MIN, 60, 5e6, BTC_PX, -2.0, exchanges=("bybit",))
        single = run(one.sorted())[-1]
        assert single.by_exchange["bybit"].usd > 20 * single.by_exchange["binance"].usd  # background only
        assert single.factors.breadth == 0.0 < both.factors.breadth
        assert single.score < both.score


class TestNoise:
    def test_two_sided_chop_stays_below_medium(self) -> None:
        """Balanced long/short liquidations, even $3M of them, never reach Medium."""
        sc = Scenario().background("ETH", T0, 15, 50_000, 3_000).chop("ETH", T0 + 15 * MIN, 60, 3e6, 3_000)
        states = run(sc.sorted())
        assert all(s.tier == "low" for s in states)
        one_sided = Scenario().background("ETH", T0, 15, 50_000, 3_000)
        one_sided.cascade("ETH", T0 + 15 * MIN, 60, 3e6, 3_000, -2.0)
        assert TIERS.index(run(one_sided.sorted())[-1].tier) >= TIERS.index("high")

    def test_steady_background_opens_nothing(self) -> None:
        """An hour of ordinary background liquidations on several assets produces no cascade."""
        sc = Scenario()
        for base, usd, px in (("BTC", 300_000, BTC_PX), ("ETH", 80_000, 3_000), ("DOGE", 5_000, 0.2)):
            sc.background(base, T0, 60, usd, px)
        assert run(sc.sorted()) == []


class TestRelativeThreshold:
    def _crash_of(self, base: str, usd_per_min: float, px: float) -> list[Cascade]:
        sc = Scenario().background(base, T0, 15, usd_per_min, px).cascade(base, T0 + 15 * MIN, 60, 180_000, px, -1.0)
        return run(sc.sorted(), EngineConfig(overrides={}))

    def test_same_dollars_crash_small_coin_not_btc(self) -> None:
        """$180k in a minute opens a cascade on a small coin and is noise on BTC (baseline-relative)."""
        assert self._crash_of("BTC", 100_000, BTC_PX) == []
        small = self._crash_of("PEPE", 3_000, 0.00002)
        assert {"PEPE"} == {s.base for s in small}
        assert TIERS.index(small[-1].tier) >= TIERS.index("high")

    def test_asset_override_raises_the_floor(self) -> None:
        """An override's min_usd keeps an asset quiet below it even while its baseline is cold."""
        sc = (
            Scenario()
            .background("PEPE", T0, 3, 1_000, 0.00002)
            .cascade("PEPE", T0 + 3 * MIN, 60, 180_000, 0.00002, -1.0)
        )
        assert run(sc.sorted(), EngineConfig()) != []
        cfg = EngineConfig(overrides={"PEPE": AssetRule(min_usd=2_000_000)})
        assert run(sc.sorted(), cfg) == []

    def test_cold_start_observes_then_needs_a_multiple_of_the_floor(self) -> None:
        """No history: observe only. Short history: floor x cold_multiple ($150k): $100k quiet, $200k opens."""
        cfg = EngineConfig(floor_usd=50_000, cold_multiple=3.0)

        def crash(usd: float, warm: bool) -> list[Cascade]:
            sc = Scenario()
            if warm:
                sc.background("XYZ", T0, 2, 1_000, 1.0)
            return run(sc.cascade("XYZ", T0 + 2 * MIN, 30, usd, 1.0, -1.0).sorted(), cfg)

        assert crash(1e6, warm=False) == []
        assert crash(100_000, warm=True) == []
        assert crash(200_000, warm=True)[0].status == "open"


class TestEventTime:
    def test_out_of_order_within_lateness_gives_identical_states(self) -> None:
        """Events reordered by up to the lateness produce byte-identical cascade states."""
        events = btc_crash().sorted()
        cfg = EngineConfig(lateness_ms=3_000)
        reordered = shuffled_within(events, 3_000)
        assert reordered != events
        assert encoded(run(events, cfg)) == encoded(run(reordered, cfg))

    @pytest.mark.parametrize(("seed", "batch"), [(2, 1), (3, 7), (4, 64), (5, 500)])
    def test_any_jitter_within_lateness_and_any_batching_agree(self, seed: int, batch: int) -> None:
        """Different delivery jitter and batch sizes: the same cascade states, byte for byte."""
        events = btc_crash().sorted()
        cfg = EngineConfig(lateness_ms=2_000)
        assert encoded(run(shuffled_within(events, 2_000, seed), cfg, batch)) == encoded(run(events, cfg))

    def test_batching_does_not_change_output(self) -> None:
        """One event per call or 500 per call: same states in the same order."""
        events = btc_crash().sorted()
        assert encoded(run(events, batch=1)) == encoded(run(events, batch=500))

    def test_replay_is_deterministic_across_engines(self) -> None:
        """Two fresh engines over the same events give identical ids, scores and payloads."""
        events = btc_crash().sorted()
        first, second = run(events), run(events)
        assert first
        assert encoded(first) == encoded(second)

    def test_duplicates_are_ignored(self) -> None:
        """A redelivered or overlapping event (same id) is counted once."""
        events = btc_crash().sorted()
        engine = Engine(EngineConfig())
        out = engine.ingest(events) + engine.ingest(events[-200:]) + engine.drain()
        assert engine.duplicates == 200
        assert encoded(out) == encoded(run(events))

    def test_too_late_event_counts_at_next_tick(self) -> None:
        """An event later than the lateness is not lost: it is counted (late) in the open tick."""
        engine = Engine(EngineConfig(lateness_ms=1_000))
        engine.ingest([liq("SOL", T0 + 10_000, "long", 1_000, 150.0)])
        engine.ingest([liq("SOL", T0 + 20_000, "long", 1_000, 150.0)])
        engine.ingest([liq("SOL", T0 + 12_000, "long", 1_000, 150.0)])
        assert engine.late == 1
        assert sum(1 for r in engine.assets["SOL"].pending if r[0] == T0 + 19_000) == 1

    def test_idle_advance_closes_a_cascade_without_new_events(self) -> None:
        """With no more events, advancing the watermark by wall clock closes the open cascade."""
        engine = Engine(EngineConfig())
        states = engine.ingest(btc_crash().sorted())
        assert states
        assert states[-1].status != "close"
        last = max(e.ts for e in btc_crash().events)
        closed = engine.advance_to(last + 5 * MIN)
        assert [s.status for s in closed] == ["close"]


class TestRingBuffers:
    def test_each_symbol_keeps_its_last_n_events(self) -> None:
        """Ring buffers are per exchange symbol, bounded, oldest overwritten first."""
        engine = Engine(EngineConfig(ring_size=10))
        events = [liq("BTC", T0 + i * 10, "long" if i % 2 else "short", 1_000 + i, BTC_PX) for i in range(25)]
        engine.ingest(events)
        ring = engine.rings.get("bybit", "linear", "BTCUSDT")
        assert ring is not None
        recent = ring.recent()
        assert len(recent) == 10
        assert [T0 + i * 10 for i in range(15, 25)] == [ts for ts, _, _ in recent]
        assert [i % 2 == 1 for i in range(15, 25)] == [usd > 0 for _, _, usd in recent]


def test_a_cascade_adopted_without_replayed_events_closes_instead_of_crashing() -> None:
    """Restart where the stream no longer holds any event of an open cascade's asset (trimmed, or the
    replay cap): the published state is adopted, and a quiet market closes it on later watermark moves
    (this used to raise ValueError from an empty min() in the engine)."""
    states = run(btc_crash().sorted())
    opened = next(s for s in states if s.status == "open")
    engine = Engine(EngineConfig())
    assert engine.reconcile([], {opened.cascade_id: opened}) == []
    later = engine.advance_to(opened.window_end + 10 * MIN)
    assert [(s.cascade_id, s.status, s.seq) for s in later] == [(opened.cascade_id, "close", opened.seq + 1)]


def test_an_open_cascade_is_not_rescored_while_its_window_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """10 ms ticks evaluate an open cascade 100 times a second; the window profile is recomputed only when
    an event entered, left, or stopped being recent (the score depends on nothing else)."""
    from liq_detector.lifecycle import Lifecycle
    from liq_detector.window import AssetWindow

    events = btc_crash().sorted()
    counts = {"scored": 0, "profiled": 0}
    score, profile = Lifecycle._score, AssetWindow.profile

    def counting_score(self: Lifecycle, *args: object) -> None:
        counts["scored"] += 1
        score(self, *args)  # type: ignore[arg-type]

    def counting_profile(self: AssetWindow, recent_since: int) -> object:
        counts["profiled"] += 1
        return profile(self, recent_since)

    monkeypatch.setattr(Lifecycle, "_score", counting_score)
    monkeypatch.setattr(AssetWindow, "profile", counting_profile)
    states = run(events, EngineConfig(tick_ms=10, lateness_ms=0))
    assert states[0].status == "open"
    assert states[-1].status == "close"
    in_window = sum(1 for e in events if e.ts >= states[0].window_start)
    assert counts["scored"] > 5_000  # every 10 ms tick of the open cascade
    assert counts["profiled"] <= 3 * in_window + 10  # each event enters, turns old and leaves once
    assert counts["profiled"] < counts["scored"] / 4
