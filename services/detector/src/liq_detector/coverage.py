"""Coverage: the fraction of a cascade's window each feed was connected, from the feed-status stream.

The ingestors publish each connection slot's lifecycle (:class:`~liq_common.events.FeedStatus`). An
outage of a slot runs from ``disconnected`` (or, for a silent connection, from ``since_ts``, when its
data stopped) to the next ``connected`` / ``reconnected``. A feed (``exchange:market``) is counted as
down while ANY of its slots is down: a Bybit shard that is away loses part of the symbols, so the
feed's totals are incomplete for that time.

Outage times are the ingestors' wall clocks while cascade windows are exchange event times; the two
differ by the exchange lag (tens of ms), negligible against outages of seconds.
"""

from __future__ import annotations

from collections.abc import Iterable

from liq_common.events import FeedStatus

OPENS = frozenset({"disconnected", "silent"})
CLOSES = frozenset({"connected", "reconnected"})

Slot = tuple[str, str, str]


class FeedTimeline:
    """Outage intervals per connection slot, and per-feed coverage of a time window.

    Args:
        keep_ms: Closed outages that ended more than this long before the newest event are dropped.
    """

    def __init__(self, keep_ms: int) -> None:
        self.keep_ms = keep_ms
        self.outages: dict[Slot, list[list[int | None]]] = {}
        self.newest = 0

    def apply(self, event: FeedStatus) -> None:
        """Take one lifecycle event into account (events of a slot arrive in order)."""
        self.newest = max(self.newest, event.ts)
        spans = self.outages.setdefault((event.exchange, event.market, event.conn), [])
        is_open = bool(spans) and spans[-1][1] is None
        if event.status in OPENS:
            start = event.since_ts if event.status == "silent" and event.since_ts else event.ts
            if not is_open:
                spans.append([start, None])
            elif spans[-1][0] is not None and start < spans[-1][0]:
                spans[-1][0] = start
        elif event.status in CLOSES and is_open:
            spans[-1][1] = event.ts

    def prune(self) -> None:
        """Forget closed outages older than ``keep_ms`` before the newest event."""
        horizon = self.newest - self.keep_ms
        for slot, spans in list(self.outages.items()):
            kept = [s for s in spans if s[1] is None or s[1] >= horizon]
            if kept:
                self.outages[slot] = kept
            else:
                del self.outages[slot]

    def down(self, feed: str, start: int, end: int) -> list[tuple[int, int]]:
        """Merged outage intervals of ``feed`` (``exchange:market``) clipped to ``[start, end]``."""
        exchange, _, market = feed.partition(":")
        clipped: list[tuple[int, int]] = []
        for (ex, mk, _), spans in self.outages.items():
            if ex != exchange or mk != market:
                continue
            for s0, s1 in spans:
                lo = max(start, s0 if s0 is not None else start)
                hi = min(end, s1 if s1 is not None else end)
                if lo < hi or (lo == hi and s0 is not None and s0 <= lo and (s1 is None or lo < s1)):
                    clipped.append((lo, hi))
        clipped.sort()
        merged: list[tuple[int, int]] = []
        for lo, hi in clipped:
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        return merged

    def coverage(self, feeds: Iterable[str], start: int, end: int) -> dict[str, float]:
        """Per feed, the fraction of ``[start, end]`` (ms) it was connected, rounded to 4 places.

        A zero-length window is covered (1.0) unless its one instant falls inside an outage (0.0).
        """
        out: dict[str, float] = {}
        length = end - start
        for feed in sorted(set(feeds)):
            spans = self.down(feed, start, end)
            if length <= 0:
                out[feed] = 0.0 if spans else 1.0
                continue
            missing = sum(hi - lo for lo, hi in spans)
            out[feed] = round(max(0.0, 1.0 - missing / length), 4)
        return out
