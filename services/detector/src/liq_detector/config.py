"""The engine's configuration: global rules plus per-asset overrides, resolved once per asset."""

from __future__ import annotations

from dataclasses import dataclass, field

from liq_detector.settings import AssetRule, Settings, parse_overrides


@dataclass(frozen=True, slots=True)
class Rule:
    """Opening and scoring parameters of one asset after applying its override."""

    min_usd: float
    open_multiple: float
    full_move_pct: float


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Everything the Sans-I/O engine needs; times in ms of exchange event time.

    See ``Settings`` and RISK.md for the meaning of each value.
    """

    window_ms: int = 60_000
    accel_ms: int = 10_000
    tick_ms: int = 1_000
    lateness_ms: int = 3_000
    ring_size: int = 1_000
    floor_usd: float = 50_000.0
    open_multiple: float = 5.0
    cold_multiple: float = 3.0
    min_events: int = 3
    baseline_minutes: int = 60
    warmup_minutes: int = 10
    close_fraction: float = 0.25
    quiet_ms: int = 30_000
    update_interval_ms: int = 10_000
    update_min_delta: float = 0.1
    update_usd_growth: float = 1.0
    expected_exchanges: int = 2
    breadth_min_share: float = 0.1
    full_move_pct: float = 3.0
    throttled_weight: float = 2.0
    overrides: dict[str, AssetRule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.window_ms % self.tick_ms or self.accel_ms % self.tick_ms or self.accel_ms >= self.window_ms:
            raise ValueError("window_ms and accel_ms must be multiples of tick_ms, and accel_ms < window_ms")

    def rule(self, base: str) -> Rule:
        """The resolved rule of ``base`` (the override's fields win where set)."""
        o = self.overrides.get(base)
        if o is None:
            return Rule(self.floor_usd, self.open_multiple, self.full_move_pct)
        return Rule(
            max(self.floor_usd, o.min_usd if o.min_usd is not None else 0.0),
            o.open_multiple if o.open_multiple is not None else self.open_multiple,
            o.full_move_pct if o.full_move_pct is not None else self.full_move_pct,
        )

    @classmethod
    def from_settings(cls, s: Settings) -> EngineConfig:
        """Build the engine configuration from the service settings."""
        names = [f for f in cls.__dataclass_fields__ if f != "overrides"]
        values = {name: getattr(s, name) for name in names}
        return cls(**values, overrides=parse_overrides(s.asset_overrides))
