"""PostgreSQL going away in the middle of a run.

* Outage and failover on the shared server: the persister reaches it through
  :class:`tests.persister.tcp_proxy.TcpProxy`; cutting the proxy is what a stopped server looks like
  (connections reset, new ones refused); ``pg_terminate_backend`` on its backends is what a restart or
  failover sends (SQLSTATE 57P01 ``admin_shutdown``).
* A real server crash and restart: a private PostgreSQL (the pgserver build ``make run`` embeds, in the
  test's temporary directory) is stopped with ``pg_ctl -m immediate`` (no shutdown checkpoint: the
  restart runs crash recovery from the WAL) while the run goes on, then started again.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.conftest import Streams
from tests.e2e.checks import assert_cascades_and_alerts, assert_stored_exactly
from tests.e2e.pipeline import Pipeline, assert_clean_exit, pipeline
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
            truth, _ = await run.play_during(outages(run, proxy))
            await assert_stored_exactly(run)
            await assert_cascades_and_alerts(run, truth)
    finally:
        await proxy.close()
    assert_clean_exit(run)


def _pg_ctl(server: Any, *args: str) -> None:
    """Run the embedded server's ``pg_ctl`` on its data directory, as its system user."""
    from pgserver import _commands

    _commands.pg_ctl(list(args), pgdata=server.pgdata, user=server.system_user, timeout=60)


async def crash_and_restart(run: Pipeline, server: Any) -> None:
    """Stop the server like a crash once events flow, keep it down while events pile up, start it again."""
    persister, sim = run.processes["persister"], run.sim
    await sim.wait_for(lambda s: s.stats.frames_sent >= 700, timeout=120)
    await asyncio.to_thread(_pg_ctl, server, "-m", "immediate", "stop")
    await eventually(lambda: persister.metric("liq_persister_db_up") == 0, timeout=30, what="persister sees db down")
    down_at = sim.stats.frames_sent
    await sim.wait_for(lambda s: s.stats.frames_sent >= down_at + 700, timeout=60)
    uri = server.get_uri()
    await asyncio.to_thread(server.ensure_postgres_running)  # same data directory, same socket
    assert server.get_uri() == uri
    await eventually(lambda: persister.metric("liq_persister_db_up") == 1, timeout=60, what="persister reconnects")


@pytest.mark.e2e
@pytest.mark.timeout(300)
async def test_postgres_crash_and_restart(
    redis_url: str, streams: Streams, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promised: a crashed and restarted PostgreSQL loses nothing committed and doubles nothing.

    What the persister committed before the crash survives it (WAL recovery); what it had in flight was
    never acknowledged on the stream, so it is retried until the server is back. The database then
    equals the delivered ledger exactly, the cascades match the ground truth, alerts are one per tier.
    """
    monkeypatch.setenv("XDG_RUNTIME_DIR", os.environ.get("XDG_RUNTIME_DIR", str(tmp_path)))  # else a warning
    import pgserver

    server = pgserver.get_server(str(tmp_path / "pg"), cleanup_mode="stop")
    try:
        pg_url = str(server.get_uri())
        async with pipeline(redis_url, streams, pg_url, tmp_path) as run:
            truth, _ = await run.play_during(crash_and_restart(run, server))
            await assert_stored_exactly(run)
            await assert_cascades_and_alerts(run, truth)
    finally:
        await asyncio.to_thread(server.cleanup)
    assert_clean_exit(run)
