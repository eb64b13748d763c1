"""Batch writers: one batch of stream entries becomes one transaction.

Liquidations go through binary ``COPY`` into a per-connection TEMP stage table, then one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` into ``liquidations``: COPY alone is the fastest load
but has no conflict handling, the stage makes a redelivered event a skipped duplicate instead of an
error. Cascade states are upserted one row per ``cascade_id``, guarded by ``seq`` so only a newer state
replaces the stored one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec
import psycopg

from liq_common.events import Cascade, Liquidation
from liq_persister import metrics
from liq_persister.database import Database, DatabaseUnavailable

Conn = psycopg.AsyncConnection[tuple[object, ...]]

# Stage columns in the order of Liquidation's fields, so a row is ``msgspec.structs.astuple(event)``.
# Times stay integer ms here and become timestamptz in SQL: epoch + ms * 1 ms, exact to the microsecond
# for any time before the year 2255 (the product stays below 2**53 µs).
_STAGE_TYPES: dict[str, str] = {
    "event_id": "text",
    "exchange": "text",
    "market": "text",
    "symbol": "text",
    "base": "text",
    "quote": "text",
    "side": "text",
    "price": "numeric",
    "qty": "numeric",
    "notional_usd": "numeric",
    "ts": "int8",
    "recv_ts": "int8",
    "contracts": "numeric",
    "throttled": "bool",
    "v": "int8",  # never int2: psycopg's binary int2 dumper wraps 70000 to 4464 silently
}
if tuple(_STAGE_TYPES) != Liquidation.__struct_fields__:  # pragma: no cover - caught by any test run
    raise RuntimeError("Liquidation changed: update the stage columns and add a migration for liquidations")

_STAGE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS liq_stage ("
    + ", ".join(f"{name} {kind}" for name, kind in _STAGE_TYPES.items())
    + ") ON COMMIT DELETE ROWS"
).encode()
_COPY = b"COPY liq_stage FROM STDIN (FORMAT BINARY)"
_INSERT = b"""
INSERT INTO liquidations (ts, exchange, event_id, market, symbol, base, quote, side, price, qty,
                          notional_usd, contracts, throttled, recv_ts, v)
SELECT timestamptz 'epoch' + ts * interval '1 millisecond', exchange, event_id, market, symbol, base, quote,
       side, price, qty, notional_usd, contracts, throttled, timestamptz 'epoch' + recv_ts * interval '1 millisecond', v
FROM liq_stage
ON CONFLICT DO NOTHING
"""


async def prepare_stage(conn: Conn) -> None:
    """Create this connection's TEMP stage table (emptied at every commit)."""
    await conn.execute(_STAGE_DDL)


