"""One cascade's running statistics and its lifecycle bookkeeping (which state was published last).

Totals are exact :class:`~decimal.Decimal` sums; first/last price are chosen by (event time, event id)
so they do not depend on arrival order.
"""

from __future__ import annotations

from decimal import Decimal

from liq_common.events import Cascade, CascadeStatus, Liquidation, RiskFactors, SideStats, tier_for

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


class Tally:
    """Mutable count and exact USD of one group (a side or an exchange)."""

    __slots__ = ("count", "usd")

    def __init__(self, count: int = 0, usd: Decimal = _ZERO) -> None:
        self.count = count
        self.usd = usd

    def stats(self) -> SideStats:
        """As the published Struct."""
        return SideStats(count=self.count, usd=self.usd)


class CascadeBuilder:
    """Accumulates the liquidations of one open cascade and renders its published states.

    Args:
        base: Base asset.
        window_start: Event time of the first liquidation of the opening window (part of the id).
        threshold: Window USD that opened it; the cascade closes once the window stays below
            ``threshold * close_fraction`` for the quiet period.
        ref_usd, ref_events: Baseline references frozen at opening, so the cascade does not inflate its
            own baseline while it lasts.
    """

    def __init__(self, base: str, window_start: int, threshold: float, ref_usd: float, ref_events: float) -> None:
        self.base = base
        self.cascade_id = f"{base}:{window_start}"
        self.threshold = threshold
        self.ref_usd = ref_usd
        self.ref_events = ref_events
        self.window_start = window_start
        self.window_end = window_start
        self.count = 0
        self.long = Tally()
        self.short = Tally()
        self.by_exchange: dict[str, Tally] = {}
        self.symbols: set[str] = set()
        self.first: tuple[int, str, Decimal] | None = None
        self.last: tuple[int, str, Decimal] | None = None
        self.price_min: Decimal | None = None
        self.price_max: Decimal | None = None
        self.lower_bound = False
        self.score = 0.0
        self.factors = RiskFactors()
        # lifecycle
        self.seq = -1
        self.published_tick = 0
        self.published_score = 0.0
        self.published_usd = 0.0
        self.quiet_since: int | None = None
        # the engine's scoring cache: numbering of the first recent window event, and the last scored state
        self.recent_at = 0
        self.scored_key: tuple[int, int, int] | None = None

    def add(self, ts: int, ev: Liquidation) -> None:
        """Count one liquidation (``ts`` is its effective event time, clamped if it came late)."""
        self.count += 1
        side = self.long if ev.side == "long" else self.short
        side.count += 1
        side.usd += ev.notional_usd
        ex = self.by_exchange.get(ev.exchange)
        if ex is None:
            self.by_exchange[ev.exchange] = Tally(1, ev.notional_usd)
        else:
            ex.count += 1
            ex.usd += ev.notional_usd
        self.symbols.add(ev.symbol)
        key = (ts, ev.event_id, ev.price)
        if self.first is None or key[:2] < self.first[:2]:
            self.first = key
        if self.last is None or key[:2] > self.last[:2]:
            self.last = key
        if self.price_min is None or ev.price < self.price_min:
            self.price_min = ev.price
        if self.price_max is None or ev.price > self.price_max:
            self.price_max = ev.price
        self.window_start = min(self.window_start, ts)
        self.window_end = max(self.window_end, ts)
        self.lower_bound = self.lower_bound or ev.throttled

    @property
    def usd(self) -> Decimal:
        """Total USD so far."""
        return self.long.usd + self.short.usd

    @property
    def move_pct(self) -> float:
        """(last - first) / first * 100, rounded to 4 decimals."""
        if self.first is None or self.last is None or not self.first[2]:
            return 0.0
        return round(float((self.last[2] - self.first[2]) / self.first[2] * _HUNDRED), 4)

    def state(self, status: CascadeStatus) -> Cascade:
        """Render the next state with ``status``; advances ``seq``. ``emitted_ts`` is left 0 for the caller."""
        self.seq += 1
        first = self.first[2] if self.first else _ZERO
        last = self.last[2] if self.last else _ZERO
        return Cascade(
            cascade_id=self.cascade_id,
            seq=self.seq,
            status=status,
            base=self.base,
            window_start=self.window_start,
            window_end=self.window_end,
            count=self.count,
            long=self.long.stats(),
            short=self.short.stats(),
            usd=self.usd,
            by_exchange={name: v.stats() for name, v in sorted(self.by_exchange.items())},
            symbols=sorted(self.symbols),
            exchanges=sorted(self.by_exchange),
            price_first=first,
            price_last=last,
            price_min=self.price_min if self.price_min is not None else _ZERO,
            price_max=self.price_max if self.price_max is not None else _ZERO,
            price_move_pct=self.move_pct,
            duration_ms=self.window_end - self.window_start,
            score=self.score,
            factors=self.factors,
            tier=tier_for(self.score),
            lower_bound=self.lower_bound,
        )

    @classmethod
    def adopt(cls, state: Cascade, threshold: float, ref_usd: float, ref_events: float) -> CascadeBuilder:
        """Continue a cascade from its last published state (restart without the events to replay it)."""
        b = cls(state.base, state.window_start, threshold, ref_usd, ref_events)
        b.cascade_id = state.cascade_id
        b.window_end = state.window_end
        b.count = state.count
        b.long = Tally(state.long.count, state.long.usd)
        b.short = Tally(state.short.count, state.short.usd)
        b.by_exchange = {k: Tally(v.count, v.usd) for k, v in state.by_exchange.items()}
        b.symbols = set(state.symbols)
        b.first = (state.window_start, "", state.price_first)
        b.last = (state.window_end, "", state.price_last)
        b.price_min, b.price_max = state.price_min, state.price_max
        b.lower_bound = state.lower_bound
        b.score, b.factors = state.score, state.factors
        b.seq = state.seq
        b.published_tick = state.window_end
        b.published_score = state.score
        b.published_usd = float(state.usd)
        return b
