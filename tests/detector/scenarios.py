"""Scenario builder: lists of normalised Liquidation events for detector tests.

Events are deterministic (a seeded RNG) so every test run sees the same data. Times are ms since epoch;
``T0`` is a round minute so minute-based baselines line up with the scenario's phases.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from liq_common.events import Liquidation, make_event_id

T0 = 1_767_225_600_000
"""2026-01-01T00:00:00Z."""

FEEDS = {
    ("binance", "linear"): "{base}USDT",
    ("binance", "inverse"): "{base}USD_PERP",
    ("bybit", "linear"): "{base}USDT",
    ("bybit", "inverse"): "{base}USD",
}


def liq(
    base: str,
    ts: int,
    side: str,
    usd: float,
    price: float,
    exchange: str = "bybit",
    market: str = "linear",
    n: int = 0,
) -> Liquidation:
    """One liquidation; Binance events are marked throttled like the real feed (exchange-feeds.md §1.7)."""
    symbol = FEEDS[(exchange, market)].format(base=base)
    px = Decimal(f"{price:.6g}")
    notional = Decimal(f"{usd:.2f}")
    qty = (notional / px).quantize(Decimal("0.000001"))
    eid = make_event_id(exchange, market, symbol, side, ts, str(px), str(notional), str(n))
    return Liquidation(
        event_id=eid,
        exchange=exchange,  # type: ignore[arg-type]
        market=market,  # type: ignore[arg-type]
        symbol=symbol,
        base=base,
        quote="USDT" if market == "linear" else "USD",
        side=side,  # type: ignore[arg-type]
        price=px,
        qty=qty,
        notional_usd=notional,
        ts=ts,
        recv_ts=ts + 150,
        contracts=None if market == "linear" else notional,
        throttled=exchange == "binance",
    )


@dataclass
class Scenario:
    """Accumulates events; phases append to ``events`` (kept sorted by time on ``sorted()``)."""

    seed: int = 7
    events: list[Liquidation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.n = 0

    def _add(self, *args: object, **kw: object) -> None:
        self.n += 1
        self.events.append(liq(*args, n=self.n, **kw))  # type: ignore[arg-type]

    def background(
        self, base: str, start: int, minutes: int, usd_per_min: float, price: float, per_min: int = 6
    ) -> Scenario:
        """Steady two-sided background: ``per_min`` events a minute, random sides and venues."""
        each = usd_per_min / per_min
        for m in range(minutes):
            for k in range(per_min):
                ts = start + m * 60_000 + k * (60_000 // per_min) + self.rng.randrange(0, 2_000)
                side = self.rng.choice(("long", "short"))
                exchange = self.rng.choice(("binance", "bybit"))
                size = each * self.rng.uniform(0.5, 1.5)
                self._add(base, ts, side, size, price * self.rng.uniform(0.999, 1.001), exchange=exchange)
        return self

    def cascade(
        self,
        base: str,
        start: int,
        seconds: int,
        usd: float,
        price: float,
        move_pct: float,
        side: str = "long",
        exchanges: tuple[str, ...] = ("binance", "bybit"),
    ) -> Scenario:
        """A one-sided cascade: ``usd`` over ``seconds``, accelerating, price moving ``move_pct`` %.

        Bybit reports every liquidation (several a second); Binance at most one per symbol per second.
        """
        weights = [1.0 + 3.0 * s / max(seconds - 1, 1) for s in range(seconds)]
        scale = usd / sum(weights)
        for s in range(seconds):
            px = price * (1 + move_pct / 100 * s / max(seconds - 1, 1))
            budget = weights[s] * scale
            for exchange in exchanges:
                parts = 1 if exchange == "binance" else 4
                for k in range(parts):
                    ts = start + s * 1000 + k * 200 + self.rng.randrange(0, 150)
                    self._add(base, ts, side, budget / len(exchanges) / parts, px, exchange=exchange)
        return self

    def chop(self, base: str, start: int, seconds: int, usd: float, price: float) -> Scenario:
        """Two-sided chop: alternating long/short liquidations of equal size, price oscillating."""
        per = usd / (seconds * 4)
        for s in range(seconds):
            for k in range(4):
                side = "long" if (s + k) % 2 else "short"
                px = price * (1 + (0.004 if s % 2 else -0.004))
                exchange = "binance" if k == 0 else "bybit"
                self._add(base, start + s * 1000 + k * 200, side, per, px, exchange=exchange)
        return self

    def sorted(self) -> list[Liquidation]:
        """Events in (ts, id) order, as a well-behaved feed would deliver them."""
        return sorted(self.events, key=lambda e: (e.ts, e.event_id))


def shuffled_within(events: list[Liquidation], lateness_ms: int, seed: int = 1) -> list[Liquidation]:
    """Reorder events so each arrives at most ``lateness_ms`` of event time late (a jittered delivery)."""
    rng = random.Random(seed)
    keyed = [(e.ts + rng.randrange(0, lateness_ms), e) for e in events]
    keyed.sort(key=lambda k: (k[0], k[1].event_id))
    return [e for _, e in keyed]
