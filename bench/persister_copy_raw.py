"""The persister's raw limit: binary COPY straight into ``liquidations``, no duplicate handling.

This is the ceiling the idempotent write path of ``bench/bench_persister.py`` is compared with
(``ratio_to_raw_limit``): same rows, same batches, same number of connections.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from bench.persister_timing import Measure, backend_pid, timed
from bench.persister_workload import LANES, batches

from liq_common.events import Liquidation

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RAW_COLUMNS = (
    "ts, exchange, event_id, market, symbol, base, quote, side, price, qty, notional_usd, contracts, throttled, "
    "recv_ts, v"
)
RAW_TYPES = [
    "timestamptz",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "numeric",
    "numeric",
    "numeric",
    "numeric",
    "bool",
    "timestamptz",
    "int2",
]


async def copy_raw(url: str, events: list[Liquidation]) -> Measure:
    """Binary COPY of ``events`` straight into liquidations, one transaction per batch, then TRUNCATE."""
    conns = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(LANES)]
    try:
        pids = [await backend_pid(conn) for conn in conns]
        lanes = (_copy_lane(conn, batches(events, lane)) for lane, conn in enumerate(conns))
        seconds, cpu, _ = await timed(pids, asyncio.gather(*lanes))
        await conns[0].execute(b"TRUNCATE liquidations")
    finally:
        for conn in conns:
            await conn.close()
    return Measure(seconds, cpu, len(events))


async def _copy_lane(conn: psycopg.AsyncConnection[Any], lane: list[list[Liquidation]]) -> None:
    query = f"COPY liquidations ({RAW_COLUMNS}) FROM STDIN (FORMAT BINARY)".encode()
    for batch in lane:
        async with conn.transaction(), conn.cursor().copy(query) as copy:
            copy.set_types(RAW_TYPES)
            for e in batch:
                await copy.write_row(
                    (
                        EPOCH + timedelta(milliseconds=e.ts),
                        e.exchange,
                        e.event_id,
                        e.market,
                        e.symbol,
                        e.base,
                        e.quote,
                        e.side,
                        e.price,
                        e.qty,
                        e.notional_usd,
                        e.contracts,
                        e.throttled,
                        EPOCH + timedelta(milliseconds=e.recv_ts),
                        e.v,
                    )
                )
