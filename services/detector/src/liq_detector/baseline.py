"""An asset's per-minute liquidation history and the baseline computed from it.

The opening threshold compares a window with what is normal for the asset: the mean USD and weighted
event count per minute over the preceding ``BASELINE_MINUTES`` (RISK.md). Minutes are summed as events
enter the window (:mod:`.window`) and saved to Redis so a restart does not start cold; restored minutes
are frozen, so replayed events never count twice.
"""

from __future__ import annotations

from dataclasses import dataclass

MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class Baseline:
    """Mean per-minute USD and weighted count over the baseline span; ``cold`` while warming up."""

    usd_per_min: float
    events_per_min: float
    minutes: int
    cold: bool


class MinuteHistory:
    """Per-minute totals of one asset: minute index (ms // 60,000) -> [USD, weighted count]."""

    __slots__ = ("_cached", "_key", "changed", "first", "frozen_through", "minutes")

    def __init__(self) -> None:
        self.minutes: dict[int, list[float]] = {}
        self.first: int | None = None  # earliest minute seen or restored
        self.frozen_through = -1  # minutes <= this were restored complete; replayed events do not add to them
        self.changed = False  # the baseline moved since the engine last saved it
        self._cached: Baseline | None = None
        self._key = -1  # minute of the window start the cached baseline is for

    def new_minute(self, minute: int) -> list[float]:
        """The zeroed totals of a minute not seen before (the caller adds to them)."""
        m = self.minutes[minute] = [0.0, 0.0]
        if self.first is None or minute < self.first:
            self.first = minute
        return m

    def baseline(self, window_start: int, span: int, warmup: int) -> Baseline:
        """Mean per-minute totals over the ``span`` minutes before the minute of ``window_start``.

        Minutes without liquidations count as zero; before ``span`` minutes of history exist the mean is
        over the minutes seen so far, and with fewer than ``warmup`` minutes the baseline is ``cold``.
        """
        m0 = window_start // MINUTE_MS
        if m0 == self._key and self._cached is not None:
            return self._cached
        first = self.first if self.first is not None else m0
        n = max(min(span, m0 - first), 0)
        usd = cnt = 0.0
        for minute in range(m0 - n, m0):
            m = self.minutes.get(minute)
            if m is not None:
                usd += m[0]
                cnt += m[1]
        for minute in [k for k in self.minutes if k < m0 - span - 1]:
            del self.minutes[minute]
        self.changed = True
        self._key = m0
        self._cached = Baseline(usd / n if n else 0.0, cnt / n if n else 0.0, n, n < warmup)
        return self._cached

    def snapshot(self) -> tuple[int, int, dict[int, list[float]]]:
        """(first minute, last complete minute, minute totals up to it) for saving the baseline."""
        through = self._key - 1
        first = self.first if self.first is not None else through
        return first, through, {k: v for k, v in self.minutes.items() if k <= through}

    def restore(self, first_minute: int, through: int, minutes: dict[int, list[float]]) -> None:
        """Load the complete minutes saved before a restart (call before replaying the stream).

        Replayed events then add only to minutes after ``through``, so nothing is counted twice.
        """
        for minute, values in minutes.items():
            self.minutes[minute] = [float(values[0]), float(values[1])]
        self.first = first_minute if self.first is None else min(self.first, first_minute)
        self.frozen_through = through
        self._key = -1
