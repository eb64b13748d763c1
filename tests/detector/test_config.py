"""Settings, per-asset overrides and the price-bucket step."""

from __future__ import annotations

import pytest

from liq_common.settings import SettingsError, load_settings
from liq_detector.config import EngineConfig
from liq_detector.dashboard import nice_step
from liq_detector.settings import Settings


def test_overrides_apply_per_asset() -> None:
    """ASSET_OVERRIDES JSON raises one asset's floor and leaves the others on the global rule."""
    s = load_settings(Settings, {"ASSET_OVERRIDES": '{"btc": {"min_usd": 2000000, "full_move_pct": 1.5}}'})
    cfg = EngineConfig.from_settings(s)
    assert cfg.rule("BTC").min_usd == 2_000_000
    assert cfg.rule("BTC").full_move_pct == 1.5
    assert cfg.rule("BTC").open_multiple == cfg.open_multiple
    assert cfg.rule("PEPE").min_usd == cfg.floor_usd


def test_override_below_floor_keeps_the_floor() -> None:
    """An override can only raise the absolute floor, never lower it below FLOOR_USD."""
    s = load_settings(Settings, {"FLOOR_USD": "80000", "ASSET_OVERRIDES": '{"X": {"min_usd": 1000}}'})
    assert EngineConfig.from_settings(s).rule("X").min_usd == 80_000


@pytest.mark.parametrize(
    "raw", ['{"BTC": {"min_usd": -1}}', '{"BTC": {"minusd": 5}}', "not json", '{"BTC": {"min_usd": "x"}}']
)
def test_bad_overrides_fail_at_load(raw: str) -> None:
    """A typo or bad value in ASSET_OVERRIDES stops start-up with a message naming it."""
    with pytest.raises(SettingsError, match="ASSET_OVERRIDES"):
        load_settings(Settings, {"ASSET_OVERRIDES": raw})


def test_window_must_be_whole_ticks() -> None:
    """Inconsistent window/tick settings are refused."""
    with pytest.raises(ValueError, match="multiples"):
        EngineConfig(window_ms=60_500)


@pytest.mark.parametrize(
    ("price", "step"), [(90_000, 100), (100_000, 100), (3_000, 2), (150, 0.2), (0.2, 0.0002), (0.00002, 2e-8)]
)
def test_bucket_step_is_nice_and_near_a_tenth_of_a_percent(price: float, step: float) -> None:
    """Bucket width: the 1-2-5 step nearest to 0.1 % of the price."""
    assert nice_step(price * 0.001) == pytest.approx(step)
