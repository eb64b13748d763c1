"""Reading the detector's dashboard state from Redis (key layout: services/detector README / dashboard.py).

Keys under ``DASH_PREFIX`` (default ``liq:dash:``), all written by liq-detector with a TTL. Assets share
keys, one field per base asset, each value a JSON object:

* ``assets``: sorted set, base asset -> event time (ms) of its newest liquidation.
* ``assets:meta``: hash, base -> ``{"last_ts", "last_price", "level_step"}``.
* ``min:{minute_ms}``: hash of one minute (event time), base -> ``{"n", "usd", "n:long", "usd:long",
  "n:short", "usd:short", "n:{exchange}", "usd:{exchange}", ...}``.
* ``levels:{hour_ms}``: hash of one hour, base -> ``{"step", "usd": {price-bucket lower bound: USD}}``.
* ``large``: list of recent large liquidations (event JSON, newest first).
* ``cascades``: hash, base -> JSON of the latest state of its open cascade.

Nothing is found by SCAN: minute and level keys are computed from the clock. Minute hashes older than
:data:`MUTABLE_MINUTES` no longer change (the detector drops later events for them), so
:class:`DashboardReader` fetches each of those once and keeps it; a refresh costs three pipelined round
trips of about ``MUTABLE_MINUTES + 5`` commands, whatever the number of assets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec
import redis.asyncio as aioredis

from liq_common.events import Cascade, Liquidation

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
WINDOWS = (1, 5, 60)
"""Dashboard windows in minutes: the current minute plus the N-1 before it (whole UTC minutes, event time)."""
MUTABLE_MINUTES = 7
"""Newest minutes re-read at every refresh: the detector rewrites minutes up to 5 old, plus margin."""
THROTTLED_EXCHANGES = frozenset({"binance"})
"""Feeds that publish at most one liquidation per symbol per second (exchange-feeds.md §1.7, §2.2):
totals they contribute to are lower bounds. The minute hashes do not carry the events' ``throttled``
flag, so it is inferred from the exchange."""


class _Meta(msgspec.Struct, frozen=True):
    """``assets:meta`` value of one asset."""

    last_ts: int
    last_price: float
    level_step: float


class _Levels(msgspec.Struct, frozen=True):
    """``levels:{hour}`` value of one asset: bucket width and USD per bucket lower bound (a decimal string)."""

    step: float
    usd: dict[str, float]


_large = msgspec.json.Decoder(Liquidation)
_cascade = msgspec.json.Decoder(Cascade)
_minute = msgspec.json.Decoder(dict[str, float])
_meta = msgspec.json.Decoder(_Meta)
_levels = msgspec.json.Decoder(_Levels)


@dataclass
class Totals:
    """Count and USD of one group over one window."""

    count: int = 0
    usd: float = 0.0

    def add(self, count: float, usd: float) -> None:
        """Accumulate."""
        self.count += int(count)
        self.usd += usd


@dataclass
class _Minute:
    """One minute hash, decoded and summed once (older minutes are immutable and kept between refreshes).

    ``assets``: base -> (USD, long USD, short USD, includes throttled feeds); ``groups``: side or
    exchange -> [count, USD]; ``bad``: fields that did not decode.
    """

    n: float = 0.0
    usd: float = 0.0
    assets: dict[str, tuple[float, float, float, bool]] = field(default_factory=dict)
    groups: dict[str, list[float]] = field(default_factory=dict)
    bad: int = 0

    @classmethod
    def of(cls, raw: dict[bytes, bytes]) -> _Minute:
        """Summarise ``min:{minute}``'s fields (base -> JSON totals); a bad field is counted, not fatal."""
        out = cls()
        for raw_base, value in raw.items():
            try:
                totals = _minute.decode(value)
            except (msgspec.ValidationError, msgspec.DecodeError):
                out.bad += 1
                continue
            out.n += totals.get("n", 0.0)
            out.usd += totals.get("usd", 0.0)
            lower = False
            for name, amount in totals.items():
                if not name.startswith("usd:"):
                    continue
                group = name[4:]
                acc = out.groups.get(group)
                if acc is None:
                    acc = out.groups[group] = [0.0, 0.0]
                acc[0] += totals.get("n:" + group, 0.0)
                acc[1] += amount
                lower = lower or (group in THROTTLED_EXCHANGES and amount > 0)
            usd = totals.get("usd", 0.0)
            out.assets[raw_base.decode()] = (usd, totals.get("usd:long", 0.0), totals.get("usd:short", 0.0), lower)
        return out


