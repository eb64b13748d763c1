"""Liquidations for the exchange simulator to emit (its truth records, as tests build them), and the
count and USD totals to check the events stream against its ledger of what it delivered."""

from __future__ import annotations

import random
import time
from decimal import Decimal

from liq_common.events import Liquidation
from liq_exchange_sim import Feed, Simulator, Totals, TruthRecord


def minute_ago() -> int:
    """Event time one minute before now, ms: recent, and clear of the future-timestamp guard."""
    return int(time.time() * 1000) - 60_000


def records(
    exchange: str, market: str, symbols: dict[str, Decimal], count: int, start_ms: int, seed: int = 7
) -> list[TruthRecord]:
    """``count`` liquidations spread over ``symbols`` (symbol -> reference price), 1 ms apart per symbol.

    Sizes are drawn with few decimals, as exchanges print them; sides alternate randomly.
    """
    rng = random.Random(seed)
    names = sorted(symbols)
    out = []
    for i in range(count):
        symbol = names[i % len(names)]
        price = (symbols[symbol] * Decimal(rng.uniform(0.95, 1.05))).quantize(Decimal("0.01"))
        size = Decimal(rng.randint(1, 5000)) / (Decimal(1000) if market == "linear" else Decimal(1))
        out.append(
            TruthRecord(
                exchange=exchange,  # type: ignore[arg-type]
                market=market,  # type: ignore[arg-type]
                symbol=symbol,
                side="long" if rng.random() < 0.5 else "short",
                price=max(price, Decimal("0.01")),
                size=size,
                ts=start_ms + 3 * (i // len(names)),
            )
        )
    return out


def liquidation(
    exchange: str, market: str, symbol: str, price: Decimal, size: Decimal, ts: int | None = None
) -> TruthRecord:
    """One long liquidation of ``size`` (exchange units) at ``price``, a minute ago unless ``ts`` is given."""
    return TruthRecord(
        exchange=exchange,  # type: ignore[arg-type]
        market=market,  # type: ignore[arg-type]
        symbol=symbol,
        side="long",
        price=price,
        size=size,
        ts=minute_ago() if ts is None else ts,
    )


def per_market(
    exchange: str, symbols: dict[str, str], count: int, price: Decimal = Decimal(65000)
) -> list[list[TruthRecord]]:
    """``count`` liquidations a minute ago of one symbol per market (``symbols``: market -> symbol) at about
    ``price``: one batch per market."""
    start = minute_ago()
    return [records(exchange, market, {symbol: price}, count, start) for market, symbol in symbols.items()]


def prices(sim: Simulator, feed: Feed) -> dict[str, Decimal]:
    """Every instrument the simulator lists on ``feed``, with its reference price (for :func:`records`)."""
    return {i.symbol: i.ref_price for i in sim.universe.instruments(feed)}


def in_chunks(by_feed: dict[str, list[TruthRecord]], size: int) -> list[tuple[str, list[TruthRecord]]]:
    """Each feed's records cut into chunks of ``size``, all chunks in the order of their first record's time."""
    chunks = [(feed, rows[i : i + size]) for feed, rows in by_feed.items() for i in range(0, len(rows), size)]
    return sorted(chunks, key=lambda chunk: chunk[1][0].ts)


Key = tuple[str, str, str]


def totals_of(events: list[Liquidation]) -> dict[Key, Totals]:
    """Count and USD sum by (exchange, market, side), shaped like the simulator's ledger totals."""
    table: dict[Key, Totals] = {}
    for event in events:
        key = (event.exchange, event.market, event.side)
        current = table.setdefault(key, Totals(0, Decimal(0)))
        current.count += 1
        current.usd += event.notional_usd
    return table


def as_tuples(table: dict[Key, Totals]) -> dict[Key, tuple[int, Decimal]]:
    """Totals as plain tuples, for equality assertions."""
    return {key: (t.count, t.usd) for key, t in table.items()}


def delivered_totals(sim: Simulator, exchange: str) -> dict[Key, tuple[int, Decimal]]:
    """What the simulator's ledger says it delivered for ``exchange``: count and USD by (exchange, market, side)."""
    return as_tuples(sim.ledger.totals(exchange=exchange))


def published_totals(events: list[Liquidation]) -> dict[Key, tuple[int, Decimal]]:
    """What ``events`` add up to, in the shape of :func:`delivered_totals`."""
    return as_tuples(totals_of(events))
