"""The rows the persister benchmark writes, and their split over the concurrent writers.

Every pass of ``bench/bench_persister.py`` (raw COPY, idempotent, replay, end-to-end) writes the same
events, ``BATCH`` rows per transaction, spread over ``LANES`` connections.
"""

from __future__ import annotations

import os
from decimal import Decimal

from liq_common.events import Exchange, Liquidation, Market, PositionSide, make_event_id

BATCH = 5000
LANES = int(os.environ.get("BENCH_LANES", "2"))
"""Concurrent writers, as the service runs (``WRITERS=2``): one formats rows while another waits on PostgreSQL."""


def make_events(count: int) -> list[Liquidation]:
    """Realistic rows: four markets, exact decimals, 32-hex event ids, 2 ms apart."""
    markets: tuple[tuple[Exchange, Market, str, str, str], ...] = (
        ("binance", "linear", "BTCUSDT", "BTC", "USDT"),
        ("bybit", "linear", "ETHUSDT", "ETH", "USDT"),
        ("binance", "inverse", "BTCUSD_PERP", "BTC", "USD"),
        ("bybit", "inverse", "SOLUSD", "SOL", "USD"),
    )
    events = []
    for i in range(count):
        exchange, market, symbol, base, quote = markets[i % 4]
        price = Decimal(5_000_000 + (i * 7919) % 1_000_000) / 100
        qty = Decimal(1 + (i * 104729) % 50_000) / 1000
        ts = 1_767_225_600_000 + 2 * i
        side: PositionSide = "long" if i % 3 else "short"
        events.append(
            Liquidation(
                event_id=make_event_id(exchange, market, symbol, side, ts, str(price), str(qty)),
                exchange=exchange,
                market=market,
                symbol=symbol,
                base=base,
                quote=quote,
                side=side,
                price=price,
                qty=qty,
                notional_usd=price * qty,
                ts=ts,
                recv_ts=ts + 40,
                contracts=Decimal(i % 900 + 1) if market == "inverse" else None,
                throttled=exchange == "binance",
            )
        )
    return events


def batches(events: list[Liquidation], lane: int) -> list[list[Liquidation]]:
    """Every ``LANES``-th batch starting at ``lane``: the share of one of the concurrent writers."""
    return [events[i : i + BATCH] for i in range(lane * BATCH, len(events), LANES * BATCH)]