@dataclass
class AssetRow:
    """One asset's USD per window (``usd[i]`` for ``WINDOWS[i]``) and its 1 h side split."""

    base: str
    usd: list[float]
    long_usd: float
    short_usd: float
    lower_bound: bool


@dataclass
class DashState:
    """Everything ``liq top`` shows, read in one refresh.

    ``anchor_ms`` is the time the windows end at: the wall clock, or the newest event when all data
    is older than an hour (a replay of old events, ``replayed`` is then True) or newer than the clock.
    """

    anchor_ms: int
    replayed: bool = False
    windows: list[Totals] = field(default_factory=list)
    sides: dict[str, Totals] = field(default_factory=dict)
    exchanges: dict[str, Totals] = field(default_factory=dict)
    lower_bound: bool = False
    assets: list[AssetRow] = field(default_factory=list)
    large: list[Liquidation] = field(default_factory=list)
    cascades: list[Cascade] = field(default_factory=list)
    levels_asset: str | None = None
    levels_step: Decimal | None = None
    last_price: Decimal | None = None
    levels: list[tuple[Decimal, float]] = field(default_factory=list)
    bad_entries: int = 0

    @property
    def empty(self) -> bool:
        """True when the detector has written nothing (no asset, no cascade, no large liquidation)."""
        return not self.assets and not self.cascades and not self.large


