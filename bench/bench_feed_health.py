"""Feed-health benchmarks: what silent-feed detection adds to the per-frame hot path, the cost of one
market-activity probe (one ``XREVRANGE`` of 2,000 events, decoded), and of one cascade's coverage.

Run: ``uv run python bench/bench_feed_health.py`` (prints one row per measurement); ``run()`` returns the rows.
The probe row needs the local Redis (``REDIS_URL``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rows import row

from liq_common.codec import to_fields
from liq_common.events import FeedStatus, Liquidation, make_event_id
from liq_common.ingest.activity import MarketActivity
from liq_common.ingest.health import SilenceRules, SlotHealth
from liq_common.ingest.metrics import FeedMetrics
from liq_common.streams import connect_redis
from liq_detector.coverage import FeedTimeline

FORCE_ORDER = (
    b'{"stream":"!forceOrder@arr","data":{"e":"forceOrder","E":1767225600123,"o":{"s":"BTCUSDT","S":"SELL",'
    b'"o":"LIMIT","f":"IOC","q":"0.014","p":"64900.10","ap":"65000.10","X":"FILLED","l":"0.014","z":"0.014",'
    b'"T":1767225600100}}}'
)
MARKER = b"markPrice"


def hot_path(n: int = 1_000_000) -> list[dict[str, Any]]:
    """Per liquidation frame: the control-stream byte check plus ``SlotHealth.data``."""
    slot = SlotHealth(None, FeedMetrics("binance", "linear"), "0", SilenceRules(control_timeout=15.0))
    raw = FORCE_ORDER
    started = time.perf_counter()
    for _ in range(n):
        pass
    empty = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(n):
        if raw.find(MARKER, 0, 40) >= 0:
            raise AssertionError("a forceOrder frame is not a control frame")
        slot.data(i, liquidation=True)
    per_frame = (time.perf_counter() - started - empty) / n * 1e9
    note = "marker check + SlotHealth.data per liquidation frame, loop overhead subtracted"
    return [row("feed_health", "hot_path_per_frame", per_frame, "ns", 500.0, note, higher=False)]


def coverage(feeds: int = 4, outages: int = 200, n: int = 20_000) -> list[dict[str, Any]]:
    """One cascade's coverage over ``feeds`` feeds with ``outages`` outages each in the timeline."""
    timeline = FeedTimeline(keep_ms=10**12)
    names = [f"ex{f}:linear" for f in range(feeds)]
    for f in range(feeds):
        for k in range(outages):
            for status, ts in (("disconnected", k * 10_000), ("reconnected", k * 10_000 + 3_000)):
                timeline.apply(FeedStatus(exchange=f"ex{f}", market="linear", conn="0", status=status, ts=ts))  # type: ignore[arg-type]
    started = time.perf_counter()
    for i in range(n):
        timeline.coverage(names, i * 50, i * 50 + 60_000)
    per = (time.perf_counter() - started) / n * 1e6
    return [
        row(
            "feed_health",
            "coverage_per_cascade_state",
            per,
            "us",
            1000.0,
            f"{feeds} feeds x {outages} outages",
            higher=False,
        )
    ]


async def probe(entries: int = 2_000, rounds: int = 20) -> list[dict[str, Any]]:
    """One activity probe over ``entries`` recent events (the cap a busy market reaches)."""
    client = connect_redis(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    stream = f"bench:{uuid.uuid4().hex[:8]}:events"
    now = int(time.time() * 1000)
    try:
        pipe = client.pipeline(transaction=False)
        for i in range(entries):
            ts = now - entries + i
            ev = Liquidation(
                event_id=make_event_id("bybit", "linear", "BTCUSDT", "long", ts, str(i)), exchange="bybit",
                market="linear", symbol="BTCUSDT", base="BTC", quote="USDT", side="long", price=Decimal(65000),
                qty=Decimal("0.1"), notional_usd=Decimal(6500), ts=ts, recv_ts=ts,
            )  # fmt: skip
            pipe.xadd(stream, to_fields(ev))  # type: ignore[arg-type]
        await pipe.execute()
        activity = MarketActivity(client, stream, {("binance", "linear")}, window=600.0, min_events=20)
        started = time.perf_counter()
        for _ in range(rounds):
            await activity.probe()
        per = (time.perf_counter() - started) / rounds * 1000
        assert activity.active
    finally:
        await client.delete(stream)
        await client.aclose()
    return [
        row(
            "feed_health",
            "activity_probe",
            per,
            "ms",
            50.0,
            f"XREVRANGE + decode of {entries} events, every 5 s",
            higher=False,
        )
    ]


def run() -> list[dict[str, Any]]:
    """Every feed-health row."""
    return [*hot_path(), *coverage(), *asyncio.run(probe())]


if __name__ == "__main__":
    for row in run():
        print(row)
