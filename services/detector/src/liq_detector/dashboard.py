"""Dashboard state in Redis: per-minute aggregates, price-level clusters, large liquidations, cascades.

Aggregation is pure (events in, Redis commands out) and kept as absolute values in memory;
:meth:`Dashboard.commands` renders the changes, which the service sends in one round trip. Assets
share keys (one hash per minute, one per hour of levels, one of asset metadata, fields named by
asset), so a flush costs a dozen commands whether 3 or 1,000 assets moved, and a reader needs no SCAN.
Layout and formats: README.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from liq_common.codec import encode
from liq_common.events import Cascade, Liquidation
from liq_common.rawpipe import Command

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
KEEP_MINUTES = 5
"""Minutes kept in memory per asset; later events for older minutes are not written (``stale``)."""

_json = msgspec.json.Encoder()


def nice_step(raw: float) -> float:
    """The 1-2-5 step nearest (in log scale) to ``raw``, e.g. 100 for 97.3, 2 for 3, 0.0005 for 0.0004."""
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    exp = math.floor(math.log10(raw))
    best = min((1.0, 2.0, 5.0, 10.0), key=lambda m: abs(math.log10(m * 10.0**exp / raw)))
    return best * 10.0**exp


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step) + 1e-9))


def _num(value: float) -> float | int:
    """Integers without ``.0``, other values rounded to 8 decimals (compact JSON)."""
    return int(value) if value == int(value) else round(value, 8)


class _AssetDash:
    """Dashboard state of one asset: recent minute totals, this hour's levels, latest print."""

    __slots__ = ("cells", "dirty", "dirty_minutes", "hour", "in_hour", "last_price", "last_ts", "levels",
                 "minute", "minutes", "oldest", "step", "until")  # fmt: skip

    def __init__(self) -> None:
        # minute start -> ({exchange: [count, usd]} for longs, {exchange: [count, usd]} for shorts)
        self.minutes: dict[int, tuple[dict[str, list[float]], dict[str, list[float]]]] = {}
        # Fast path for events in [minute, until): ``cells`` are that minute's cells by side, the minute is
        # marked dirty, and ``in_hour`` says whether it is in the hour of ``levels``. ``until`` = -1 (after
        # a flush or a prune) sends the next event through the slow path that sets them.
        self.minute = self.until = -1
        self.cells: dict[str, dict[str, list[float]]] = {}
        self.in_hour = False
        self.oldest = -1  # minutes before this were pruned; later events for them are stale
        self.dirty_minutes: set[int] = set()
        self.hour = -1
        self.step = 1.0
        self.levels: dict[int, list[Any]] = {}  # bucket index -> [price label, USD]
        self.last_ts = -1
        self.last_price = 0.0
        self.dirty = False

    def minute_json(self, minute: int) -> bytes:
        """The JSON totals of one minute (all, per side, per exchange)."""
        f: dict[str, float] = {"n": 0, "usd": 0.0, "n:long": 0, "usd:long": 0.0, "n:short": 0, "usd:short": 0.0}
        for side, cells in zip(("long", "short"), self.minutes[minute], strict=True):
            for exchange, (n, usd) in cells.items():
                f["n"] += n
                f["usd"] += usd
                f["n:" + side] += n
                f["usd:" + side] += usd
                f["n:" + exchange] = f.get("n:" + exchange, 0) + n
                f["usd:" + exchange] = f.get("usd:" + exchange, 0.0) + usd
        return _json.encode(f)

    def prune(self) -> None:
        """Forget minutes older than KEEP_MINUTES behind the newest."""
        if len(self.minutes) > KEEP_MINUTES + 1:
            self.oldest = max(self.minutes) - KEEP_MINUTES * MINUTE_MS
            for minute in [m for m in self.minutes if m < self.oldest]:
                del self.minutes[minute]
            self.until = -1


@dataclass
class Taken:
    """Writes taken by one :meth:`Dashboard.write`, kept to requeue them if the pipeline fails."""

    dirty: list[tuple[str, _AssetDash, set[int]]]
    large: list[bytes]
    cascades: dict[str, bytes | None]
    baselines: dict[str, bytes]


