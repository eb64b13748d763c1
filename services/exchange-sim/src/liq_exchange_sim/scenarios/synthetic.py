"""Seeded synthetic liquidations: Poisson background, cascade episodes and two-sided chop.

Everything derives from ``random.Random(seed)`` and the instrument universe, so the same config gives
the same records (and, through the event-time rules, the same frames). Sizes are heavy-tailed in USD
(log-normal body, median ~2,000 USD, capped) and converted to each venue's unit: base coin (Binance
USD-M, Bybit linear), contracts of ``contract_size`` USD (Binance COIN-M), USD (Bybit inverse).
"""

from __future__ import annotations

import bisect
import math
import random
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Literal

import msgspec

from liq_exchange_sim.instruments import Instrument, Universe
from liq_exchange_sim.truth import FEEDS, Feed, Side, TruthRecord, feed_of, usd_notional, venue_of

EpisodeKind = Literal["cascade", "chop"]
_FEED_WEIGHT: dict[Feed, float] = {
    "binance_usdm": 0.40,
    "bybit_linear": 0.35,
    "binance_coinm": 0.15,
    "bybit_inverse": 0.10,
}
_BASE_WEIGHT = {"BTC": 0.35, "ETH": 0.25, "SOL": 0.10, "XRP": 0.06, "DOGE": 0.06}
_OTHER_MAJOR_WEIGHT = 0.03
_GENERATED_TOTAL_WEIGHT = 0.05
_MAX_USD = 5_000_000.0


class SyntheticConfig(msgspec.Struct, kw_only=True):
    """Parameters of a synthetic run.

    Attributes:
        seed: Random seed; same seed and config => same records.
        start_ms: Event time of the run's start (ms); fixed by default so runs are reproducible.
        duration_s: Length of the run in event time, seconds.
        background_rate: Mean background liquidations per second, all venues together.
        cascades: Number of cascade episodes (one-sided, accelerating, on every venue listing the base).
        chops: Number of two-sided chop episodes (about as busy as a cascade, but balanced).
        episode_s: Length of each episode, seconds.
        cascade_peak_rate: Liquidations per second at the end of a cascade, all venues together.
        cascade_move: Fractional price move over a cascade (0.05 = 5 %).
        chop_rate: Liquidations per second during chop.
        speed: Playback speed used by :meth:`Simulator.run_synthetic` (0 = as fast as possible).
    """

    seed: int = 1
    start_ms: int = 1_767_225_600_000
    duration_s: float = 600.0
    background_rate: float = 5.0
    cascades: int = 2
    chops: int = 1
    episode_s: float = 90.0
    cascade_peak_rate: float = 40.0
    cascade_move: float = 0.05
    chop_rate: float = 15.0
    speed: float = 0.0


class Episode(msgspec.Struct, frozen=True, kw_only=True):
    """Ground truth of one generated episode.

    Attributes:
        kind: ``cascade`` or ``chop``.
        base: Base asset (``BTC``).
        side: Liquidated side of a cascade (``long`` when price falls); ``None`` for chop.
        start_ms: Event time of the first possible liquidation of the episode.
        end_ms: Event time the episode ends.
        count: Liquidations generated in it (before any feed throttling).
        usd: Their USD notional.
        long_usd: USD of liquidated longs.
        short_usd: USD of liquidated shorts.
        price_move: Fractional price change over the episode (negative = down).
    """

    kind: EpisodeKind
    base: str
    side: Side | None
    start_ms: int
    end_ms: int
    count: int
    usd: Decimal
    long_usd: Decimal
    short_usd: Decimal
    price_move: float


class GroundTruth(msgspec.Struct, frozen=True, kw_only=True):
    """What the generator did: its episodes and totals, for checking detected cascades."""

    seed: int
    start_ms: int
    end_ms: int
    episodes: list[Episode]
    count: int
    usd: Decimal


class _Plan(msgspec.Struct):
    kind: EpisodeKind
    base: str
    side: Side | None
    start: float
    end: float


def _quantize_price(value: float, tick: Decimal) -> Decimal:
    return max(tick, Decimal(repr(value)).quantize(tick, rounding=ROUND_HALF_EVEN))


