"""Cascade lifecycle decisions at one tick of one asset: open, rescore, update, close.

The engine (:mod:`.engine`) decides *when* an asset's tick is evaluated; this module decides *what*
happens then, from the asset's window (:mod:`.window`) and the rules of RISK.md: the opening threshold
from the baseline, the six-factor score, and when a state is published.
"""

from __future__ import annotations

import math

from liq_common.events import TIERS, Cascade, tier_for
from liq_detector import risk
from liq_detector.cascade import CascadeBuilder
from liq_detector.config import EngineConfig, Rule
from liq_detector.window import AssetWindow

Out = list[tuple[int, str, int, Cascade]]
"""Published states of one engine call, as (tick end ms, base, seq, state) for ordering."""


class Lifecycle:
    """Opening rule, scoring and publication rules of the cascades, with the per-asset rules cached."""

    def __init__(self, cfg: EngineConfig) -> None:
        self.cfg = cfg
        self._rules: dict[str, Rule] = {}

    def rule(self, base: str) -> Rule:
        """The resolved opening/scoring rule of ``base`` (cached)."""
        rule = self._rules.get(base)
        if rule is None:
            rule = self._rules[base] = self.cfg.rule(base)
        return rule

    def evaluate(self, a: AssetWindow, end: int, out: Out) -> None:
        """The tick ending at ``end`` for ``a``: evict, then open, rescore, update or close its cascade;
        states go to ``out`` as (tick end, base, seq, state)."""
        cfg = self.cfg
        a.evict(end - cfg.window_ms)
        c = a.cascade
        if c is None:
            self._maybe_open(a, end, out)
            return
        self._score(a, c, end)
        if a.usd < c.threshold * cfg.close_fraction:
            if c.quiet_since is None:
                c.quiet_since = end
            if end - c.quiet_since >= cfg.quiet_ms:
                self._emit(c, "close", end, out)
                a.cascade = None
                a.reopen_after = end
                return
        else:
            c.quiet_since = None
        tier_up = TIERS.index(tier_for(c.score)) > TIERS.index(tier_for(c.published_score))
        grown = c.score - c.published_score >= cfg.update_min_delta or (
            cfg.update_usd_growth > 0 and float(c.usd) >= c.published_usd * (1 + cfg.update_usd_growth)
        )
        if tier_up or (grown and end - c.published_tick >= cfg.update_interval_ms):
            self._emit(c, "update", end, out)

    def threshold(self, a: AssetWindow, end: int) -> tuple[float, float, float]:
        """(opening threshold USD, reference USD per window, reference weighted events per window) at ``end``.

        Cold start (RISK.md): with no complete minute of history before the window the asset is only
        observed (threshold infinite); while fewer than ``warmup_minutes`` exist the floor is multiplied
        by ``cold_multiple`` and the baseline is the mean of the minutes seen so far.
        """
        cfg = self.cfg
        rule = self.rule(a.base)
        bl = a.history.baseline(end - cfg.window_ms, cfg.baseline_minutes, cfg.warmup_minutes)
        per_window = cfg.window_ms / 60_000
        floor = rule.min_usd * (cfg.cold_multiple if bl.cold else 1.0)
        threshold = max(floor, rule.open_multiple * bl.usd_per_min * per_window)
        ref_events = max(bl.events_per_min * per_window, cfg.min_events)
        if bl.minutes == 0:
            return math.inf, threshold / rule.open_multiple, ref_events
        return threshold, threshold / rule.open_multiple, ref_events

    def _maybe_open(self, a: AssetWindow, end: int, out: Out) -> None:
        if a.usd < self.rule(a.base).min_usd or a.count < self.cfg.min_events or end <= a.reopen_after:
            return  # cheap reject: the threshold is never below the asset's floor
        minute = (end - self.cfg.window_ms) // 60_000
        if a.threshold_key != minute:
            a.threshold_key, a.threshold = minute, self.threshold(a, end)
        threshold, ref_usd, ref_events = a.threshold
        if a.usd < threshold or threshold <= 0:
            return
        c = CascadeBuilder(a.base, a.events[0][0], threshold, ref_usd, ref_events)
        for rec in a.events:
            c.add(rec[0], rec[5])
        a.cascade = c
        self._score(a, c, end)
        self._emit(c, "open", end, out)

    def _score(self, a: AssetWindow, c: CascadeBuilder, end: int) -> None:
        since = end - self.cfg.accel_ms
        # The score depends only on the window's events, which of them are recent (ts >= since) and the
        # cascade's totals (which change only with new window events). Window events are in ts order, so
        # (first, end, first recent) numbers identify all three; at most ticks of an open cascade nothing
        # moved and the profile scan is skipped.
        events, first = a.events, a.evicted
        stop = first + len(events)
        recent = max(c.recent_at, first)
        while recent < stop and events[recent - first][0] < since:
            recent += 1
        c.recent_at = recent
        key = (first, stop, recent)
        if key == c.scored_key:
            return
        c.scored_key = key
        p = a.profile(since)
        factors = risk.score(risk.measure(self.cfg, p, c, self.rule(a.base).full_move_pct))
        value = risk.total(factors)
        if value > c.score:
            c.score, c.factors = value, factors

    @staticmethod
    def _emit(c: CascadeBuilder, status: str, end: int, out: Out) -> None:
        state = c.state(status)  # type: ignore[arg-type]
        c.published_tick = end
        c.published_score = c.score
        c.published_usd = float(state.usd)
        out.append((end, c.base, state.seq, state))
