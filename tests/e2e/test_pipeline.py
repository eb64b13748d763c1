"""The whole pipeline as users run it: simulator -> both ingestors -> Redis -> detector, persister, alerter.

Every service is a real child process; only the exchanges, Discord and Telegram are fakes. The database must
hold exactly what the simulator delivered (count and USD per exchange, market and side), the cascades must
match the scenario's ground truth, and every cascade gets at most one alert per tier, also when every
consumer is killed with SIGKILL in the middle of the run and restarted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from liq_common.codec import CASCADES
from tests.conftest import Streams
from tests.e2e.checks import assert_cascades_and_alerts, assert_stored_exactly
from tests.e2e.pipeline import CONSUMERS, assert_clean_exit, pipeline


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.parametrize("fault", ["none", "kill-consumers"])
async def test_pipeline_end_to_end(fault: str, redis_url: str, streams: Streams, pg_url: str, tmp_path: Path) -> None:
    """Exact storage, ground-truth cascades and one alert per cascade and tier (also across SIGKILLs).

    With ``kill-consumers`` the persister, detector and alerter are killed with SIGKILL mid-run and
    restarted: entries delivered but not acknowledged come back to the same consumer name, the unique
    key and the detector's event-id check drop what was already handled, and the alerter's records keep
    each tier to one message.
    """
    async with pipeline(redis_url, streams, pg_url, tmp_path) as run:
        if fault == "kill-consumers":

            async def crash_consumers() -> None:
                await run.sim.wait_for(lambda s: s.stats.frames_sent >= 1500, timeout=120)
                for name in CONSUMERS:
                    run.processes[name].kill()
                for name in CONSUMERS:
                    run.processes[name].start()

            truth, _ = await run.play_during(crash_consumers())
        else:
            truth = await run.play()
        await assert_stored_exactly(run)
        await assert_cascades_and_alerts(run, truth)
    assert_clean_exit(run)
    if fault == "kill-consumers":
        assert all(run.processes[name].starts == 2 for name in CONSUMERS)


@pytest.mark.e2e
@pytest.mark.timeout(300)
async def test_sharded_detector_end_to_end(redis_url: str, streams: Streams, pg_url: str, tmp_path: Path) -> None:
    """The detector as two shard processes (SHARD_COUNT=2), one of them killed with SIGKILL mid-run and
    restarted: the cascades still match the ground truth, each lifecycle and each alert tier once; the
    shards' groups each read the whole stream."""
    async with pipeline(redis_url, streams, pg_url, tmp_path, detector_shards=2) as run:

        async def crash_shard() -> None:
            await run.sim.wait_for(lambda s: s.stats.frames_sent >= 1500, timeout=120)
            run.restart("detector-1")

        truth, _ = await run.play_during(crash_shard())
        await assert_stored_exactly(run)
        await assert_cascades_and_alerts(run, truth)
        states = [CASCADES.decode(fields) for _, fields in await run.redis.xrange(streams.cascades)]
        seqs: dict[str, list[int]] = {}
        for state in states:
            seqs.setdefault(state.cascade_id, []).append(state.seq)
        assert all(sorted(s) == list(range(len(s))) for s in seqs.values()), seqs  # no state twice, none lost
        groups = {g["name"] for g in await run.redis.xinfo_groups(streams.events)}
        assert {b"detector.0of2", b"detector.1of2"} <= groups
        assert b"detector" not in groups
    assert_clean_exit(run)
    assert run.processes["detector-1"].starts == 2
