"""What the simulator actually delivered (after rules and faults), and what the Binance throttle dropped."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Literal

import msgspec

from liq_exchange_sim.truth import Exchange, Feed, Market, Side, TruthRecord

EntryKind = Literal["delivered", "duplicate", "corrupted"]
ENTRY_KINDS: tuple[EntryKind, ...] = ("delivered", "duplicate", "corrupted")
Key = tuple[str, str, str]
"""``(exchange, market, side)``."""


class Totals(msgspec.Struct):
    """Count and USD notional of a group of liquidations."""

    count: int = 0
    usd: Decimal = Decimal(0)


class LedgerEntry(msgspec.Struct, frozen=True):
    """One liquidation written to one connection.

    Attributes:
        conn_id: Connection that received it.
        feed: Feed of the connection.
        seq: Emission sequence number of the truth record (same for every copy of it).
        kind: ``delivered`` (a good frame), ``duplicate`` (second copy from the duplicate fault),
            ``corrupted`` (inside a malformed frame, including a ``huge`` one: a correct client must not
            publish it).
        usd: USD notional from the simulator's instruments (see :func:`~liq_exchange_sim.truth.usd_notional`).
    """

    conn_id: str
    feed: Feed
    seq: int
    kind: EntryKind
    exchange: Exchange
    market: Market
    symbol: str
    side: Side
    price: Decimal
    size: Decimal
    ts: int
    usd: Decimal


class Ledger:
    """Delivered entries, running totals and the records dropped by throttling.

    With ``keep_entries=False`` (long CLI runs) only the running totals are kept.
    """

    def __init__(self, keep_entries: bool = True) -> None:
        self.keep_entries = keep_entries
        self.entries: list[LedgerEntry] = []
        self.dropped: list[TruthRecord] = []
        self._dropped_totals: dict[Key, Totals] = {}
        self._all: dict[EntryKind, dict[Key, Totals]] = {kind: {} for kind in ENTRY_KINDS}
        self._unique: dict[EntryKind, dict[Key, Totals]] = {kind: {} for kind in ENTRY_KINDS}
        self._seen: dict[EntryKind, set[int]] = {kind: set() for kind in ENTRY_KINDS}

    def record_delivery(
        self, conn_id: str, feed: Feed, seq: int, record: TruthRecord, usd: Decimal, kind: EntryKind
    ) -> None:
        """Add one liquidation written to connection ``conn_id`` inside a frame of ``kind``."""
        if self.keep_entries:
            r = record
            entry = LedgerEntry(conn_id, feed, seq, kind, r.exchange, r.market, r.symbol, r.side, r.price, r.size, r.ts,
                                usd)  # fmt: skip
            self.entries.append(entry)
        key = (record.exchange, record.market, record.side)
        _add(self._all[kind], key, usd)
        seen = self._seen[kind]
        if seq not in seen:
            seen.add(seq)
            _add(self._unique[kind], key, usd)

    def record_dropped(self, record: TruthRecord, usd: Decimal) -> None:
        """Add a record the Binance throttle replaced by a later one."""
        if self.keep_entries:
            self.dropped.append(record)
        _add(self._dropped_totals, (record.exchange, record.market, record.side), usd)

    def totals(
        self,
        unique: bool = True,
        exchange: str | None = None,
        market: str | None = None,
        kinds: tuple[EntryKind, ...] = ("delivered",),
    ) -> dict[Key, Totals]:
        """Liquidations written in frames of ``kinds`` (default: good frames), by ``(exchange, market, side)``.

        Args:
            unique: Count each emitted record once (per kind) even when several connections received it.
            exchange: Only this exchange.
            market: Only this market.
            kinds: Entry kinds to add up, e.g. ``("delivered", "duplicate")`` for every good copy.
        """
        table: dict[Key, Totals] = {}
        for kind in kinds:
            source = self._unique[kind] if unique else self._all[kind]
            for key, t in source.items():
                if (exchange is None or key[0] == exchange) and (market is None or key[1] == market):
                    total = table.setdefault(key, Totals())
                    total.count += t.count
                    total.usd += t.usd
        return table

    def dropped_totals(self) -> dict[Key, Totals]:
        """Throttle-dropped liquidations by ``(exchange, market, side)``."""
        return {key: Totals(t.count, t.usd) for key, t in self._dropped_totals.items()}

    def for_connection(self, conn_id: str) -> list[LedgerEntry]:
        """Entries written to one connection (empty when entries are not kept)."""
        return [e for e in self.entries if e.conn_id == conn_id]


def _add(table: dict[Key, Totals], key: Key, usd: Decimal) -> None:
    totals = table.get(key)
    if totals is None:
        table[key] = Totals(1, usd)
    else:
        totals.count += 1
        totals.usd += usd


def summarize(entries: Iterable[LedgerEntry]) -> dict[Key, Totals]:
    """Totals of arbitrary entries (all kinds), e.g. one connection's."""
    table: dict[Key, Totals] = {}
    for e in entries:
        _add(table, (e.exchange, e.market, e.side), e.usd)
    return table
