"""Per-asset sliding window in event time (its per-minute history is in :mod:`.baseline`).

Events wait in ``pending`` until the watermark passes their tick; they then enter the window in
(event time, event id) order, so the window's contents at every tick do not depend on arrival order.
Only the per-side USD sums run incrementally (the opening rule reads them every tick); the finer
breakdown needed for scoring is recomputed from the events (:meth:`AssetWindow.profile`), and only for
assets with an open cascade.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from itertools import islice

from liq_common.events import Liquidation
from liq_detector.baseline import MINUTE_MS, MinuteHistory
from liq_detector.cascade import CascadeBuilder
from liq_detector.ring import SymbolRing

Rec = tuple[int, str, float, bool, float, Liquidation]
"""A windowed event: (effective ts ms, event id, USD, is long, weighted count, the event)."""

UNSET = -(2**62)
"""``next_tick`` before the asset's first evaluation (below every event time)."""
_NO_MINUTE = [0.0, 0.0]  # scratch totals for "no minute loaded yet" (written, never read)
END: Rec = (2**62, "", 0.0, False, 0.0, None)  # type: ignore[assignment]
"""Sentinel closing the record list given to :meth:`AssetWindow.add_quiet` (after every event time)."""


@dataclass(slots=True)
class Profile:
    """Window totals as [long, short] pairs: USD, weighted event counts, recent USD, USD per exchange."""

    usd: list[float] = field(default_factory=lambda: [0.0, 0.0])
    events: list[float] = field(default_factory=lambda: [0.0, 0.0])
    recent: list[float] = field(default_factory=lambda: [0.0, 0.0])
    by_exchange: dict[str, list[float]] = field(default_factory=dict)


