"""Redis crashing (SIGKILL) in the middle of a run and coming back on the same port.

Each test runs the whole stack on a private ``redis-server`` (:class:`tests.servers.RedisProcess`): the
shared server is never killed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import Streams
from tests.e2e.checks import (
    TIERS_ALERTED,
    assert_cascades_and_alerts,
    assert_no_duplicate_alerts,
    assert_stored_exactly,
    cascades,
    delivered_totals,
    discord_posts,
    stored_keys,
    stored_totals,
)
from tests.e2e.pipeline import SCENARIO, SERVICES, Pipeline, assert_clean_exit, pipeline
from tests.servers import RedisProcess
from tests.waiting import eventually

PUBLISH_ERRORS = "liq_stream_publish_errors_total"


async def crash_redis(run: Pipeline, server: RedisProcess, at_s: int) -> int:
    """SIGKILL Redis once the simulator delivered ``at_s`` seconds of the scenario's event time, restart
    it when both ingestors have failed to publish; returns how many ledger entries existed then."""
    entries, at_ms = run.sim.ledger.entries, SCENARIO.start_ms + at_s * 1000
    await run.sim.wait_for(lambda s: bool(entries) and entries[-1].ts >= at_ms, timeout=120)
    ingestors = [run.processes["ingest-binance"], run.processes["ingest-bybit"]]
    before = [p.metric(PUBLISH_ERRORS) for p in ingestors]
    server.kill()
    await eventually(
        lambda: all(p.metric(PUBLISH_ERRORS) > n for p, n in zip(ingestors, before, strict=True)),
        timeout=30,
        what="both ingestors failing to publish",
    )
    await asyncio.to_thread(server.start)
    return len(run.sim.ledger.entries)


@pytest.mark.e2e
@pytest.mark.timeout(300)
async def test_redis_restart_with_persistence_loses_nothing(streams: Streams, pg_url: str, tmp_path: Path) -> None:
    """Promised with ``appendonly yes`` + ``appendfsync always``: nothing is lost, nothing doubled.

    Every write Redis acknowledged is on disk before the reply, so streams, consumer groups, pending
    lists and the alerter's records come back as they were. Producers keep their unsent batches and
    retry; a batch Redis applied but whose reply was lost is added twice and the copies are dropped by
    event id (persister unique key, detector id check). Outcome equals the no-fault run: the database
    holds the delivered ledger exactly, cascades match the ground truth, one alert per cascade and tier.
    """
    with RedisProcess(tmp_path, appendonly=True) as server:
        async with pipeline(server.url, streams, pg_url, tmp_path) as run:
            truth, _ = await run.play_during(crash_redis(run, server, at_s=330))
            await assert_stored_exactly(run)
            await assert_cascades_and_alerts(run, truth)
            assert all(run.processes[name].starts == 1 for name in SERVICES)
    assert_clean_exit(run)


@pytest.mark.e2e
@pytest.mark.timeout(300)
async def test_redis_restart_without_persistence_recovers(streams: Streams, pg_url: str, tmp_path: Path) -> None:
    """Without persistence the services recover by themselves; only what sat in Redis is lost.

    Lost, by design: stream entries Redis held at the crash that a consumer had not yet acknowledged
    (for the persister what arrived since its last commit, normally about one ``FLUSH_MS`` of events;
    the detector's windows, which live in its memory and survive, miss the same entries), the published
    cascade history, the dashboard keys and the alerter's idempotency records in Redis. Kept: what the
    ingestors had not yet sent (their producers keep it and retry), everything already committed to
    PostgreSQL, and what the running alerter posted (mirrored in its memory and written back to Redis
    when found missing), so no tier is alerted twice.

    Asserted: consumer groups are re-created on ``NOGROUP`` without a restart of any service; every
    liquidation delivered after Redis came back is stored; nothing is stored that was not delivered, and
    nothing twice; the cascade that starts after the restart is stored and alerted once per tier; no
    alert is posted twice.
    """
    with RedisProcess(tmp_path, appendonly=False) as server:
        async with pipeline(server.url, streams, pg_url, tmp_path) as run:
            truth, restarted_at = await run.play_during(crash_redis(run, server, at_s=200))
            after: Counter[tuple[object, ...]] = Counter(
                (e.exchange, e.symbol, e.side, e.ts, e.price)
                for e in run.sim.ledger.entries[restarted_at:]
                if e.kind == "delivered"
            )
            assert sum(after.values()) > 500
            await eventually(
                lambda: not (after - stored_keys(run.pg_url)), timeout=90, what="events delivered after the restart"
            )
            delivered = delivered_totals(run.sim)
            stored = stored_totals(run.pg_url)  # fails on a duplicate event
            for key, (count, usd) in stored.items():
                assert count <= delivered[key][0], (key, stored[key], delivered[key])
                assert usd <= delivered[key][1], (key, stored[key], delivered[key])
            assert sum(c for c, _ in stored.values()) >= sum(after.values())
            for name in ("persister", "detector", "alerter"):
                assert run.processes[name].metric("liq_consumer_group_recreated_total") >= 1, name
            assert all(run.processes[name].starts == 1 for name in SERVICES)
            # The cascade that starts after the restart is detected, stored and alerted as in a clean run.
            later = [e for e in truth.episodes if e.kind == "cascade" and e.start_ms > SCENARIO.start_ms + 200_000]
            assert len(later) == 1
            await eventually(
                lambda: strong_cascade(run, later[0].base, later[0].start_ms) is not None, timeout=60, what="cascade"
            )
            cascade_id = strong_cascade(run, later[0].base, later[0].start_ms)
            await eventually(lambda: cascade_id in {c for c, _ in discord_posts(run.discord)}, timeout=60, what="alert")
            await eventually(lambda: all(c[6] for c in cascades(run.pg_url)), timeout=90, what="every cascade closed")
            assert_no_duplicate_alerts(run)  # the alerter's memory covers what Redis lost
            assert not run.discord.early, "a request arrived before retry_after"
    assert_clean_exit(run)


def strong_cascade(run: Pipeline, base: str, after_ms: int) -> str | None:
    """Id of the stored High+ cascade on ``base`` on both exchanges ending after ``after_ms``, if any."""
    found = [c for c in cascades(run.pg_url) if c[1] == base and c[5] >= after_ms and c[2] in TIERS_ALERTED]
    assert len(found) <= 1, found
    if found and found[0][3] == ["binance", "bybit"]:
        return found[0][0]
    return None