class _Generator:
    def __init__(self, config: SyntheticConfig, universe: Universe) -> None:
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.markets: dict[str, list[tuple[Feed, Instrument]]] = {}
        for feed in FEEDS:
            for inst in universe.instruments(feed):
                self.markets.setdefault(inst.base, []).append((feed, inst))
        self.ref = {base: float(items[0][1].ref_price) for base, items in self.markets.items()}
        self.walk = self._walks()
        self.plans = self._plan_episodes()
        self.pool, self.cum = self._background_pool()

    def _walks(self) -> dict[str, list[float]]:
        steps = int(self.cfg.duration_s) + 2
        walks: dict[str, list[float]] = {}
        for base in sorted(self.markets):
            level, path = 0.0, []
            for _ in range(steps):
                path.append(level)
                level += self.rng.gauss(0.0, 0.0004)
            walks[base] = path
        return walks

    def _plan_episodes(self) -> list[_Plan]:
        cascades: list[EpisodeKind] = ["cascade"] * self.cfg.cascades
        chops: list[EpisodeKind] = ["chop"] * self.cfg.chops
        kinds = cascades + chops
        self.rng.shuffle(kinds)
        majors: list[str] = [b for b in ("BTC", "ETH", "SOL", "XRP", "DOGE") if b in self.markets]
        majors = majors or sorted(self.markets)
        slot = self.cfg.duration_s / max(1, len(kinds))
        plans = []
        for index, kind in enumerate(kinds):
            length = min(self.cfg.episode_s, slot * 0.8)
            start = index * slot + self.rng.uniform(0.05, 0.95) * (slot - length)
            side: Side | None = self.rng.choice(("long", "short")) if kind == "cascade" else None
            plans.append(_Plan(kind, self.rng.choice(majors), side, start, start + length))
        return plans

    def _background_pool(self) -> tuple[list[tuple[Feed, Instrument]], list[float]]:
        pool: list[tuple[Feed, Instrument]] = []
        weights: list[float] = []
        generated = sum(1 for items in self.markets.values() for _, i in items if i.base.startswith("SIM"))
        for base in sorted(self.markets):
            for feed, inst in self.markets[base]:
                if base.startswith("SIM"):
                    weight = _GENERATED_TOTAL_WEIGHT / max(1, generated)
                else:
                    weight = _BASE_WEIGHT.get(base, _OTHER_MAJOR_WEIGHT) * _FEED_WEIGHT[feed]
                pool.append((feed, inst))
                weights.append(weight)
        cum, total = [], 0.0
        for w in weights:
            total += w
            cum.append(total)
        return pool, cum

    def price(self, base: str, t: float) -> float:
        walk = self.walk[base]
        second = min(int(t), len(walk) - 1)
        factor = 1.0
        for plan in self.plans:
            if plan.base != base or t < plan.start:
                continue
            u = min(1.0, (t - plan.start) / (plan.end - plan.start))
            if plan.kind == "cascade":
                sign = -1.0 if plan.side == "long" else 1.0
                factor *= 1.0 + sign * self.cfg.cascade_move * u * u
            elif u < 1.0:
                factor *= 1.0 + 0.01 * math.sin(2 * math.pi * (t - plan.start) / 15.0)
        return self.ref[base] * math.exp(walk[second]) * factor

    def usd_size(self, scale: float) -> float:
        return min(_MAX_USD, self.rng.lognormvariate(math.log(2000.0), 1.4) * scale)

    def record(self, feed: Feed, inst: Instrument, t: float, side: Side, scale: float) -> TruthRecord:
        usd = self.usd_size(scale)
        price = self.price(inst.base, t) * (1.0 + self.rng.uniform(-0.0002, 0.0002))
        ap = _quantize_price(price, inst.tick_size)
        if feed == "binance_coinm":
            size = Decimal(max(1, round(usd / float(inst.contract_size))))
        elif feed == "bybit_inverse":
            size = max(inst.step_size, Decimal(round(usd)).quantize(inst.step_size, rounding=ROUND_DOWN))
        else:
            size = max(inst.step_size, Decimal(repr(usd / price)).quantize(inst.step_size, rounding=ROUND_DOWN))
        exchange, market = venue_of(feed)
        order_price = None
        if exchange == "binance":
            # The liquidation order's limit price sits beyond the fill: below for a SELL (long), above for a BUY.
            slip = -0.005 if side == "long" else 0.005
            order_price = _quantize_price(price * (1.0 + slip), inst.tick_size)
        ts = self.cfg.start_ms + int(t * 1000)
        return TruthRecord(
            exchange=exchange, market=market, symbol=inst.symbol, side=side, price=ap, size=size, ts=ts,
            order_price=order_price,
        )  # fmt: skip

    def background(self) -> list[tuple[float, TruthRecord]]:
        out, t = [], 0.0
        rate = self.cfg.background_rate
        while rate > 0:
            t += self.rng.expovariate(rate)
            if t >= self.cfg.duration_s:
                break
            feed, inst = self.pool[bisect.bisect_left(self.cum, self.rng.random() * self.cum[-1])]
            side: Side = "long" if self.rng.random() < 0.5 else "short"
            out.append((t, self.record(feed, inst, t, side, 1.0)))
        return out

    def episode(self, plan: _Plan) -> list[tuple[float, TruthRecord]]:
        venues = self.markets[plan.base]
        venue_weights = [_FEED_WEIGHT[f] for f, i in venues]
        length = plan.end - plan.start
        if plan.kind == "cascade":
            peak, growth = self.cfg.cascade_peak_rate, 3.0  # intensity grows e^3 ~ 20x over the episode
        else:
            peak, growth = self.cfg.chop_rate, 0.0
        out, t = [], plan.start
        while True:
            t += self.rng.expovariate(peak)
            if t >= plan.end:
                break
            u = (t - plan.start) / length
            if self.rng.random() > math.exp(growth * (u - 1.0)):  # thinning: rate = peak * e^(growth (u-1))
                continue
            feed, inst = self.rng.choices(venues, weights=venue_weights)[0]
            if plan.kind == "cascade":
                assert plan.side is not None
                other: Side = "short" if plan.side == "long" else "long"
                side = plan.side if self.rng.random() < 0.93 else other
                scale = 2.5
            else:
                side = "long" if self.rng.random() < 0.5 else "short"
                scale = 1.5
            out.append((t, self.record(feed, inst, t, side, scale)))
        return out


