"""Settings of liq-detector, read from the environment once in ``main``.

Every field is an environment variable of the same name in upper case (``WINDOW_MS``, ``FLOOR_USD``...).
``ASSET_OVERRIDES`` is JSON, e.g. ``{"BTC": {"min_usd": 2000000}}``; it is validated at load time so a
typo stops the service with exit status 2 instead of being ignored.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from liq_common.settings import CommonSettings, Port, PositiveFloat, PositiveInt
from liq_detector.shard import group_name

NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
Fraction = Annotated[float, msgspec.Meta(gt=0, le=1)]


class AssetRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per-asset override of the opening rule and scoring (any field left out keeps the global value).

    Attributes:
        min_usd: Absolute floor of window USD for this asset, replacing ``FLOOR_USD`` when higher.
        open_multiple: Window USD must reach this multiple of the baseline USD per window.
        full_move_pct: Price move (%) that earns the full displacement factor on this asset.
    """

    min_usd: Annotated[float, msgspec.Meta(ge=0)] | None = None
    open_multiple: PositiveFloat | None = None
    full_move_pct: PositiveFloat | None = None


_overrides_decoder = msgspec.json.Decoder(dict[str, AssetRule])


def parse_overrides(text: str) -> dict[str, AssetRule]:
    """Decode ``ASSET_OVERRIDES`` JSON; keys are base assets (upper-cased).

    Raises:
        ValueError: Not JSON, or a rule has an unknown field or a bad value.
    """
    try:
        rules = _overrides_decoder.decode(text or "{}")
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ValueError(f"ASSET_OVERRIDES: {exc}") from exc
    return {base.upper(): rule for base, rule in rules.items()}


class Settings(CommonSettings, frozen=True, kw_only=True, rename="upper"):
    """liq-detector settings; README.md lists each with its meaning and unit.

    Times are milliseconds of EXCHANGE event time unless the name says wall clock (``idle_ms``).
    """

    metrics_port: Port = 9103
    group: str = "detector"
    consumer: str = "detector-1"
    batch_size: PositiveInt = 5000
    # sharding by base asset (shard.py): this process owns the assets with crc32(base) % SHARD_COUNT = SHARD_INDEX
    shard_count: PositiveInt = 1
    shard_index: NonNegativeInt = 0
    # windows and event time
    window_ms: PositiveInt = 60_000
    accel_ms: PositiveInt = 10_000
    tick_ms: PositiveInt = 1_000
    lateness_ms: NonNegativeInt = 3_000
    idle_ms: PositiveInt = 5_000
    idle_speed: PositiveFloat = 1.0
    ring_size: PositiveInt = 1_000
    # opening rule and baselines
    floor_usd: Annotated[float, msgspec.Meta(ge=0)] = 50_000.0
    open_multiple: PositiveFloat = 5.0
    cold_multiple: PositiveFloat = 3.0
    min_events: PositiveInt = 3
    baseline_minutes: PositiveInt = 60
    warmup_minutes: NonNegativeInt = 10
    asset_overrides: str = '{"BTC": {"min_usd": 1000000}, "ETH": {"min_usd": 500000}}'
    # lifecycle
    close_fraction: Fraction = 0.25
    quiet_ms: PositiveInt = 30_000
    update_interval_ms: NonNegativeInt = 10_000
    update_min_delta: Annotated[float, msgspec.Meta(ge=0)] = 0.1
    update_usd_growth: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    # scoring
    expected_exchanges: PositiveInt = 2
    breadth_min_share: Fraction = 0.1
    full_move_pct: PositiveFloat = 3.0
    throttled_weight: Annotated[float, msgspec.Meta(ge=1)] = 2.0
    # dashboard state
    dash_prefix: str = "liq:dash:"
    dash_ttl_s: PositiveInt = 3_600
    dash_flush_ms: NonNegativeInt = 1_000
    bucket_pct: PositiveFloat = 0.1
    large_usd: Annotated[float, msgspec.Meta(ge=0)] = 100_000.0
    large_keep: PositiveInt = 200
    # restart
    rebuild_max_ms: PositiveInt = 15 * 60_000
    # feed health: wall-clock ms between two reads of the feed-status stream (coverage)
    feed_refresh_ms: PositiveInt = 1_000

    def __post_init__(self) -> None:
        parse_overrides(self.asset_overrides)  # fail at load time, not on the first event
        if self.shard_index >= self.shard_count:
            raise ValueError(f"SHARD_INDEX {self.shard_index} must be below SHARD_COUNT {self.shard_count}")

    @property
    def consumer_group(self) -> str:
        """The events-stream group of this process: ``GROUP``, or ``GROUP.{SHARD_INDEX}of{SHARD_COUNT}`` when
        sharded (each shard reads every entry, so each needs its own group; see ``shard.group_name``)."""
        return group_name(self.group, self.shard_index, self.shard_count)
