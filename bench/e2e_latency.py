"""Latency measurement of the end-to-end benchmark: when each frame was sent, when its row was committed,
when the cascade it made openable was published, and the matching between them.

The methods (and why each is an upper bound) are the "Latency methods" of the docstring of
``bench/bench_e2e.py``; all clocks are this host's wall clock.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import psycopg

from liq_common.codec import CASCADES
from liq_exchange_sim import Simulator, TruthRecord
from liq_exchange_sim.truth import Feed

POLL_S = 0.02
Key = tuple[str, str, int]
"""(exchange, symbol, event ms): unique per emitted record by construction."""
BurstSends = dict[tuple[str, str], list[tuple[int, float]]]
"""(base, exchange) -> (event time, send time) of each burst liquidation, in delivery order."""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def record_sends(
    sim: Simulator, sent: dict[Key, float], burst_sends: BurstSends, burst_base: dict[str, str], seeds_before: int
) -> None:
    """Hook the simulator's ledger, which runs right after each frame's socket write: the send time of every
    delivered record goes into ``sent``, and that of burst liquidations (symbols of ``burst_base``, event
    time after ``seeds_before``) also into ``burst_sends``."""
    ledger_record = sim.ledger.record_delivery

    def record(conn_id: str, feed: Feed, seq: int, rec: TruthRecord, usd: Decimal, kind: Any) -> None:
        ledger_record(conn_id, feed, seq, rec, usd, kind)
        if kind == "delivered":
            now = time.time()
            sent.setdefault((rec.exchange, rec.symbol, rec.ts), now)
            base = burst_base.get(rec.symbol)
            if base is not None and rec.ts > seeds_before:
                burst_sends.setdefault((base, rec.exchange), []).append((rec.ts, now))

    sim.ledger.record_delivery = record  # type: ignore[method-assign,assignment]


async def poll_commits(
    url: str,
    sent: dict[Key, float],
    committed: dict[Key, float],
    stop: asyncio.Event,
    flushed: asyncio.Event,
    all_seen: asyncio.Event,
    periods: list[float],
    own_pids: set[int],
    ready: asyncio.Event,
) -> None:
    """Credit each sent key to the first poll whose snapshot shows its row (see the docstring of
    ``bench/bench_e2e.py``).

    Its session's pid goes into ``own_pids`` (then ``ready`` is set). Sets ``all_seen`` once ``flushed``
    is set (nothing more will be sent) and every sent key was seen."""
    query = (
        b"SELECT l.exchange, l.symbol, (extract(epoch FROM l.ts) * 1000)::bigint FROM liquidations l "
        b"JOIN unnest(%s::text[], %s::text[], %s::bigint[]) AS k(e, s, t) "
        b"ON l.exchange = k.e AND l.symbol = k.s AND l.ts = to_timestamp(k.t / 1000.0) "
        b"WHERE l.ts >= to_timestamp(%s / 1000.0)"
    )
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        row = await (await conn.execute(b"SELECT pg_backend_pid()")).fetchone()
        assert row is not None
        own_pids.add(int(row[0]))
        ready.set()
        last = time.time()
        while True:
            final = stop.is_set()
            outstanding = [k for k in sent if k not in committed]
            if flushed.is_set() and not outstanding:
                all_seen.set()
            if outstanding:
                started = time.time()
                cur = await conn.execute(
                    query,
                    (
                        [k[0] for k in outstanding],
                        [k[1] for k in outstanding],
                        [k[2] for k in outstanding],
                        min(k[2] for k in outstanding),
                    ),
                )
                for exchange, symbol, ts in await cur.fetchall():
                    committed.setdefault((exchange, symbol, int(ts)), started)
                periods.append(started - last)
                last = started
            if final:
                return
            await asyncio.sleep(POLL_S)


def commit_latencies(sent: dict[Key, float], committed: dict[Key, float]) -> list[float]:
    """Milliseconds from frame sent to row committed, for every sent key seen committed."""
    return [(committed[k] - sent[k]) * 1000 for k in sent if k in committed]


def cascade_latencies(
    entries: list[tuple[bytes, dict[bytes, bytes]]], burst_sends: BurstSends, tick: int
) -> tuple[list[float], int]:
    """Milliseconds from the frame that made each cascade openable to its ``open`` state's XADD id time, from
    the cascade stream's ``entries``; also the number of open states matched to no burst."""
    cascade_ms: list[float] = []
    unmatched = 0
    for entry_id, fields in entries:
        state = CASCADES.decode(fields)
        if state.status != "open":
            continue
        # The open state counts the first n burst liquidations of each exchange (each exchange delivers a
        # base's liquidations in order on one connection). The frame that made it openable is one of those
        # in the tick it opened at (the tick before did not open it): the earliest-sent of them is taken,
        # an upper bound on the latency, exact when the tick holds one burst liquidation.
        try:
            counted = [e for ex, t in state.by_exchange.items() for e in burst_sends[(state.base, ex)][: t.count]]
        except KeyError:
            unmatched += 1
            continue
        last_tick = [send for ts, send in counted if ts >= state.window_end - state.window_end % tick]
        # (none: every liquidation of that tick came late and was counted at its end; the last sent is then
        # the one whose arrival completed it)
        sent_at = min(last_tick) if last_tick else max(send for _, send in counted)
        cascade_ms.append(int(entry_id.split(b"-")[0]) - sent_at * 1000)
    return cascade_ms, unmatched
