"""PostgreSQL going away in the middle of a run, without restarting the shared server.

The persister reaches PostgreSQL through :class:`tests.persister.tcp_proxy.TcpProxy`: cutting the proxy is
what a stopped server looks like to it (connections reset, new ones refused); ``pg_terminate_backend``
on its backends is what a server restart or failover sends (SQLSTATE 57P01 ``admin_shutdown``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.conftest import Streams
from tests.e2e.pipeline import (
    Pipeline,
    assert_cascades_and_alerts,
    assert_clean_exit,
    assert_stored_exactly,
    pipeline,
)
from tests.persister.tcp_proxy import TcpProxy
from tests.waiting import eventually


def via_proxy(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def terminate_backends(pg_url: str) -> int:
    """``pg_terminate_backend`` every other session on the test's database; returns how many."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


async def outages(run: Pipeline, proxy: TcpProxy) -> None:
    """Cut PostgreSQL for a while, restore it, then terminate the persister's sessions."""
    persister = run.processes["persister"]
    sim = run.sim
    await sim.wait_for(lambda s: s.stats.frames_sent >= 700, timeout=120)
    await proxy.cut()
    await eventually(lambda: persister.metric("liq_persister_db_up") == 0, timeout=30, what="persister sees db down")
    down_at = sim.stats.frames_sent
    await sim.wait_for(lambda s: s.stats.frames_sent >= down_at + 700, timeout=60)
    retries = persister.metric("liq_consumer_transient_errors_total")
    assert retries > 0, "no batch was retried while the database was away"
    await proxy.restore()
    await eventually(lambda: persister.metric("liq_persister_db_up") == 1, timeout=30, what="persister reconnects")
    up_at, connections = sim.stats.frames_sent, proxy.connections
    await sim.wait_for(lambda s: s.stats.frames_sent >= up_at + 400, timeout=60)
    assert await asyncio.to_thread(terminate_backends, run.pg_url) >= 1
    await eventually(lambda: proxy.connections > connections, timeout=30, what="persister opens new sessions")


@pytest.mark.e2e
@pytest.mark.timeout(300)
async def test_postgres_outage_and_terminated_sessions(
    redis_url: str, streams: Streams, pg_url: str, tmp_path: Path
) -> None:
    """Promised: no event and no cascade state is lost or doubled by a database outage.

    The persister acknowledges a stream entry only after its transaction committed, so while PostgreSQL
    is unreachable or kills the session, batches stay pending in Redis and are retried until they commit;
    a batch whose commit reply was lost is written again and dropped by the unique key. At the end the
    database equals the delivered ledger exactly (no row missing, none twice), the cascades match the
    ground truth, and alerts (which never touch PostgreSQL) are one per cascade and tier.
    """
    parts = urlsplit(pg_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    try:
        async with pipeline(
            redis_url, streams, pg_url, tmp_path, persister_database_url=via_proxy(pg_url, proxy.port)
        ) as run:
            faults = asyncio.create_task(outages(run, proxy))
            truth = await run.play()
            await faults
            await assert_stored_exactly(run)
            await assert_cascades_and_alerts(run, truth)
    finally:
        await proxy.close()
    assert_clean_exit(run)
