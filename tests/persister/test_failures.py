"""Crashes and outages end exact: kill -9 of the persister mid-batch, PostgreSQL unreachable mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import REGISTRY

from tests.persister.conftest import row_count, running, scalar
from tests.persister.factories import liquidations, publish, usd_total
from tests.persister.tcp_proxy import TcpProxy
from tests.waiting import eventually, free_port, scaled


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "liq_persister"], env=env, stdout=out, stderr=subprocess.STDOUT)


async def test_kill_9_mid_batch_and_restart_still_ends_exact(redis, redis_url, streams, pg_url, tmp_path):
    """SIGKILL while batches are in flight, restart: every event exactly once, nothing left pending."""
    events = liquidations(60_000, seed=3)
    await publish(redis, streams.events, events)
    env = {
        **os.environ,
        **streams.env(),
        "REDIS_URL": redis_url,
        "DATABASE_URL": pg_url,
        "METRICS_PORT": str(free_port()),
        "CONSUMER": "crash-test",
        "BATCH_ROWS": "2000",
        "LOG_FORMAT": "json",
    }
    log = tmp_path / "persister.log"
    proc = _start(env, log)
    try:

        async def some_rows() -> bool:
            return await row_count(pg_url) > 0

        await eventually(some_rows, timeout=30, what="first committed batch")
        proc.kill()
        assert proc.wait(timeout=scaled(10)) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    at_kill = await scalar(pg_url, "SELECT count(*) FROM liquidations")
    assert 0 < at_kill < len(events), "the kill must land mid-run"

    env["METRICS_PORT"] = str(free_port())
    proc = _start(env, log)
    try:

        async def all_rows() -> bool:
            return bool(await scalar(pg_url, "SELECT count(*) FROM liquidations") >= len(events))

        await eventually(all_rows, timeout=60, what="every event after the restart")

        async def nothing_pending() -> bool:
            return bool((await redis.xpending(streams.events, "persister"))["pending"] == 0)

        await eventually(nothing_pending, timeout=30, what="every entry acknowledged")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=scaled(20)) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert await scalar(pg_url, "SELECT count(*) FROM liquidations") == len(events)
    assert await scalar(pg_url, "SELECT sum(notional_usd) FROM liquidations") == usd_total(events)
    assert await redis.xlen(streams.dead) == 0


async def test_postgresql_outage_mid_run_ends_exact(redis, streams, migrated_url, settings_for):
    """PostgreSQL unreachable (proxy cut) while writing: entries stay pending, health degrades, then
    everything is written exactly once when it is back, and nothing is dead-lettered."""
    pg_url = migrated_url
    target = urlsplit(pg_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    via_proxy = urlunsplit(target._replace(netloc=f"{target.username or 'postgres'}@127.0.0.1:{proxy.port}"))
    first, second = liquidations(20_000, seed=5), liquidations(20_000, seed=6, start=20_000)
    await publish(redis, streams.events, first)
    transient_before = _sample("liq_consumer_transient_errors_total", stream=streams.events, group="persister")
    try:
        async with running(settings_for(via_proxy, batch_rows=1000, db_timeout=5.0)) as ctx:

            async def some_rows() -> bool:
                return bool(await scalar(pg_url, "SELECT count(*) > 0 FROM liquidations"))

            await eventually(some_rows, timeout=30, what="first committed batch")
            await proxy.cut()
            at_cut = await scalar(pg_url, "SELECT count(*) FROM liquidations")
            assert at_cut < len(first), "the outage must start mid-run"
            await publish(redis, streams.events, second)
            await eventually(lambda: not ctx.health.checks["database"].ok, timeout=15, what="database unhealthy")
            await eventually(
                lambda: (
                    _sample("liq_consumer_transient_errors_total", stream=streams.events, group="persister")
                    > transient_before + 2
                ),
                timeout=15,
                what="several retries while down",
            )
            assert (await redis.xpending(streams.events, "persister"))["pending"] > 0
            assert await scalar(pg_url, "SELECT count(*) FROM liquidations") < len(first) + len(second)

            await proxy.restore()

            async def all_rows() -> bool:
                return bool(await scalar(pg_url, "SELECT count(*) FROM liquidations") >= 40_000)

            await eventually(all_rows, timeout=60, what="catch-up after the outage")
            await eventually(lambda: ctx.health.checks["database"].ok, timeout=15, what="database healthy again")
    finally:
        await proxy.close()
    assert await scalar(pg_url, "SELECT count(*) FROM liquidations") == 40_000
    assert await scalar(pg_url, "SELECT sum(notional_usd) FROM liquidations") == usd_total(first + second)
    assert await redis.xlen(streams.dead) == 0
    assert (await redis.xpending(streams.events, "persister"))["pending"] == 0


async def test_server_side_connection_kills_mid_run_end_exact(redis, streams, migrated_url, settings_for):
    """The persister's backends terminated by the server (SQLSTATE 57P01, what a restart or failover sends)
    several times while writing: every event still ends in exactly one row."""
    pg_url = migrated_url
    events = liquidations(40_000, seed=8)
    await publish(redis, streams.events, events)
    terminate = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name LIKE 'liq-persister/%'"
    )
    errors_before = _sample("liq_persister_db_errors_total", kind="unavailable")
    async with running(settings_for(pg_url, batch_rows=1000)):
        for goal in (2000, 12_000, 24_000):

            async def reached(goal: int = goal) -> bool:
                return bool(await scalar(pg_url, "SELECT count(*) FROM liquidations") >= goal)

            await eventually(reached, timeout=60, what=f"{goal} rows")
            assert await scalar(pg_url, terminate) >= 1

        async def all_rows() -> bool:
            return bool(await scalar(pg_url, "SELECT count(*) FROM liquidations") >= len(events))

        await eventually(all_rows, timeout=60, what="every event")
    assert _sample("liq_persister_db_errors_total", kind="unavailable") > errors_before
    assert await scalar(pg_url, "SELECT count(*) FROM liquidations") == len(events)
    assert await scalar(pg_url, "SELECT sum(notional_usd) FROM liquidations") == usd_total(events)
    assert await redis.xlen(streams.dead) == 0


async def test_starts_while_postgresql_is_down_and_catches_up(redis, streams, pg_url, settings_for):
    """Started with PostgreSQL unreachable: reports it, keeps retrying, migrates and writes once it is up."""
    target = urlsplit(pg_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    await proxy.cut()  # the port is known and refuses connections
    via_proxy = urlunsplit(target._replace(netloc=f"{target.username or 'postgres'}@127.0.0.1:{proxy.port}"))
    events = liquidations(1000, seed=4)
    await publish(redis, streams.events, events)
    try:
        async with running(settings_for(via_proxy)) as ctx:

            def down() -> bool:
                check = ctx.health.checks.get("database")
                return check is not None and not check.ok and "start" in check.detail

            await eventually(down, timeout=15, what="database reported down at start")
            assert await scalar(pg_url, "SELECT to_regclass('liquidations') IS NULL") is True
            await proxy.restore()

            async def written() -> bool:
                return await row_count(pg_url) == 1000

            await eventually(written, timeout=30, what="events written after the database came up")
            await eventually(lambda: ctx.health.checks["database"].ok, timeout=15, what="database healthy")
    finally:
        await proxy.close()
    assert await scalar(pg_url, "SELECT sum(notional_usd) FROM liquidations") == usd_total(events)
