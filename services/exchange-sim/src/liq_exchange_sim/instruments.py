"""Listed instruments per feed: symbols, assets, contract sizes and reference prices."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from liq_exchange_sim.truth import FEEDS, Feed


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    """One listed contract.

    Attributes:
        symbol: Exchange symbol (``BTCUSDT``, ``BTCUSD_PERP``, ``BTCUSD``).
        base: Base asset (``BTC``).
        quote: Quote asset (``USDT``, ``USD``).
        contract_size: Binance COIN-M face value in USD (BTC 100, others 10, exchange-feeds.md §2.4);
            1 elsewhere (Bybit inverse sizes are already USD, linear sizes are coins).
        tick_size: Price increment.
        step_size: Size increment (coins for linear, contracts / USD for inverse).
        ref_price: Starting price for the synthetic generator, quote per base.
        status: Listing status as the REST API spells it (Binance ``TRADING``, Bybit ``Trading``).
        onboard_ms: Listing time, ms since epoch (REST ``onboardDate`` / ``launchTime``).
    """

    symbol: str
    base: str
    quote: str
    contract_size: Decimal = Decimal(1)
    tick_size: Decimal = Decimal("0.01")
    step_size: Decimal = Decimal("0.001")
    ref_price: Decimal = Decimal(100)
    status: str = ""
    onboard_ms: int = 1_569_398_400_000

    @property
    def pair(self) -> str:
        """Binance COIN-M pair (``BTCUSD`` for ``BTCUSD_PERP``); the symbol itself elsewhere."""
        return self.symbol.split("_", 1)[0]


# base, reference price, tick, linear step; a realistic spread of magnitudes for prices and sizes.
_MAJORS: tuple[tuple[str, str, str, str], ...] = (
    ("BTC", "65000", "0.1", "0.001"),
    ("ETH", "3200", "0.01", "0.001"),
    ("SOL", "150", "0.01", "0.01"),
    ("XRP", "0.52", "0.0001", "0.1"),
    ("DOGE", "0.12", "0.00001", "1"),
    ("BNB", "580", "0.01", "0.01"),
    ("ADA", "0.45", "0.0001", "1"),
    ("AVAX", "28", "0.001", "0.1"),
    ("LINK", "14", "0.001", "0.01"),
    ("LTC", "80", "0.01", "0.001"),
)
_COINM_BASES = ("BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "LINK", "LTC")
_BYBIT_INVERSE_BASES = ("BTC", "ETH", "SOL", "XRP", "ADA", "LTC")


def _linear(base: str, price: str, tick: str, step: str, status: str) -> Instrument:
    return Instrument(
        symbol=f"{base}USDT",
        base=base,
        quote="USDT",
        tick_size=Decimal(tick),
        step_size=Decimal(step),
        ref_price=Decimal(price),
        status=status,
    )


def _inverse(symbol: str, base: str, price: str, tick: str, contract: int, status: str) -> Instrument:
    return Instrument(
        symbol=symbol,
        base=base,
        quote="USD",
        contract_size=Decimal(contract),
        tick_size=Decimal(tick),
        step_size=Decimal(1),
        ref_price=Decimal(price),
        status=status,
    )


def generated_linear(count: int, status: str = "Trading") -> list[Instrument]:
    """``count`` extra small-cap linear symbols (``SIM0001USDT``...) for scale and pagination tests."""
    return [
        Instrument(
            symbol=f"SIM{i:04d}USDT",
            base=f"SIM{i:04d}",
            quote="USDT",
            tick_size=Decimal("0.0001"),
            step_size=Decimal("0.1"),
            ref_price=Decimal(1 + (i * 7919) % 5000) / Decimal(1000),
            status=status,
        )
        for i in range(1, count + 1)
    ]


class Universe:
    """The mutable symbol list of each feed, shared by the REST endpoints, the topic check and the generator."""

    def __init__(self, instruments: dict[Feed, list[Instrument]] | None = None) -> None:
        self._by_feed: dict[Feed, dict[str, Instrument]] = {feed: {} for feed in FEEDS}
        for feed, items in (instruments or {}).items():
            for item in items:
                self.add(feed, item)

    @classmethod
    def default(cls, bybit_linear_extra: int = 0, binance_usdm_extra: int = 0) -> Universe:
        """Ten majors on every feed (COIN-M ``*USD_PERP``; Bybit inverse six), plus generated linear symbols."""
        usdm = [_linear(b, p, t, s, "TRADING") for b, p, t, s in _MAJORS]
        usdm += [msgspec.structs.replace(i, status="TRADING") for i in generated_linear(binance_usdm_extra)]
        coinm = [
            _inverse(f"{b}USD_PERP", b, p, t, 100 if b == "BTC" else 10, "TRADING")
            for b, p, t, _ in _MAJORS
            if b in _COINM_BASES
        ]
        linear = [_linear(b, p, t, s, "Trading") for b, p, t, s in _MAJORS] + generated_linear(bybit_linear_extra)
        inverse = [_inverse(f"{b}USD", b, p, t, 1, "Trading") for b, p, t, _ in _MAJORS if b in _BYBIT_INVERSE_BASES]
        return cls({"binance_usdm": usdm, "binance_coinm": coinm, "bybit_linear": linear, "bybit_inverse": inverse})

    def add(self, feed: Feed, instrument: Instrument) -> None:
        """List (or replace) ``instrument`` on ``feed``."""
        self._by_feed[feed][instrument.symbol] = instrument

    def remove(self, feed: Feed, symbol: str) -> None:
        """Delist ``symbol`` from ``feed`` (no error if absent)."""
        self._by_feed[feed].pop(symbol, None)

    def get(self, feed: Feed, symbol: str) -> Instrument | None:
        """The instrument, or ``None`` when ``symbol`` is not listed on ``feed``."""
        return self._by_feed[feed].get(symbol)

    def instruments(self, feed: Feed) -> list[Instrument]:
        """Instruments of ``feed`` in listing order."""
        return list(self._by_feed[feed].values())

    def bases(self) -> list[str]:
        """Every base asset listed anywhere, in first-seen order."""
        seen: dict[str, None] = {}
        for feed in FEEDS:
            for item in self._by_feed[feed].values():
                seen.setdefault(item.base, None)
        return list(seen)