class LiquidationWriter:
    """Writes batches of :class:`Liquidation` to ``liquidations``, skipping rows already there."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._salvaged: set[bytes] = set()
        self._rows = metrics.ROWS_WRITTEN.labels("liquidations")
        self._dupes = metrics.DUPLICATES.labels("liquidations")
        self._size = metrics.BATCH_ROWS.labels("liquidations")
        self._seconds = metrics.BATCH_SECONDS.labels("liquidations")

    async def write(self, events: Sequence[Liquidation]) -> int:
        """Insert ``events`` in one transaction; returns rows inserted (the rest were duplicates)."""
        started = time.perf_counter()
        astuple = msgspec.structs.astuple
        async with self.db.transaction() as conn:
            cur = conn.cursor()
            async with cur.copy(_COPY) as copy:
                copy.set_types(list(_STAGE_TYPES.values()))
                for event in events:
                    await copy.write_row(astuple(event))
            await cur.execute(_INSERT)
            inserted = max(cur.rowcount, 0)
        self._record(len(events), inserted, started)
        return inserted

    async def handle(self, batch: list[tuple[bytes, Liquidation]]) -> None:
        """Consumer-runner handler: write the batch; returning means committed.

        When the database rejects a row (the data's fault), the runner retries the entries one by one
        to find it. To keep that cheap, the good rows are first committed here by bisection (about
        2·log2(N) transactions instead of N), their ids remembered, and the one-by-one retries of
        those ids return at once; only the rejected entry fails again and is dead-lettered.
        """
        if len(batch) == 1 and batch[0][0] in self._salvaged:
            self._salvaged.discard(batch[0][0])
            return
        if len(batch) > 1:
            self._salvaged.clear()  # a new batch: the one-by-one retries of the last one are over
        try:
            await self.write([event for _, event in batch])
        except DatabaseUnavailable:
            raise
        except Exception:
            # Rejected by PostgreSQL (SQLSTATE class 22/23) or by the client while encoding a row
            # (e.g. an int beyond int8, a lone surrogate): either way the rows' fault.
            if len(batch) > 1:
                await self._salvage(batch)
            raise

    async def _salvage(self, batch: list[tuple[bytes, Liquidation]]) -> None:
        """Commit every row of ``batch`` the database accepts; remember their entry ids."""
        half = len(batch) // 2
        for part in (batch[:half], batch[half:]):
            try:
                await self.write([event for _, event in part])
            except DatabaseUnavailable:
                raise
            except Exception:  # noqa: BLE001 - as in handle: the rows' fault, keep bisecting
                if len(part) > 1:
                    await self._salvage(part)
                continue
            self._salvaged.update(entry_id for entry_id, _ in part)

    def _record(self, rows: int, inserted: int, started: float) -> None:
        self._seconds.observe(time.perf_counter() - started)
        self._size.observe(rows)
        self._rows.inc(inserted)
        self._dupes.inc(rows - inserted)


_json = msgspec.json.Encoder(decimal_format="number")

_UPSERT = b"""
INSERT INTO cascades AS c (cascade_id, seq, status, base, window_start, window_end, duration_ms, count, usd,
    long_count, long_usd, short_count, short_usd, by_exchange, symbols, exchanges, price_first, price_last,
    price_min, price_max, price_move_pct, score, tier, factors, lower_bound, coverage, emitted_ts, closed_at, v)
VALUES (%s, %s, %s, %s, timestamptz 'epoch' + %s::int8 * interval '1 millisecond',
    timestamptz 'epoch' + %s::int8 * interval '1 millisecond', %s, %s, %s,
    %s, %s, %s, %s, %s::jsonb, %s::text[], %s::text[], %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s::jsonb,
    timestamptz 'epoch' + %s::int8 * interval '1 millisecond',
    timestamptz 'epoch' + %s::int8 * interval '1 millisecond', %s)
ON CONFLICT (cascade_id) DO UPDATE SET
    seq = EXCLUDED.seq, status = EXCLUDED.status, base = EXCLUDED.base, window_start = EXCLUDED.window_start,
    window_end = EXCLUDED.window_end, duration_ms = EXCLUDED.duration_ms, count = EXCLUDED.count,
    usd = EXCLUDED.usd, long_count = EXCLUDED.long_count, long_usd = EXCLUDED.long_usd,
    short_count = EXCLUDED.short_count, short_usd = EXCLUDED.short_usd, by_exchange = EXCLUDED.by_exchange,
    symbols = EXCLUDED.symbols, exchanges = EXCLUDED.exchanges, price_first = EXCLUDED.price_first,
    price_last = EXCLUDED.price_last, price_min = EXCLUDED.price_min, price_max = EXCLUDED.price_max,
    price_move_pct = EXCLUDED.price_move_pct, score = EXCLUDED.score, tier = EXCLUDED.tier,
    factors = EXCLUDED.factors, lower_bound = EXCLUDED.lower_bound, coverage = EXCLUDED.coverage,
    emitted_ts = EXCLUDED.emitted_ts, closed_at = EXCLUDED.closed_at, v = EXCLUDED.v
WHERE c.seq < EXCLUDED.seq
"""


def _cascade_params(c: Cascade) -> tuple[object, ...]:
    return (
        c.cascade_id,
        c.seq,
        c.status,
        c.base,
        c.window_start,
        c.window_end,
        c.duration_ms,
        c.count,
        c.usd,
        c.long.count,
        c.long.usd,
        c.short.count,
        c.short.usd,
        _json.encode(c.by_exchange).decode(),
        c.symbols,
        c.exchanges,
        c.price_first,
        c.price_last,
        c.price_min,
        c.price_max,
        c.price_move_pct,
        c.score,
        c.tier,
        _json.encode(c.factors).decode(),
        c.lower_bound,
        _json.encode(c.coverage).decode(),
        c.emitted_ts,
        c.emitted_ts if c.status == "close" else None,
        c.v,
    )


def latest_states(states: Sequence[Cascade]) -> list[Cascade]:
    """The highest-``seq`` state of each cascade in ``states`` (one statement cannot update a row twice)."""
    latest: dict[str, Cascade] = {}
    for state in states:
        current = latest.get(state.cascade_id)
        if current is None or state.seq > current.seq:
            latest[state.cascade_id] = state
    return list(latest.values())


class CascadeWriter:
    """Upserts batches of :class:`Cascade` states into ``cascades``, never moving a row back in ``seq``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._rows = metrics.ROWS_WRITTEN.labels("cascades")
        self._dupes = metrics.DUPLICATES.labels("cascades")
        self._size = metrics.BATCH_ROWS.labels("cascades")
        self._seconds = metrics.BATCH_SECONDS.labels("cascades")

    async def write(self, states: Sequence[Cascade]) -> int:
        """Upsert ``states`` in one transaction; returns rows inserted or updated."""
        started = time.perf_counter()
        rows = [_cascade_params(state) for state in latest_states(states)]
        written = 0
        async with self.db.transaction() as conn:
            cur = conn.cursor()
            for params in rows:
                # One statement per cascade: batches are small (a few states per second at most) and
                # this keeps the exact per-row outcome for the metrics.
                await cur.execute(_UPSERT, params)
                written += max(cur.rowcount, 0)
        self._seconds.observe(time.perf_counter() - started)
        self._size.observe(len(states))
        self._rows.inc(written)
        self._dupes.inc(len(states) - written)
        return written

    async def handle(self, batch: list[tuple[bytes, Cascade]]) -> None:
        """Consumer-runner handler: upsert the batch; returning means committed."""
        await self.write([state for _, state in batch])
