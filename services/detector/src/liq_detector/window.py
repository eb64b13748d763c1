"""Per-asset sliding window in event time, and the asset's per-minute baseline.

Events wait in ``pending`` until the watermark passes their tick; they then enter the window in
(event time, event id) order, so the window's contents at every tick do not depend on arrival order.
Only the per-side USD sums run incrementally (the opening rule reads them every tick); the finer
breakdown needed for scoring is recomputed from the events (:meth:`AssetWindow.profile`), and only for
assets with an open cascade.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from liq_common.events import Liquidation
from liq_detector.cascade import CascadeBuilder

Rec = tuple[int, str, float, bool, float, Liquidation]
"""A windowed event: (effective ts ms, event id, USD, is long, weighted count, the event)."""

MINUTE_MS = 60_000
UNSET = -(2**62)
"""``next_tick`` before the asset's first evaluation (below every event time)."""


@dataclass(slots=True)
class Profile:
    """Window totals as [long, short] pairs: USD, weighted event counts, recent USD, USD per exchange."""

    usd: list[float] = field(default_factory=lambda: [0.0, 0.0])
    events: list[float] = field(default_factory=lambda: [0.0, 0.0])
    recent: list[float] = field(default_factory=lambda: [0.0, 0.0])
    by_exchange: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Baseline:
    """Mean per-minute USD and weighted count over the baseline span; ``cold`` while warming up."""

    usd_per_min: float
    events_per_min: float
    minutes: int
    cold: bool


class AssetWindow:
    """State of one base asset: pending events, the window, its USD per side, per-minute totals."""

    __slots__ = (
        "_baseline",
        "_baseline_key",
        "base",
        "cascade",
        "events",
        "first_minute",
        "floor",
        "frozen_through",
        "long_usd",
        "minutes",
        "minutes_changed",
        "next_tick",
        "pending",
        "reopen_after",
        "seen",
        "short_usd",
        "threshold",
        "threshold_key",
    )

    def __init__(self, base: str) -> None:
        self.base = base
        self.pending: list[Rec] = []
        self.events: deque[Rec] = deque()
        self.seen: set[str] = set()
        self.next_tick = UNSET  # start of the first tick not yet evaluated
        self.long_usd = 0.0
        self.short_usd = 0.0
        self.minutes: dict[int, list[float]] = {}  # minute index -> [usd, weighted count]
        self.first_minute: int | None = None
        self.frozen_through = -1  # minutes <= this were restored complete; replayed events do not add to them
        self.minutes_changed = False
        self.cascade: CascadeBuilder | None = None
        self.reopen_after = 0
        self.floor = -1.0  # the asset's absolute floor (USD), set by the engine on first use
        self.threshold_key = -1  # minute of the window start the cached threshold was computed for
        self.threshold: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self._baseline: Baseline | None = None
        self._baseline_key = -1

    @property
    def usd(self) -> float:
        """Total USD in the window."""
        return self.long_usd + self.short_usd

    @property
    def count(self) -> int:
        """Events in the window."""
        return len(self.events)

    def add(self, rec: Rec) -> None:
        """Move one finalized event into the window (events arrive here in ts order)."""
        ts, _, usd, is_long, n, _ = rec
        self.events.append(rec)
        if is_long:
            self.long_usd += usd
        else:
            self.short_usd += usd
        minute = ts // MINUTE_MS
        if minute <= self.frozen_through:
            return
        m = self.minutes.get(minute)
        if m is None:
            m = self.minutes[minute] = [0.0, 0.0]
            if self.first_minute is None or minute < self.first_minute:
                self.first_minute = minute
        m[0] += usd
        m[1] += n

    def evict(self, before: int) -> None:
        """Drop window events with ts < ``before``."""
        events, seen = self.events, self.seen
        while events and events[0][0] < before:
            _, eid, usd, is_long, _, _ = events.popleft()
            seen.discard(eid)
            if is_long:
                self.long_usd -= usd
            else:
                self.short_usd -= usd
        if not events:
            self.long_usd = self.short_usd = 0.0  # reset float drift when the window empties

    def profile(self, recent_since: int) -> Profile:
        """Per-side totals of the window, of its recent part and per exchange, summed in window order.

        Computed from the events at each scoring (only assets with a cascade are scored), which keeps
        the per-event path short and the sums free of add/subtract drift.
        """
        p = Profile()
        by_exchange = p.by_exchange
        for ts, _, usd, is_long, n, ev in self.events:
            side = 0 if is_long else 1
            p.usd[side] += usd
            p.events[side] += n
            if ts >= recent_since:
                p.recent[side] += usd
            ex = by_exchange.get(ev.exchange)
            if ex is None:
                ex = by_exchange[ev.exchange] = [0.0, 0.0]
            ex[side] += usd
        return p

    def baseline(self, window_start: int, span: int, warmup: int) -> Baseline:
        """Mean per-minute totals over the ``span`` minutes before the minute of ``window_start``.

        Minutes without liquidations count as zero; before ``span`` minutes of history exist the mean is
        over the minutes seen so far, and with fewer than ``warmup`` minutes the baseline is ``cold``.
        """
        m0 = window_start // MINUTE_MS
        if m0 == self._baseline_key and self._baseline is not None:
            return self._baseline
        first = self.first_minute if self.first_minute is not None else m0
        n = max(min(span, m0 - first), 0)
        usd = cnt = 0.0
        for minute in range(m0 - n, m0):
            m = self.minutes.get(minute)
            if m is not None:
                usd += m[0]
                cnt += m[1]
        for minute in [k for k in self.minutes if k < m0 - span - 1]:
            del self.minutes[minute]
        self.minutes_changed = True
        self._baseline_key = m0
        self._baseline = Baseline(usd / n if n else 0.0, cnt / n if n else 0.0, n, n < warmup)
        return self._baseline

    def snapshot(self) -> tuple[int, int, dict[int, list[float]]]:
        """(first minute, last complete minute, minute totals up to it) for saving the baseline."""
        through = self._baseline_key - 1
        first = self.first_minute if self.first_minute is not None else through
        return first, through, {k: v for k, v in self.minutes.items() if k <= through}

    def restore(self, first_minute: int, through: int, minutes: dict[int, list[float]]) -> None:
        """Load the complete minutes saved before a restart (call before replaying the stream).

        Replayed events then add only to minutes after ``through``, so nothing is counted twice.
        """
        for minute, values in minutes.items():
            self.minutes[minute] = [float(values[0]), float(values[1])]
        self.first_minute = first_minute if self.first_minute is None else min(self.first_minute, first_minute)
        self.frozen_through = through
        self._baseline_key = -1
        self.threshold_key = -1
