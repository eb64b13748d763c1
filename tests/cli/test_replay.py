"""``liq replay``: JSON-lines events onto the events stream, paced, bad lines reported and skipped."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import redis.asyncio as aioredis

from liq_common.codec import LIQUIDATIONS, encode
from tests.cli.factories import env_for, liq, run_liq
from tests.conftest import Streams
from tests.waiting import free_port


def recording(path: Path, count: int, spacing_ms: int) -> list:
    """Write ``count`` events ``spacing_ms`` apart, plus a comment, a blank and a bad line; return the events."""
    base = 1_767_225_600_000
    exchanges = ("binance", "bybit")
    events = [liq(exchanges[i % 2], "BTC", "long", f"{100 + i}.5", base + i * spacing_ms) for i in range(count)]
    lines = [b"# recorded for the test", *(encode(e) for e in events[:3]), b"", b'{"kind":"liquidation","side":"up"}']
    lines += [encode(e) for e in events[3:]]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return events


async def stream_events(redis: aioredis.Redis, stream: str) -> list:
    return [LIQUIDATIONS.decode(fields) for _, fields in await redis.xrange(stream)]


async def test_replay_publishes_every_good_line_in_order_and_reports_the_bad_one(
    redis_url: str, redis: aioredis.Redis, streams: Streams, tmp_path: Path
) -> None:
    """Every valid event reaches the stream unchanged and in order; the bad line is named with its number."""
    path = tmp_path / "events.jsonl"
    events = recording(path, 2500, spacing_ms=1000)  # 40 minutes of events: must not be paced at --speed 0
    result = await run_liq("replay", str(path), "--speed", "0", env=env_for(redis_url, streams))
    assert result.code == 0, result.err
    assert await stream_events(redis, streams.events) == events
    assert f"{path}:6: skipped, not a liquidation" in result.err
    assert "published 2,500 events" in result.err
    assert "1 lines skipped" in result.err


async def test_replay_keeps_the_original_pacing_scaled_by_speed(
    redis_url: str, redis: aioredis.Redis, streams: Streams, tmp_path: Path
) -> None:
    """Events 400 ms apart at --speed 4 take at least 100 ms each; --rebase-time moves them to now."""
    path = tmp_path / "events.jsonl"
    events = recording(path, 6, spacing_ms=400)
    started = time.time()
    result = await run_liq("replay", str(path), "--speed", "4", "--rebase-time", env=env_for(redis_url, streams))
    assert result.code == 0, result.err
    entries = await redis.xrange(streams.events)
    got = [LIQUIDATIONS.decode(fields) for _, fields in entries]
    assert [e.event_id for e in got] == [e.event_id for e in events]
    # Rebased: the first event is "now", and the spacing is kept.
    assert abs(got[0].ts - started * 1000) < 30_000
    assert [b.ts - a.ts for a, b in itertools.pairwise(got)] == [400] * 5
    # Paced: 5 gaps of 400 ms / 4 = 100 ms each between the publish times (stream ids are ms timestamps).
    published = [int(entry_id.split(b"-")[0]) for entry_id, _ in entries]
    assert published[-1] - published[0] >= 5 * 100 - 5


async def test_replay_of_a_missing_file_or_redis_down_exits_non_zero(streams: Streams, tmp_path: Path) -> None:
    """A missing file is status 2; Redis on a closed port is status 1 with one line naming Redis."""
    env = env_for(f"redis://127.0.0.1:{free_port()}/0", streams)
    missing = await run_liq("replay", str(tmp_path / "nope.jsonl"), env=env)
    assert missing.code == 2
    assert "no such file" in missing.err
    path = tmp_path / "events.jsonl"
    recording(path, 3, spacing_ms=10)
    down = await run_liq("replay", str(path), "--speed", "0", env=env)
    assert down.code == 1
    assert "Redis unreachable" in down.err
