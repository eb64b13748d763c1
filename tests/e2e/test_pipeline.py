"""The whole pipeline as users run it: simulator -> both ingestors -> Redis -> detector, persister, alerter.

Every service is a real child process; only the exchanges, Discord and Telegram are fakes. The database must
hold exactly what the simulator delivered (count and USD per exchange, market and side), the cascades must
match the scenario's ground truth, and every cascade gets at most one alert per tier, also when every
consumer is killed with SIGKILL in the middle of the run and restarted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Streams
from tests.e2e.pipeline import (
    CONSUMERS,
    assert_cascades_and_alerts,
    assert_clean_exit,
    assert_stored_exactly,
    pipeline,
)


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
