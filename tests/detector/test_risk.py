"""Each risk factor on its own: range, zero point, full point and direction (RISK.md)."""

from __future__ import annotations

import pytest

from liq_common.events import RiskFactors
from liq_detector import risk


class TestSize:
    def test_zero_at_or_below_reference(self) -> None:
        """No size score until net USD exceeds the asset's reference."""
        assert risk.size(100_000, 100_000) == 0.0
        assert risk.size(50_000, 100_000) == 0.0

    def test_log_scale_and_cap(self) -> None:
        """Half weight at 10x, full weight at 100x, capped at twice the weight."""
        assert pytest.approx(risk.W_SIZE * 0.5) == risk.size(1_000_000, 100_000)
        assert pytest.approx(risk.W_SIZE) == risk.size(10_000_000, 100_000)
        assert pytest.approx(2 * risk.W_SIZE) == risk.size(1e12, 100_000)


class TestIntensity:
    def test_scales_with_count_ratio(self) -> None:
        """More net events than the baseline raise the factor, capped at the weight."""
        assert risk.intensity(3, 3) == 0.0
        assert pytest.approx(risk.W_INTENSITY * 0.5) == risk.intensity(30, 3)
        assert pytest.approx(risk.W_INTENSITY) == risk.intensity(30_000, 3)


class TestAcceleration:
    def test_full_when_recent_rate_is_four_times_earlier(self) -> None:
        """A one-sided flow speeding up 4x earns the full weight."""
        assert pytest.approx(risk.W_ACCELERATION) == risk.acceleration(4_000, 1_000, 10, 1.0)

    def test_steady_or_slowing_flow_scores_zero(self) -> None:
        """Same or lower rate than before: no acceleration."""
        assert risk.acceleration(1_000, 1_000, 10, 1.0) == 0.0
        assert risk.acceleration(500, 1_000, 10, 1.0) == 0.0

    def test_burst_out_of_silence_uses_reference_rate(self) -> None:
        """With nothing earlier the reference rate is the denominator, not zero."""
        assert pytest.approx(risk.W_ACCELERATION * 0.5) == risk.acceleration(25, 0, 10, 1.0)

    def test_two_sided_recent_flow_is_discounted(self) -> None:
        """A burst of balanced chop does not count as acceleration."""
        assert risk.acceleration(4_000, 1_000, 10, 0.0) == 0.0
        assert pytest.approx(risk.W_ACCELERATION * 0.5) == risk.acceleration(4_000, 1_000, 10, 0.5)


class TestBreadth:
    def test_one_exchange_scores_zero_two_score_full(self) -> None:
        """Breadth counts exchanges beyond the first, scaled by the imbalance."""
        assert risk.breadth(1, 2, 1.0) == 0.0
        assert pytest.approx(risk.W_BREADTH) == risk.breadth(2, 2, 1.0)
        assert pytest.approx(risk.W_BREADTH / 2) == risk.breadth(2, 3, 1.0)
        assert risk.breadth(2, 2, 0.0) == 0.0

    def test_single_expected_exchange_never_scores(self) -> None:
        """With only one venue configured breadth is meaningless and stays 0."""
        assert risk.breadth(1, 1, 1.0) == 0.0


class TestOneSidedness:
    def test_balanced_flow_scores_zero(self) -> None:
        """50/50 and 75/25 are chop; only stronger imbalance scores."""
        assert risk.one_sidedness(1_000, 1_000) == 0.0
        assert risk.one_sidedness(750, 250) == 0.0
        assert pytest.approx(risk.W_ONE_SIDEDNESS * 0.6) == risk.one_sidedness(900, 100)

    def test_all_one_side_is_full_either_side(self) -> None:
        """Only longs or only shorts earn the full weight."""
        assert pytest.approx(risk.W_ONE_SIDEDNESS) == risk.one_sidedness(1_000, 0)
        assert pytest.approx(risk.W_ONE_SIDEDNESS) == risk.one_sidedness(0, 1_000)
        assert risk.one_sidedness(0, 0) == 0.0


class TestDisplacement:
    def test_move_in_liquidation_direction(self) -> None:
        """Long liquidations with a falling price score; full at full_move_pct, capped at 1.5x."""
        assert pytest.approx(risk.W_DISPLACEMENT) == risk.displacement(-3.0, True, 3.0)
        assert pytest.approx(risk.W_DISPLACEMENT * 1.5) == risk.displacement(-30.0, True, 3.0)
        assert pytest.approx(risk.W_DISPLACEMENT) == risk.displacement(3.0, False, 3.0)

    def test_move_against_direction_scores_zero(self) -> None:
        """A rising price does not confirm a long cascade."""
        assert risk.displacement(2.0, True, 3.0) == 0.0


def test_score_is_the_sum_of_the_factors() -> None:
    """The published score is the rounded sum of the six weighted factors."""
    f = RiskFactors(size=0.5, intensity=0.2, acceleration=0.1, breadth=0.2, one_sidedness=0.3, displacement=0.05)
    assert risk.total(f) == 1.35


def test_score_from_inputs_rounds_each_factor() -> None:
    """score() fills every factor from the measured inputs, rounded to 4 decimals."""
    f = risk.score(
        risk.RiskInputs(
            net_usd=1_000_000,
            ref_usd=100_000,
            net_events=30,
            ref_events=3,
            recent_usd_s=4_000,
            earlier_usd_s=1_000,
            ref_usd_s=10,
            recent_imbalance=1.0,
            active_exchanges=2,
            expected_exchanges=2,
            long_usd=1_000_000,
            short_usd=0,
            move_pct=-1.5,
            full_move_pct=3.0,
        )
    )
    assert (
        RiskFactors(size=0.3, intensity=0.15, acceleration=0.2, breadth=0.2, one_sidedness=0.3, displacement=0.2) == f
    )
