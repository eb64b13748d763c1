"""The Sans-I/O cascade engine: liquidations in, cascade states out.

Time is exchange event time. The watermark is the newest event time seen minus ``lateness_ms`` (or a
value the caller passes to :meth:`Engine.advance_to` when the stream is idle); a tick ``[t, t+tick)`` is
evaluated once the watermark passes its end, with every event of that tick in the window, in
(event time, event id) order. So the output depends only on the events, not on their arrival order
within the lateness nor on how they were batched, and replaying the same events gives the same states.
States of one call are ordered by (tick, base, seq), which makes the output order batch-independent too.

An asset is evaluated at every tick in which it had liquidations, and at every tick while it has an
open cascade (so a cascade closes even when its market goes quiet).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from liq_common.events import Cascade, Liquidation
from liq_detector import recovery
from liq_detector.cascade import CascadeBuilder
from liq_detector.config import EngineConfig, Rule
from liq_detector.lifecycle import Lifecycle, Out
from liq_detector.ring import SymbolRings
from liq_detector.window import END, UNSET, AssetWindow

_NEVER = -(2**62)


class Engine:
    """Per-asset windows, baselines, ring buffers and open cascades, driven by events and the watermark."""

    def __init__(self, cfg: EngineConfig) -> None:
        self.cfg = cfg
        self.assets: dict[str, AssetWindow] = {}
        self.rings = SymbolRings(cfg.ring_size)
        self.max_ts = _NEVER
        self.watermark = _NEVER
        self.late = 0
        self.duplicates = 0
        self.accepted: list[tuple[Liquidation, float, float]] = []
        """(event, USD, price) of the last ``ingest`` call's non-duplicate events, for the dashboard."""
        self._active: dict[str, AssetWindow] = {}
        """Assets evaluated on every watermark move: pending events or an open cascade."""
        self.lifecycle = Lifecycle(cfg)
        self._tick_ms, self._window_ms, self._min_events = cfg.tick_ms, cfg.window_ms, cfg.min_events

    # --- input ------------------------------------------------------------------------------------
    def ingest(self, events: Iterable[Liquidation]) -> list[Cascade]:
        """Add liquidations and evaluate every tick the new watermark completes.

        Duplicates (same ``event_id`` still in the window) are ignored; an event older than its asset's
        last evaluated tick (later than the lateness allows) counts at the next tick and in ``late``.
        """
        accepted: list[tuple[Liquidation, float, float]] = []
        self.accepted = accepted
        assets, active = self.assets, self._active
        asset_of, accept = assets.get, accepted.append
        rings, size3 = self.rings, 3 * self.rings.size
        weight = self.cfg.throttled_weight
        max_ts = self.max_ts
        late = duplicates = 0
        for ev in events:
            base = ev.base
            a = asset_of(base)
            if a is None:
                a = assets[base] = AssetWindow(base)
            eid = ev.event_id
            seen = a.seen
            if eid in seen:
                duplicates += 1
                continue
            seen.add(eid)
            ts = ev.ts
            usd, price = float(ev.notional_usd), float(ev.price)  # once each: the dashboard gets them too
            is_long = ev.side == "long"
            ring = a.ring  # the ring of the asset's previous event, usually this event's too
            if (
                ring is None
                or ring.symbol != ev.symbol
                or ring.exchange is not ev.exchange
                or ring.market is not ev.market
            ):
                ring = a.ring = rings.create((ev.exchange, ev.market, ev.symbol))
                a.feeds.add(ring.feed)
            data, pos = ring.data, ring.pos  # SymbolRing.push, inlined: it runs once per event
            data[pos] = ts
            data[pos + 1] = price
            data[pos + 2] = usd if is_long else -usd
            pos += 3
            if pos == size3:
                pos = 0
                ring.full = True
            ring.pos = pos
            accept((ev, usd, price))
            pending = a.pending
            if not pending:
                active[base] = a
            if ts < a.next_tick:
                ts = a.next_tick
                late += 1
            pending.append((ts, eid, usd, is_long, weight if ev.throttled else 1.0, ev))
            if ts > max_ts:
                max_ts = ts
        self.late += late
        self.duplicates += duplicates
        self.max_ts = max_ts
        return self.advance_to(max_ts - self.cfg.lateness_ms) if max_ts != _NEVER else []

    def note_time(self, ts: int) -> None:
        """Count event time ``ts`` (ms) of an event another shard processes: the next :meth:`ingest` moves
        the watermark as if this engine had seen it, so ticks are evaluated when an unsharded one would."""
        if ts > self.max_ts:
            self.max_ts = ts

    def advance_to(self, watermark: int) -> list[Cascade]:
        """Move the watermark forward (never back) and evaluate the ticks it completes."""
        if watermark <= self.watermark:
            return []
        self.watermark = watermark
        tick = self.cfg.tick_ms
        end = watermark - watermark % tick
        out: Out = []
        active = self._active
        # Assets are independent and ``out`` is sorted below, so they are visited in any order.
        for base, a in list(active.items()):
            if a.next_tick < end:  # else nothing is due (UNSET is below every time)
                self._finalize(a, end, out)
            if not a.pending and a.cascade is None:
                del active[base]
        out.sort(key=lambda item: item[:3])
        return [state for *_, state in out]

    def drain(self) -> list[Cascade]:
        """Advance past every event and quiet period: all open cascades close (end of a replay)."""
        cfg = self.cfg
        if self.max_ts == _NEVER:
            return []
        return self.advance_to(self.max_ts + cfg.window_ms + cfg.quiet_ms + 3 * cfg.tick_ms)

    # --- ticks ------------------------------------------------------------------------------------
    def _finalize(self, a: AssetWindow, end: int, out: Out) -> None:
        tick = self._tick_ms
        if a.next_tick == UNSET:
            first = min(r[0] for r in a.pending)
            a.next_tick = first - first % tick
            if a.next_tick >= end:
                return
        ready = a.take_due(end)
        evaluate = self.lifecycle.evaluate
        if a.floor < 0:
            a.floor = self.rule(a.base).min_usd
        t = a.next_tick  # start of the first tick not yet evaluated
        group = -1  # start of the tick whose events are being added
        i, n = 0, len(ready)
        ready.append(END)
        while i < n:
            if a.cascade is None:  # the usual case: fill tick by tick, stop only at a tick that may open
                i, due = a.add_quiet(ready, i, group, tick, self._window_ms, self._min_events)
                group = -1
                if due < 0:
                    break
                t = due + tick
                evaluate(a, t, out)
                continue
            rec = ready[i]
            ts = rec[0]
            start = ts - ts % tick
            if start != group:
                if group >= 0:
                    self._tick(a, group + tick, out)
                    t = group + tick
                while a.cascade is not None and t < start:  # empty ticks matter only to an open cascade
                    t += tick
                    evaluate(a, t, out)
                group = start
            a.add(rec)
            if a.cascade is not None:
                a.cascade.add(ts, rec[5])
            i += 1
        if group >= 0:
            self._tick(a, group + tick, out)
            t = group + tick
        while a.cascade is not None and t < end:
            t += tick
            evaluate(a, t, out)
        a.next_tick = end

    def _tick(self, a: AssetWindow, end: int, out: Out) -> None:
        """Evaluate a tick that had events; the common "nothing can open" case returns early."""
        if a.cascade is None:
            start = end - self.cfg.window_ms
            a.evict(start)
            if a.rejects(start, self.cfg.min_events):
                return
        self.lifecycle.evaluate(a, end, out)

    def rule(self, base: str) -> Rule:
        """The resolved opening/scoring rule of ``base`` (cached)."""
        return self.lifecycle.rule(base)

    def threshold(self, a: AssetWindow, end: int) -> tuple[float, float, float]:
        """(opening threshold USD, reference USD per window, reference weighted events per window) at ``end``."""
        return self.lifecycle.threshold(a, end)

    # --- restart ----------------------------------------------------------------------------------
    def open_cascades(self) -> dict[str, CascadeBuilder]:
        """Open cascades by id."""
        return {a.cascade.cascade_id: a.cascade for a in self.assets.values() if a.cascade is not None}

    def reconcile(self, replayed: Iterable[Cascade], published: Mapping[str, Cascade]) -> list[Cascade]:
        """After a silent replay, what to publish so nothing is lost or duplicated (see :mod:`.recovery`)."""
        return recovery.reconcile(self, list(replayed), published)

    def asset(self, base: str) -> AssetWindow:
        """The window of ``base``, created empty if new."""
        a = self.assets.get(base)
        if a is None:
            a = self.assets[base] = AssetWindow(base)
        return a

    def feeds(self, base: str) -> set[str]:
        """Feeds (``exchange:market``) that have carried ``base`` (empty for an unknown asset)."""
        a = self.assets.get(base)
        return a.feeds if a is not None else set()

    def watch(self, base: str) -> None:
        """Evaluate ``base`` on every watermark move (it has pending events or an open cascade)."""
        self._active[base] = self.asset(base)

    def restore_baseline(self, base: str, first: int, through: int, minutes: dict[int, list[float]]) -> None:
        """Load an asset's saved per-minute history (before replaying)."""
        self.asset(base).restore(first, through, minutes)

    def baseline_updates(self) -> dict[str, tuple[int, int, dict[int, list[float]]]]:
        """Per-minute history of assets whose baseline moved since the last call (to save in Redis)."""
        changed = {}
        for base, a in self.assets.items():
            if a.history.changed:
                a.history.changed = False
                changed[base] = a.history.snapshot()
        return changed

    @property
    def has_work(self) -> bool:
        """True once an event time was seen or a cascade is watched (adopted on restart): before that,
        moving the watermark on evaluates nothing."""
        return self.max_ts != _NEVER or bool(self._active)

    @property
    def window_events(self) -> int:
        """Events currently in all windows (excluding pending)."""
        return sum(len(a.events) for a in self.assets.values())
