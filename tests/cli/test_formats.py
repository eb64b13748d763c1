"""How ``liq`` writes money, shares and durations, and parses ``--since``."""

from __future__ import annotations

import argparse
from datetime import timedelta
from decimal import Decimal

import pytest

from liq_cli.chart_data import bin_width, nice_step
from liq_cli.durations import parse_duration
from liq_cli.money import age, pct, usd


@pytest.mark.parametrize(
    ("amount", "lower", "text"),
    [
        (Decimal("1234567.891"), False, "$1,234,567.89"),
        (Decimal("0.005"), False, "$0.00"),  # half to even
        (Decimal("0.015"), False, "$0.02"),
        (12, True, "at least $12.00"),
        (1_000_000.1, False, "$1,000,000.10"),
        (Decimal("-5"), False, "-$5.00"),
    ],
)
def test_usd_has_separators_two_decimals_and_lower_bounds(amount: Decimal | float, lower: bool, text: str) -> None:
    """USD: thousands separators, exactly two decimals, 'at least' for lower bounds."""
    assert usd(amount, lower_bound=lower) == text


def test_percentages_and_ages() -> None:
    """Shares are rounded to 2 decimals (0 of nothing is 0); ages are compact."""
    assert pct(Decimal(1), Decimal(3)) == 33.33
    assert pct(Decimal(2), Decimal(3)) == 66.67
    assert pct(Decimal(5), Decimal(0)) == 0.0
    assert [age(s) for s in (5, 185, 7380, 180_000)] == ["5s", "3m 05s", "2h 03m", "2d 02h"]


def test_durations_parse_and_reject() -> None:
    """--since takes a number and a unit; anything else is an argparse error naming the value."""
    assert parse_duration("24h") == timedelta(hours=24)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("1.5d") == timedelta(hours=36)
    for bad in ("24", "h", "-1h", "0s", "3y"):
        with pytest.raises(argparse.ArgumentTypeError, match="invalid duration"):
            parse_duration(bad)


def test_chart_bins_and_price_steps_are_round() -> None:
    """Time bins cut a range into at most 120; price buckets are 1, 2, 2.5 or 5 times a power of ten."""
    assert bin_width(timedelta(hours=1)) == timedelta(minutes=1)
    assert bin_width(timedelta(days=7)) == timedelta(hours=2)
    assert [str(nice_step(r)) for r in (0.0003, 2.3, 47, 120)] == ["0.0005", "2.5", "50", "200"]
