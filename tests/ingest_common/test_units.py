"""The shared ingest pieces: overlap de-duplication, reject counting, tiered logs, the publishing sink."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Literal

import msgspec
import pytest
import redis.asyncio as aioredis
import structlog
from structlog.testing import capture_logs

from liq_common.events import Liquidation, make_event_id
from liq_common.ingest.dedup import RecentIds
from liq_common.ingest.metrics import FRAMES_REJECTED, FeedMetrics
from liq_common.ingest.rejects import Rejects, schema_reason
from liq_common.ingest.settings import FeedSettings
from liq_common.ingest.tiers import TieredLog
from liq_common.streams import StreamProducer
from tests.conftest import Streams
from tests.ingest_common.harness import stream_events


class Shape(msgspec.Struct):
    a: str
    b: Literal["OK"]


def _event(usd: str, n: int = 0, side: str = "long") -> Liquidation:
    return Liquidation(
        event_id=make_event_id("bybit", "linear", "BTCUSDT", side, 1000 + n, usd),
        exchange="bybit",
        market="linear",
        symbol="BTCUSDT",
        base="BTC",
        quote="USDT",
        side=side,  # type: ignore[arg-type]
        price=Decimal(50000),
        qty=Decimal(usd) / 50000,
        notional_usd=Decimal(usd),
        ts=1000 + n,
        recv_ts=1250 + n,
    )


class TestRecentIds:
    def test_remembers_and_forgets_the_oldest(self) -> None:
        """An id is new once; beyond capacity the oldest is forgotten first."""
        ids = RecentIds(2)
        assert [ids.add("a"), ids.add("a"), ids.add("b"), ids.add("c")] == [True, False, True, True]
        assert "a" not in ids
        assert len(ids) == 2
        assert ids.add("a")

    def test_rejects_zero_capacity(self) -> None:
        """A window of zero ids would silently disable de-duplication."""
        with pytest.raises(ValueError, match="capacity"):
            RecentIds(0)


class TestRejects:
    def test_counts_every_reject_and_logs_the_first_per_reason(self) -> None:
        """Three rejects of two reasons: three counts, two log lines with truncated samples."""
        rejects = Rejects("binance", "linear")
        before = FRAMES_REJECTED.labels("binance", "bad_json")._value.get()
        with capture_logs() as logs:
            rejects.reject("bad_json", b"{" * 1000, "truncated")
            rejects.reject("bad_json", b"{", "truncated")
            rejects.reject("non_positive", b'{"z":"0"}', "z=0")
        assert dict(rejects.counts) == {"bad_json": 2, "non_positive": 1}
        assert rejects.total == 3
        assert FRAMES_REJECTED.labels("binance", "bad_json")._value.get() - before == 2
        assert [(line["event"], line["reason"]) for line in logs] == [
            ("frame_rejected", "bad_json"),
            ("frame_rejected", "non_positive"),
        ]
        assert len(logs[0]["sample"]) < 400

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [(b'{"a":"x"}', "missing_field"), (b'{"a":"x","b":"BAD"}', "bad_value"), (b'{"a":[],"b":"OK"}', "wrong_type")],
    )
    def test_schema_reason(self, raw: bytes, reason: str) -> None:
        """Validation errors map to a missing field, a bad enum value or a wrong type."""
        with pytest.raises(msgspec.ValidationError) as caught:
            msgspec.json.decode(raw, type=Shape)
        assert schema_reason(caught.value) == reason


class TestTieredLog:
    def test_levels_follow_the_thresholds(self) -> None:
        """>= full: info with every field; >= compact: info compact; smaller: debug."""
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
        try:
            tiers = TieredLog(full_usd=100_000, compact_usd=10_000)
            with capture_logs() as logs:
                for usd in ("250000", "100000", "99999.99", "10000", "9999"):
                    tiers.record(_event(usd))
        finally:
            structlog.reset_defaults()
        assert [(line["event"], line["log_level"]) for line in logs] == [
            ("liquidation_large", "info"),
            ("liquidation_large", "info"),
            ("liquidation", "info"),
            ("liquidation", "info"),
            ("liquidation_small", "debug"),
        ]
        assert logs[0]["lag_ms"] == 250
        assert "price" in logs[0]
        assert "price" not in logs[2]

    def test_thresholds_must_be_ordered(self) -> None:
        """A compact threshold above the full one is a configuration error."""
        with pytest.raises(ValueError, match="exceeds"):
            TieredLog(full_usd=1_000, compact_usd=10_000)


async def test_sink_publishes_each_event_once(redis: aioredis.Redis, streams: Streams) -> None:
    """A replayed event is dropped by id; the rest reach the stream with their notional metered by side."""
    producer = StreamProducer(redis, streams.events, 10_000)
    sink = FeedSettings().sink(producer, "bybit", "linear")
    metrics = FeedMetrics("bybit", "linear")
    short_before = metrics.notional_short._value.get()
    first = [_event("100", 1), _event("200", 2, "short")]
    assert await sink.publish(first) == 2
    assert await sink.publish([first[0], _event("300", 3)]) == 1
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(producer.run(stop), timeout=10)  # flushes everything buffered, then returns
    events = await stream_events(redis, streams.events)
    assert [e.notional_usd for e in events] == [Decimal(100), Decimal(200), Decimal(300)]
    assert (sink.published, sink.duplicates) == (3, 1)
    assert metrics.notional_short._value.get() - short_before == 200.0