def _usd(universe: Universe, record: TruthRecord) -> Decimal:
    feed = feed_of(record.exchange, record.market)
    inst = universe.get(feed, record.symbol)
    return usd_notional(feed, record.price, record.size, inst.contract_size if inst else Decimal(1))


def generate(config: SyntheticConfig, universe: Universe) -> tuple[list[TruthRecord], GroundTruth]:
    """Records of a synthetic run in time order, and its ground truth."""
    gen = _Generator(config, universe)
    timed = gen.background()
    episodes: list[Episode] = []
    for plan in gen.plans:
        items = gen.episode(plan)
        timed.extend(items)
        longs = sum((_usd(universe, r) for _, r in items if r.side == "long"), Decimal(0))
        shorts = sum((_usd(universe, r) for _, r in items if r.side == "short"), Decimal(0))
        move = gen.price(plan.base, plan.end) / gen.price(plan.base, plan.start) - 1.0
        episodes.append(
            Episode(
                kind=plan.kind, base=plan.base, side=plan.side, start_ms=config.start_ms + int(plan.start * 1000),
                end_ms=config.start_ms + int(plan.end * 1000), count=len(items), usd=longs + shorts, long_usd=longs,
                short_usd=shorts, price_move=round(move, 6),
            )
        )  # fmt: skip
    timed.sort(key=lambda item: item[1].ts)  # stable: equal times keep generation order
    records = [r for _, r in timed]
    truth = GroundTruth(
        seed=config.seed,
        start_ms=config.start_ms,
        end_ms=config.start_ms + int(config.duration_s * 1000),
        episodes=episodes,
        count=len(records),
        usd=sum((_usd(universe, r) for r in records), Decimal(0)),
    )
    return records, truth
