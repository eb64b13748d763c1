"""The exchange side of the feeds: Binance's per-symbol throttle, Bybit's push batching, and fan-out.

Both rules run on EVENT time (the records' ``ts``), so a run at any speed produces the same frames.
Closing a window is driven by :meth:`Engine.advance_to`: before each record (by its own ``ts``), by a
scenario runner between records, or by the simulator's wall-clock ticker when no scenario runs.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple, Protocol

from liq_exchange_sim import frames
from liq_exchange_sim.instruments import Universe
from liq_exchange_sim.ledger import Ledger
from liq_exchange_sim.stats import Stats
from liq_exchange_sim.truth import FEEDS, Feed, TruthRecord, feed_of, usd_notional

ALL_MARKET_STREAM = "!forceOrder@arr"
"""Binance all-market liquidation stream (exchange-feeds.md §1.2)."""


class Emitted(NamedTuple):
    """A truth record accepted by the engine, with its sequence number and USD notional."""

    seq: int
    feed: Feed
    record: TruthRecord
    usd: Decimal


class Subscriber(Protocol):
    """A connection the engine can hand frames to."""

    def push(self, stream: str, payload: bytes, items: tuple[Emitted, ...]) -> None:
        """Queue ``payload`` (published on ``stream``) for sending; ``items`` are its liquidations."""


def binance_symbol_stream(symbol: str) -> str:
    """Per-symbol stream name: lower-case symbol, e.g. ``btcusdt@forceOrder`` (exchange-feeds.md §1.2)."""
    return f"{symbol.lower()}@forceOrder"


class Engine:
    """Applies the feed rules to emitted records and fans frames out to subscribed connections.

    Args:
        universe: Listed instruments (for contract sizes, COIN-M pairs and topic checks).
        ledger: Where throttle drops are recorded.
        stats: Global counters.
        binance_throttle_ms: Binance window: at most one liquidation per symbol per window (§1.7).
        bybit_push_interval_ms: Bybit push cadence (§3.6).
    """

    def __init__(
        self, universe: Universe, ledger: Ledger, stats: Stats, binance_throttle_ms: int, bybit_push_interval_ms: int
    ) -> None:
        self.universe = universe
        self.ledger = ledger
        self.stats = stats
        self.binance_throttle_ms = binance_throttle_ms
        self.bybit_push_interval_ms = bybit_push_interval_ms
        self.subs: dict[Feed, dict[str, dict[Subscriber, None]]] = {feed: {} for feed in FEEDS}
        self._seq = 0
        self._heap: list[tuple[int, int, Feed, str]] = []
        # Binance: symbol -> (window end, latest record). Bybit: symbol -> (push time, records).
        self._throttle: dict[tuple[Feed, str], tuple[int, Emitted]] = {}
        self._batches: dict[tuple[Feed, str], tuple[int, list[Emitted]]] = {}

    # --- subscriptions ------------------------------------------------------------------------
    def subscribe(self, feed: Feed, stream: str, conn: Subscriber) -> None:
        """Deliver frames of ``stream`` (Binance stream name or Bybit topic) on ``feed`` to ``conn``."""
        self.subs[feed].setdefault(stream, {})[conn] = None

    def unsubscribe(self, feed: Feed, stream: str, conn: Subscriber) -> None:
        """Stop delivering ``stream`` to ``conn``."""
        table = self.subs[feed].get(stream)
        if table is not None:
            table.pop(conn, None)

    # --- input --------------------------------------------------------------------------------
    def accept(self, record: TruthRecord) -> Emitted:
        """Validate and number a record.

        Raises:
            KeyError: The venue is not simulated or the symbol is not listed on it.
        """
        feed = feed_of(record.exchange, record.market)
        instrument = self.universe.get(feed, record.symbol)
        if instrument is None:
            raise KeyError(f"{record.symbol} is not listed on {feed}")
        self._seq += 1
        return Emitted(self._seq, feed, record, usd_notional(feed, record.price, record.size, instrument.contract_size))

    def ingest(self, records: Iterable[TruthRecord]) -> int:
        """Apply the rules to ``records`` in order (closing windows that end by each record's ``ts``)."""
        count = 0
        for record in records:
            item = self.accept(record)
            self.advance_to(record.ts)
            if item.feed.startswith("binance"):
                self._throttle_in(item)
            else:
                self._batch_in(item)
            count += 1
        return count

    def _throttle_in(self, item: Emitted) -> None:
        key = (item.feed, item.record.symbol)
        current = self._throttle.get(key)
        if current is not None:
            # Only the latest liquidation of the window is pushed (exchange-feeds.md §1.7).
            end, older = current
            self._throttle[key] = (end, item)
            self.stats.throttled += 1
            self.ledger.record_dropped(older.record, older.usd)
            return
        end = item.record.ts + self.binance_throttle_ms
        self._throttle[key] = (end, item)
        heapq.heappush(self._heap, (end, item.seq, item.feed, item.record.symbol))

    def _batch_in(self, item: Emitted) -> None:
        key = (item.feed, item.record.symbol)
        current = self._batches.get(key)
        if current is not None:
            current[1].append(item)
            return
        interval = self.bybit_push_interval_ms
        end = (item.record.ts // interval + 1) * interval
        self._batches[key] = (end, [item])
        heapq.heappush(self._heap, (end, item.seq, item.feed, item.record.symbol))

    # --- time ---------------------------------------------------------------------------------
    def next_deadline(self) -> int | None:
        """Event time (ms) at which the next window closes, or ``None`` when none is open."""
        return self._heap[0][0] if self._heap else None

    def advance_to(self, now_ms: int) -> None:
        """Close every window ending at or before ``now_ms``, in order, delivering its frame."""
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            end, _, feed, symbol = heapq.heappop(heap)
            if feed.startswith("binance"):
                latest = self._throttle.pop((feed, symbol))[1]
                self._deliver_binance(feed, symbol, latest)
            else:
                batch = self._batches.pop((feed, symbol))[1]
                self._deliver_bybit(feed, symbol, end, batch)

    def flush(self) -> None:
        """Close every open window now."""
        if self._heap:
            self.advance_to(max(end for end, *_ in self._heap))

    # --- output -------------------------------------------------------------------------------
    def _deliver_binance(self, feed: Feed, symbol: str, item: Emitted) -> None:
        table = self.subs[feed]
        everyone = table.get(ALL_MARKET_STREAM)
        per_symbol_name = binance_symbol_stream(symbol)
        per_symbol = table.get(per_symbol_name)
        if not everyone and not per_symbol:
            return
        pair = None
        if feed == "binance_coinm":
            instrument = self.universe.get(feed, symbol)
            pair = instrument.pair if instrument is not None else symbol.split("_", 1)[0]
        payload = frames.binance_force_order(item.record, pair)
        items = (item,)
        for conn in list(everyone or ()):
            conn.push(ALL_MARKET_STREAM, payload, items)
        for conn in list(per_symbol or ()):
            conn.push(per_symbol_name, payload, items)

    def _deliver_bybit(self, feed: Feed, symbol: str, push_ts: int, batch: list[Emitted]) -> None:
        topic = frames.bybit_topic(symbol)
        subscribers = self.subs[feed].get(topic)
        if not subscribers:
            return
        payload = frames.bybit_push(symbol, push_ts, [item.record for item in batch])
        items = tuple(batch)
        for conn in list(subscribers):
            conn.push(topic, payload, items)