class Dashboard:
    """Aggregates events for the dashboard keys and writes the changes in one pipeline per flush.

    Args:
        prefix: Key prefix, e.g. ``liq:dash:``.
        ttl_s: TTL (s) set on every written key at each write.
        bucket_pct: Price-level bucket width as a percentage of price, rounded to a 1-2-5 step.
        large_usd: Liquidations of at least this USD go to the recent-large list.
        large_keep: Length of that list.
    """

    def __init__(self, prefix: str, ttl_s: int, bucket_pct: float, large_usd: float, large_keep: int) -> None:
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.bucket_pct = bucket_pct
        self.large_usd = large_usd
        self.large_keep = large_keep
        self.stale = 0
        self._assets: dict[str, _AssetDash] = {}
        self._dirty: list[tuple[str, _AssetDash]] = []
        self._large: list[bytes] = []
        self._cascades: dict[str, bytes | None] = {}
        self._baselines: dict[str, bytes] = {}

    def key(self, *parts: object) -> str:
        """A dashboard key under the prefix."""
        return self.prefix + ":".join(str(p) for p in parts)

    def add(self, events: Iterable[tuple[Liquidation, float, float]], write: bool = True) -> None:
        """Aggregate (event, USD, price) triples — the engine's accepted, de-duplicated events.

        With ``write=False`` (restart replay) only the in-memory minutes are rebuilt.
        """
        assets = self._assets
        asset_of, large, large_usd = assets.get, self._large, self.large_usd
        if not write:
            self._reset_fast_paths()  # a replayed event must not take a writing fast path
        for ev, usd, price in events:
            ts = ev.ts
            st = asset_of(ev.base)
            if st is None:
                st = assets[ev.base] = _AssetDash()
            if not st.minute <= ts < st.until and not self._enter_minute(
                ev.base, st, ts - ts % MINUTE_MS, price, write
            ):
                continue
            cell = st.cells[ev.side].get(ev.exchange)
            if cell is None:
                st.cells[ev.side][ev.exchange] = [1, usd]
            else:
                cell[0] += 1
                cell[1] += usd
            if not st.in_hour:
                continue  # a late event from the previous hour (its levels were already written), or a replay
            step = st.step
            bucket = int(price / step + 1e-9)  # epsilon: 150 / 0.2 is 749.99... in binary floating point
            level = st.levels.get(bucket)
            if level is None:
                st.levels[bucket] = [f"{bucket * step:.{_decimals(step)}f}", usd]  # label formatted once
            else:
                level[1] += usd
            if ts >= st.last_ts:
                st.last_ts, st.last_price = ts, price
            if usd >= large_usd:
                large.append(encode(ev))
        if not write:
            self._reset_fast_paths()  # replayed minutes are not dirty: the next written event marks them

    def _reset_fast_paths(self) -> None:
        for st in self._assets.values():
            st.until = -1

    def _enter_minute(self, base: str, st: _AssetDash, minute: int, price: float, write: bool) -> bool:
        """Point the fast path of ``st`` at ``minute``; False if that minute is stale.

        When writing, marks the minute dirty and starts a new hour of levels (bucket step from
        ``price``) when ``minute`` opens one; a replay (``write=False``) only updates minute cells.
        """
        if minute < st.oldest:
            self.stale += 1
            return False
        cells = st.minutes.get(minute)
        if cells is None:
            cells = st.minutes[minute] = ({}, {})
        st.minute, st.until, st.cells = minute, minute + MINUTE_MS, {"long": cells[0], "short": cells[1]}
        if not write:
            st.in_hour = False
            return True
        st.dirty_minutes.add(minute)
        if not st.dirty:
            st.dirty = True
            self._dirty.append((base, st))
        hour = minute - minute % HOUR_MS
        if hour > st.hour:
            st.hour, st.step, st.levels = hour, nice_step(price * self.bucket_pct / 100), {}
        st.in_hour = hour == st.hour
        return True

    def cascades(self, states: Iterable[Cascade]) -> None:
        """Track open cascades: the latest state per base, removed when it closes."""
        for state in states:
            self._cascades[state.base] = None if state.status == "close" else encode(state)

    def baselines(self, snapshots: Mapping[str, tuple[int, int, dict[int, list[float]]]]) -> None:
        """Queue per-asset baseline history for saving (read back on restart)."""
        for base, (first, through, minutes) in snapshots.items():
            self._baselines[base] = _json.encode({"first": first, "through": through, "minutes": minutes})

    def restore_levels(self, hour: int, saved: Mapping[bytes, bytes]) -> None:
        """Load one hour of price levels written before a restart, so later writes extend them."""
        for raw_base, raw in saved.items():
            data = msgspec.json.decode(raw)
            st = self._assets.setdefault(raw_base.decode(), _AssetDash())
            st.hour, st.step, st.until = hour, float(data["step"]), -1
            st.levels = {round(float(p) / st.step): [p, float(usd)] for p, usd in data["usd"].items()}

    @property
    def pending(self) -> bool:
        """True when something waits to be written."""
        return bool(self._dirty or self._large or self._cascades or self._baselines)

    def commands(self) -> tuple[list[Command], Taken]:
        """The Redis commands writing every pending change, taken out of the queue.

        Returns the commands (for :func:`liq_common.rawpipe.execute`, one round trip) and what was
        taken; if sending them fails, :meth:`requeue` puts it back.
        """
        taken = Taken(
            [(base, st, set(st.dirty_minutes)) for base, st in self._dirty],
            list(self._large),
            dict(self._cascades),
            dict(self._baselines),
        )
        by_minute: dict[int, list[str | bytes]] = {}
        by_hour: dict[int, list[str | bytes]] = {}
        meta: list[str | bytes] = []
        index: list[str | int] = []
        for base, st in self._dirty:
            for minute in st.dirty_minutes:
                if minute in st.minutes:
                    by_minute.setdefault(minute, []).extend((base, st.minute_json(minute)))
            levels = {"step": _num(st.step), "usd": dict(st.levels.values())}
            by_hour.setdefault(st.hour, []).extend((base, _json.encode(levels)))
            info = {"last_ts": st.last_ts, "last_price": _num(st.last_price), "level_step": _num(st.step)}
            meta.extend((base, _json.encode(info)))
            index.extend((st.last_ts, base))
            st.dirty_minutes.clear()
            st.dirty = False
            st.until = -1  # the next event marks its minute dirty again
            st.prune()
        cmds: list[Command] = []
        for minute, fields in sorted(by_minute.items()):
            cmds.append(("HSET", self.key("min", minute), *fields))
        for hour, fields in sorted(by_hour.items()):
            cmds.append(("HSET", self.key("levels", hour), *fields))
        if meta:
            cmds.append(("ZADD", self.key("assets"), *index))
            cmds.append(("HSET", self.key("assets", "meta"), *meta))
        if self._large:
            # Pushed oldest first, so the newest ends up at the head.
            cmds.append(("LPUSH", self.key("large"), *self._large))
            cmds.append(("LTRIM", self.key("large"), 0, self.large_keep - 1))
        if self._cascades:
            gone = [base for base, raw in self._cascades.items() if raw is None]
            live = [x for base, raw in self._cascades.items() if raw is not None for x in (base, raw)]
            if gone:
                cmds.append(("HDEL", self.key("cascades"), *gone))
            if live:
                cmds.append(("HSET", self.key("cascades"), *live))
        if self._baselines:
            cmds.append(("HSET", self.key("baselines"), *(x for item in self._baselines.items() for x in item)))
        for key in dict.fromkeys(str(c[1]) for c in cmds):
            cmds.append(("EXPIRE", key, self.ttl_s))
        self._dirty.clear()
        self._large.clear()
        self._cascades.clear()
        self._baselines.clear()
        return cmds, taken

    def requeue(self, taken: Taken) -> None:
        """Put back writes whose pipeline failed; anything queued since is newer and wins."""
        for base, st, minutes in taken.dirty:
            st.dirty_minutes |= minutes
            if not st.dirty:
                st.dirty = True
                self._dirty.append((base, st))
        self._large[:0] = taken.large
        for base, raw in taken.cascades.items():
            self._cascades.setdefault(base, raw)
        for base, snapshot in taken.baselines.items():
            self._baselines.setdefault(base, snapshot)
