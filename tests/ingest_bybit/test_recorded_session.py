"""The recorded 44 s Bybit session (cryptofeed, exchange-feeds.md §3.4) is a healthy, quiet connection.

It holds the subscribe requests a client sent (four of them ``allLiquidation.*``), the acks Bybit sent
back with an empty ``req_id``, and thousands of frames on other topics, but no liquidation: a calm
market. Replayed through the feed's frame handler, every ack must match its request, nothing may be
rejected or published, and nothing may count as a failure.
"""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from liq_common.ingest.connection import ConnectOptions
from liq_common.ingest.settings import FeedSettings
from liq_common.streams import StreamProducer
from liq_ingest_bybit.connection import Heartbeat, Link
from liq_ingest_bybit.feed import BybitFeed, SymbolSource
from liq_ingest_bybit.instruments import Symbols
from liq_ingest_bybit.subscriptions import Acks
from tests.conftest import Streams
from tests.ingest_common.recorded import cryptofeed_session


async def test_recorded_linear_session_is_healthy_and_quiet(redis: aioredis.Redis, streams: Streams) -> None:
    """All 17 subscribe acks are matched, no frame is rejected, no event is published, nothing fails."""
    rows = [r for r in cryptofeed_session("BYBIT") if r.get("conn") == "BYBIT.ws.2"]
    sent = [json.loads(r["data"]) for r in rows if r["t"] == "send"]
    received = [r["data"].encode() for r in rows if r["t"] == "recv"]
    assert any(t.startswith("allLiquidation.") for s in sent for t in s["args"])

    settings = FeedSettings()
    producer = StreamProducer(redis, streams.events, 10_000)
    source = SymbolSource("linear", Symbols(), fixed=[], http=None, rest_url="")
    feed = BybitFeed(
        "linear", "ws://unused", source, settings.sink(producer, "bybit", "linear"), ConnectOptions(), Heartbeat()
    )
    failures: list[list[str]] = []
    link = Link(None, Acks(batch=10, prefix="t."), lambda topics, _: failures.append(topics))  # type: ignore[arg-type]
    for request in sent:
        link.acks.requests(request["args"], batch=len(request["args"]))

    for raw in received:
        await feed.on_frame(raw, 1786310900000, link)

    assert len(received) == feed.frames
    assert dict(feed.rejects.counts) == {}
    assert failures == []
    assert link.acks.pending == {}
    assert {t for s in sent for t in s["args"]} == link.acks.acked
    assert feed.sink.published == 0
    assert producer.buffered == 0
    assert len(received) - len(sent) == feed.ignored
    assert link.drop_reason is None