class AssetWindow:
    """State of one base asset: pending events, the window, its USD per side, per-minute totals."""

    __slots__ = (
        "base",
        "cascade",
        "events",
        "evicted",
        "feeds",
        "floor",
        "history",
        "long_usd",
        "next_tick",
        "pending",
        "reopen_after",
        "ring",
        "seen",
        "short_usd",
        "threshold",
        "threshold_key",
    )

    def __init__(self, base: str) -> None:
        self.base = base
        self.pending: list[Rec] = []
        self.events: deque[Rec] = deque()
        self.evicted = 0
        """Records :meth:`evict` dropped so far: ``evicted + i`` numbers ``events[i]`` while a cascade is open
        (the only time it is read: the engine's scoring cache; :meth:`add_quiet` runs only when none is)."""
        self.seen: set[str] = set()
        self.feeds: set[str] = set()
        """Feeds (``exchange:market``) that carried this asset: a cascade's coverage is reported for them."""
        self.next_tick = UNSET  # start of the first tick not yet evaluated
        self.long_usd = 0.0
        self.short_usd = 0.0
        self.history = MinuteHistory()
        self.cascade: CascadeBuilder | None = None
        self.reopen_after = 0
        self.floor = -1.0  # the asset's absolute floor (USD), set by the engine on first use
        self.threshold_key = -1  # minute of the window start the cached threshold was computed for
        self.threshold: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.ring: SymbolRing | None = None  # the engine's cache: ring buffer of the last event's symbol

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
        history = self.history
        if minute <= history.frozen_through:
            return
        m = history.minutes.get(minute) or history.new_minute(minute)
        m[0] += usd
        m[1] += n

    def take_due(self, end: int) -> list[Rec]:
        """Remove and return the pending records of ticks before ``end``, in (event time, event id) order."""
        pending = self.pending
        if not pending:
            return []
        pending.sort()  # by (ts, event id): ids are unique per asset, so later fields are never compared
        if pending[-1][0] < end:  # usually everything pending is due
            self.pending = []
            return pending
        k = bisect_left(pending, (end,))  # (end,) sorts before every record of time ``end``
        self.pending = pending[k:]
        return pending[:k]

    def add_quiet(
        self, recs: list[Rec], i: int, group: int, tick: int, window_ms: int, min_events: int
    ) -> tuple[int, int]:
        """Move ``recs[i:]`` into the window tick by tick while no cascade is open.

        ``recs`` is sorted and ends with :data:`END` (not an event). ``group`` is the start (ms) of the
        tick the window is filling (-1 for none). Each completed tick (the next record starts a later
        one, or ``END`` comes) is checked as the engine checks a tick: evict what left the window, then
        the cheap opening rejects (:meth:`rejects`). Returns ``(index, start)`` at the first completed
        tick that passes them, which the engine then evaluates (``index`` is the first record after it),
        or ``(index of END, -1)`` when every tick was rejected.

        This is :meth:`add`, :meth:`evict` and :meth:`rejects` inlined, with the same float operations
        in the same order, because it runs once per event: sums and the current minute's totals live in
        locals meanwhile.
        """
        events, history = self.events, self.history
        minutes, new_minute = history.minutes, history.new_minute
        popleft, append, discard = events.popleft, events.append, self.seen.discard
        floor, frozen = self.floor, history.frozen_through
        # The cached threshold applies while the window start is in minute ``threshold_key``.
        key_lo = self.threshold_key * MINUTE_MS
        key_hi = key_lo + MINUTE_MS
        cached = self.threshold[0]
        long_usd, short_usd = self.long_usd, self.short_usd
        offset = tick - window_ms  # window start of a tick = its start + offset
        m_end = UNSET  # end of the minute being added to; its totals are m_usd, m_n
        m_cell = _NO_MINUTE
        m_usd = m_n = 0.0
        if group < 0:
            first = recs[i][0]
            group = first - first % tick
        for rec in islice(recs, i, None) if i else recs:
            ts, _, usd, is_long, weight, _ = rec
            start = ts - ts % tick
            if start != group:
                before = group + offset
                # The window keeps at least the events of tick ``group``: no emptiness check needed.
                while events[0][0] < before:
                    _, eid, old_usd, old_long, _, _ = popleft()
                    discard(eid)
                    if old_long:
                        long_usd -= old_usd
                    else:
                        short_usd -= old_usd
                total = long_usd + short_usd
                if not ((key_lo <= before < key_hi and total < cached) or total < floor or len(events) < min_events):
                    m_cell[0], m_cell[1] = m_usd, m_n
                    self.long_usd, self.short_usd = long_usd, short_usd
                    # Found by identity (the records are distinct tuples); a tick that may open is rare.
                    return recs.index(rec, i), group
                if rec is END:
                    m_cell[0], m_cell[1] = m_usd, m_n
                    self.long_usd, self.short_usd = long_usd, short_usd
                    return len(recs) - 1, -1
                group = start
            append(rec)
            if is_long:
                long_usd += usd
            else:
                short_usd += usd
            if ts >= m_end:  # a later minute: store the totals of the last one, load this one's
                m_cell[0], m_cell[1] = m_usd, m_n
                minute = ts // MINUTE_MS
                m_end = (minute + 1) * MINUTE_MS
                # A minute restored complete before a restart gets scratch totals: replays do not add to it.
                m_cell = (minutes.get(minute) or new_minute(minute)) if minute > frozen else [0.0, 0.0]
                m_usd, m_n = m_cell
            m_usd += usd
            m_n += weight
        raise AssertionError("records must end with END")

    def rejects(self, window_start: int, min_events: int) -> bool:
        """True when the window (evicted to ``window_start``) cannot open a cascade: below the asset's
        floor, fewer than ``min_events`` events, or below the threshold cached for this window start."""
        total = self.long_usd + self.short_usd
        return (
            total < self.floor
            or len(self.events) < min_events
            or (self.threshold_key == window_start // MINUTE_MS and total < self.threshold[0])
        )

    def evict(self, before: int) -> None:
        """Drop window events with ts < ``before``."""
        events, seen = self.events, self.seen
        while events and events[0][0] < before:
            _, eid, usd, is_long, _, _ = events.popleft()
            self.evicted += 1
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

    def restore(self, first_minute: int, through: int, minutes: dict[int, list[float]]) -> None:
        """Load the complete minutes saved before a restart (see :meth:`MinuteHistory.restore`)."""
        self.history.restore(first_minute, through, minutes)
        self.threshold_key = -1
