"""How a persister benchmark pass is timed: wall seconds, and the CPU seconds it cost on this host.

The CPU is this process's (formatting rows, driving the protocol) plus that of the PostgreSQL backends
serving its connections, read from ``/proc`` when the server is local. It is independent of other load on
a shared machine, so ``bench/bench_persister.py`` reports it per row next to the wall-clock rates.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg


@dataclass
class Measure:
    """Wall seconds of a run, and CPU seconds spent by this process plus the PostgreSQL backends."""

    seconds: float
    cpu: float | None
    rows: int = 0


def backend_cpu(pids: list[int]) -> float | None:
    """CPU seconds used so far by the local PostgreSQL backends ``pids`` (None when not on this host)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def backend_pid(conn: psycopg.AsyncConnection[Any]) -> int:
    row = await (await conn.execute(b"SELECT pg_backend_pid()")).fetchone()
    assert row is not None
    return int(row[0])


async def timed(pids: list[int], work: Any) -> tuple[float, float | None, Any]:
    cpu0, proc0, started = backend_cpu(pids), time.process_time(), time.perf_counter()
    result = await work
    seconds, cpu1 = time.perf_counter() - started, backend_cpu(pids)
    cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0 + time.process_time() - proc0
    return seconds, cpu, result
