"""The risk score: six weighted factors whose sum is the score (RISK.md is the specification).

Every factor is a pure function of numbers the engine measures, returns its already-weighted value and
is clamped to a documented range, so each one is unit-tested on its own. Net flow (the dominant side
minus the opposite side) feeds size, intensity and acceleration: two-sided liquidations are chop, not a
cascade, and cancel out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from liq_common.events import RiskFactors

if TYPE_CHECKING:
    from liq_detector.cascade import CascadeBuilder
    from liq_detector.config import EngineConfig
    from liq_detector.window import Profile

W_SIZE = 0.6
"""Weight of size; the factor reaches W_SIZE at 100x the reference and is capped at 2 x W_SIZE (10,000x)."""
W_INTENSITY = 0.3
"""Weight of intensity; full at 100x the baseline event count."""
W_ACCELERATION = 0.2
"""Weight of acceleration; full when the recent USD rate is 4x the earlier rate."""
W_BREADTH = 0.2
"""Weight of cross-exchange breadth; full when every expected exchange carries the flow."""
W_ONE_SIDEDNESS = 0.3
"""Weight of one-sidedness; 0 at a 75/25 split or more balanced, full when one side only."""
W_DISPLACEMENT = 0.4
"""Weight of price displacement; full at ``full_move_pct`` in the liquidation direction, capped at 1.5x."""


def _log_ratio(value: float, ref: float) -> float:
    """log10(value / ref) / 2, i.e. 0 at 1x, 0.5 at 10x, 1 at 100x; 0 below 1x."""
    if value <= ref or ref <= 0:
        return 0.0
    return math.log10(value / ref) / 2.0


def size(net_usd: float, ref_usd: float) -> float:
    """Net one-sided USD in the window against the asset's reference USD per window (0 to 1.2)."""
    return W_SIZE * min(_log_ratio(net_usd, ref_usd), 2.0)


def intensity(net_events: float, ref_events: float) -> float:
    """Net one-sided event count in the window (throttled events weighted) against the baseline (0 to 0.3)."""
    return W_INTENSITY * min(_log_ratio(net_events, ref_events), 1.0)


def acceleration(recent_usd_s: float, earlier_usd_s: float, ref_usd_s: float, recent_imbalance: float) -> float:
    """Net USD/s in the last ``accel_ms`` against the rest of the window (0 to 0.2).

    The earlier rate is floored at the reference rate so a burst out of silence counts as fast, not as
    a division by zero. The result is scaled by the imbalance of that recent flow, so a burst of
    two-sided chop does not read as acceleration.
    """
    base = max(earlier_usd_s, ref_usd_s)
    if base <= 0:
        return 0.0
    ratio = recent_usd_s / base
    return W_ACCELERATION * min(max((ratio - 1.0) / 3.0, 0.0), 1.0) * min(max(recent_imbalance, 0.0), 1.0)


def breadth(active_exchanges: int, expected_exchanges: int, imbalance: float) -> float:
    """Exchanges carrying the dominant flow, scaled by the imbalance (0 to 0.2).

    ``imbalance`` is ``|long - short| / (long + short)``: chop on two venues is not a cross-exchange
    cascade.
    """
    if expected_exchanges <= 1:
        return 0.0
    share = min(max((active_exchanges - 1) / (expected_exchanges - 1), 0.0), 1.0)
    return W_BREADTH * share * imbalance


def one_sidedness(long_usd: float, short_usd: float) -> float:
    """How one-sided the liquidated USD is (0 to 0.3): 0 at 75/25 or more balanced, full at 100/0."""
    total = long_usd + short_usd
    if total <= 0:
        return 0.0
    imbalance = abs(long_usd - short_usd) / total
    return W_ONE_SIDEDNESS * max((imbalance - 0.5) / 0.5, 0.0)


def displacement(move_pct: float, longs_dominate: bool, full_move_pct: float) -> float:
    """Price move in the direction the liquidations push it (0 to 0.6).

    Liquidated longs are sold into the market, so a falling price confirms a long cascade; a move the
    other way scores 0.
    """
    directional = -move_pct if longs_dominate else move_pct
    return W_DISPLACEMENT * min(max(directional / full_move_pct, 0.0), 1.5)


@dataclass(frozen=True, slots=True)
class RiskInputs:
    """What the engine measured at one tick; USD in dollars, rates per second, counts as weighted counts."""

    net_usd: float
    ref_usd: float
    net_events: float
    ref_events: float
    recent_usd_s: float
    earlier_usd_s: float
    ref_usd_s: float
    recent_imbalance: float
    active_exchanges: int
    expected_exchanges: int
    long_usd: float
    short_usd: float
    move_pct: float
    full_move_pct: float


def measure(cfg: EngineConfig, p: Profile, c: CascadeBuilder, full_move_pct: float) -> RiskInputs:
    """The inputs for cascade ``c`` from its window's profile ``p`` (recent = the last ``accel_ms``).

    The dominant side is the one with more liquidated USD in the cascade; net figures are dominant minus
    opposite; an exchange counts as active when its net dominant flow is at least ``breadth_min_share``
    of the window's net flow.
    """
    long_total, short_total = float(c.long.usd), float(c.short.usd)
    dom = 0 if long_total >= short_total else 1
    opp = 1 - dom
    net = max(p.usd[dom] - p.usd[opp], 0.0)
    recent_net = max(p.recent[dom] - p.recent[opp], 0.0)
    recent_all = p.recent[dom] + p.recent[opp]
    earlier_net = max((p.usd[dom] - p.recent[dom]) - (p.usd[opp] - p.recent[opp]), 0.0)
    active = sum(1 for v in p.by_exchange.values() if net > 0 and v[dom] - v[opp] >= cfg.breadth_min_share * net)
    return RiskInputs(
        net_usd=net,
        ref_usd=c.ref_usd,
        net_events=max(p.events[dom] - p.events[opp], 0.0),
        ref_events=c.ref_events,
        recent_usd_s=recent_net / (cfg.accel_ms / 1000),
        recent_imbalance=recent_net / recent_all if recent_all > 0 else 0.0,
        earlier_usd_s=earlier_net / ((cfg.window_ms - cfg.accel_ms) / 1000),
        ref_usd_s=c.ref_usd / (cfg.window_ms / 1000),
        active_exchanges=active,
        expected_exchanges=cfg.expected_exchanges,
        long_usd=long_total,
        short_usd=short_total,
        move_pct=c.move_pct,
        full_move_pct=full_move_pct,
    )


def score(i: RiskInputs) -> RiskFactors:
    """All six factors, each rounded to 4 decimals so replays compare byte for byte."""
    total = i.long_usd + i.short_usd
    imbalance = abs(i.long_usd - i.short_usd) / total if total > 0 else 0.0
    return RiskFactors(
        size=round(size(i.net_usd, i.ref_usd), 4),
        intensity=round(intensity(i.net_events, i.ref_events), 4),
        acceleration=round(acceleration(i.recent_usd_s, i.earlier_usd_s, i.ref_usd_s, i.recent_imbalance), 4),
        breadth=round(breadth(i.active_exchanges, i.expected_exchanges, imbalance), 4),
        one_sidedness=round(one_sidedness(i.long_usd, i.short_usd), 4),
        displacement=round(displacement(i.move_pct, i.long_usd >= i.short_usd, i.full_move_pct), 4),
    )


def total(f: RiskFactors) -> float:
    """The score: the sum of the weighted factors, rounded to 4 decimals."""
    return round(f.size + f.intensity + f.acceleration + f.breadth + f.one_sidedness + f.displacement, 4)