class DashboardReader:
    """Reads :class:`DashState` from Redis; keeps immutable minute hashes between refreshes.

    Args:
        client: Redis client (bytes replies).
        prefix: The detector's ``DASH_PREFIX``.
        large_count: Large liquidations to show.
        level_count: Price levels to show.
    """

    def __init__(self, client: aioredis.Redis, prefix: str, *, large_count: int = 12, level_count: int = 12) -> None:
        self.client = client
        self.prefix = prefix
        self.large_count = large_count
        self.level_count = level_count
        self._minutes: dict[int, _Minute] = {}

    def key(self, *parts: object) -> str:
        """A dashboard key under the prefix."""
        return self.prefix + ":".join(str(p) for p in parts)

    async def read(self, now_ms: int | None = None) -> DashState:
        """One refresh at wall-clock ``now_ms`` (default: now).

        Raises:
            redis.exceptions.RedisError, OSError: Redis is unreachable.
        """
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        pipe = self.client.pipeline(transaction=False)
        pipe.zrevrangebyscore(self.key("assets"), "+inf", "-inf", start=0, num=1, withscores=True)
        pipe.lrange(self.key("large"), 0, self.large_count - 1)
        pipe.hgetall(self.key("cascades"))
        newest_raw, large_raw, cascades_raw = await pipe.execute()
        newest = int(newest_raw[0][1]) if newest_raw else now
        # Windows end now, unless the data says otherwise: all older than an hour (a replay of old
        # events) or newer than the local clock (an exchange clock ahead of ours, a rebased replay).
        anchor = now if now - HOUR_MS <= newest <= now else newest
        state = DashState(anchor_ms=anchor, replayed=anchor < now)
        await self._aggregate(state)
        self._decode_lists(state, large_raw, cascades_raw)
        top = state.assets[0].base if state.assets else (state.cascades[0].base if state.cascades else None)
        if top is not None:
            await self._levels(state, top)
        return state

    async def _minutes_of_hour(self, current: int) -> list[tuple[int, _Minute]]:
        """(minute, summary) for the hour ending with minute ``current``, newest first."""
        minutes = [current - i * MINUTE_MS for i in range(WINDOWS[-1])]
        fetch = [m for m in minutes if m > current - MUTABLE_MINUTES * MINUTE_MS or m not in self._minutes]
        if fetch:
            pipe = self.client.pipeline(transaction=False)
            for minute in fetch:
                pipe.hgetall(self.key("min", minute))
            for minute, raw in zip(fetch, await pipe.execute(), strict=True):
                self._minutes[minute] = _Minute.of(raw)
        wanted = set(minutes)
        for stale in [m for m in self._minutes if m not in wanted]:
            del self._minutes[stale]
        return [(m, self._minutes[m]) for m in minutes]

    async def _aggregate(self, state: DashState) -> None:
        current = state.anchor_ms - state.anchor_ms % MINUTE_MS
        state.windows = [Totals() for _ in WINDOWS]
        rows: dict[str, AssetRow] = {}
        spans = list(enumerate(WINDOWS))
        for minute, summary in await self._minutes_of_hour(current):
            age = (current - minute) // MINUTE_MS
            inside = [i for i, span in spans if age < span]
            for i in inside:
                state.windows[i].add(summary.n, summary.usd)
            for base, (usd, long_usd, short_usd, lower) in summary.assets.items():
                row = rows.get(base)
                if row is None:
                    row = rows[base] = AssetRow(base, [0.0] * len(WINDOWS), 0.0, 0.0, False)
                for i in inside:
                    row.usd[i] += usd
                row.long_usd += long_usd
                row.short_usd += short_usd
                row.lower_bound = row.lower_bound or lower
            for group, (n, usd) in summary.groups.items():
                target = state.sides if group in ("long", "short") else state.exchanges
                target.setdefault(group, Totals()).add(n, usd)
            state.bad_entries += summary.bad
        state.lower_bound = any(name in THROTTLED_EXCHANGES and t.usd > 0 for name, t in state.exchanges.items())
        state.assets = sorted(rows.values(), key=lambda r: (-r.usd[-1], r.base))

    def _decode_lists(self, state: DashState, large_raw: list[bytes], cascades_raw: dict[bytes, bytes]) -> None:
        # Dashboard entries are decoded here and in _Minute.of: a bad one is counted and shown, never fatal.
        for raw in large_raw:
            try:
                state.large.append(_large.decode(raw))
            except (msgspec.ValidationError, msgspec.DecodeError):
                state.bad_entries += 1
        for raw in cascades_raw.values():
            try:
                state.cascades.append(_cascade.decode(raw))
            except (msgspec.ValidationError, msgspec.DecodeError):
                state.bad_entries += 1
        state.cascades.sort(key=lambda c: (-c.score, c.base))

    async def _levels(self, state: DashState, base: str) -> None:
        hour = state.anchor_ms - state.anchor_ms % HOUR_MS
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(self.key("assets", "meta"), base)
        pipe.hget(self.key("levels", hour), base)
        pipe.hget(self.key("levels", hour - HOUR_MS), base)
        meta_raw, this_hour, last_hour = await pipe.execute()
        state.levels_asset = base
        try:
            if meta_raw:
                meta = _meta.decode(meta_raw)
                state.last_price = plain(meta.last_price)
            # Early in an hour its levels are thin: fall back to the previous hour's until this one has data.
            chosen = this_hour or last_hour
            levels = _levels.decode(chosen) if chosen else None
        except (msgspec.ValidationError, msgspec.DecodeError):
            state.bad_entries += 1
            return
        if levels is None:
            return
        state.levels_step = plain(levels.step)
        top = sorted(levels.usd.items(), key=lambda kv: -kv[1])[: self.level_count]
        state.levels = sorted(((Decimal(price), amount) for price, amount in top), key=lambda lv: -lv[0])


def plain(value: float) -> Decimal:
    """``value`` as a Decimal written plainly: 100 rather than 100.0, 0.05 as 0.05."""
    exact = Decimal(repr(value))
    whole = exact.to_integral_value()
    return whole.quantize(Decimal(1)) if exact == whole else exact
