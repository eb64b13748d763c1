"""The real process: ``python -m liq_detector`` consumes, closes on idle by wall clock, exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
import redis.asyncio as aioredis

from liq_common.codec import CASCADES
from tests.conftest import Streams
from tests.detector.test_service import crash_events, xadd
from tests.waiting import eventually, free_port, scaled


@pytest.mark.e2e
async def test_process_lifecycle_and_graceful_stop(redis: aioredis.Redis, redis_url: str, streams: Streams) -> None:
    """Events in, a full cascade lifecycle out (closed by idle wall-clock advancement), SIGTERM exits 0."""
    await xadd(redis, streams.events, crash_events())
    env = {
        **os.environ,
        **streams.env(),
        "REDIS_URL": redis_url,
        "DASH_PREFIX": f"{streams.prefix}liq:dash:",
        "METRICS_PORT": str(free_port()),
        "IDLE_MS": "300",
        "ASSET_OVERRIDES": "{}",
        "LOG_FORMAT": "json",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "liq_detector", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:

        async def closed() -> bool:
            states = [CASCADES.decode(f) for _, f in await redis.xrange(streams.cascades)]
            return any(s.status == "close" for s in states)

        await eventually(closed, timeout=20, what="a closed cascade on the cascades stream")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=scaled(20)) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stdout = (await proc.stdout.read()).decode() if proc.stdout else ""
    assert '"cascade_open"' in stdout
    assert '"service_stopped"' in stdout
    states = [CASCADES.decode(f) for _, f in await redis.xrange(streams.cascades)]
    assert len({s.cascade_id for s in states}) == 1
    assert [s.seq for s in states] == list(range(len(states)))
