"""The Binance ingestor without its process shell: feeds, instrument tables and the stream producer.

``__main__`` runs it under :func:`liq_common.runtime.run_service`; tests run it in-process against the
exchange simulator and a real Redis.
"""

from __future__ import annotations

import asyncio

import httpx
import redis.asyncio as aioredis

from liq_common.events import Market
from liq_common.ingest.lifecycle import run_feeds
from liq_common.ingest.settings import parse_markets
from liq_common.observability import Health
from liq_common.streams import StreamProducer
from liq_ingest_binance.feed import BinanceFeed
from liq_ingest_binance.instruments import Instruments
from liq_ingest_binance.settings import Settings


def markets(settings: Settings) -> list[Market]:
    """The markets ``BINANCE_MARKETS`` enables (raises ValueError naming the variable on a bad entry)."""
    return parse_markets(settings.binance_markets, "BINANCE_MARKETS")


class BinanceIngest:
    """Every enabled Binance feed publishing into one events-stream producer.

    Args:
        settings: Service settings.
        client: Redis client for the producer.
        http: HTTP client for exchangeInfo.
        health: Service health checks (one per feed connection).
    """

    def __init__(
        self, settings: Settings, client: aioredis.Redis, http: httpx.AsyncClient, health: Health | None = None
    ) -> None:
        self.settings = settings
        self.producer = StreamProducer(
            client, settings.events_stream, settings.stream_maxlen, max_batch=settings.publish_batch
        )
        urls = {"linear": settings.binance_usdm_ws_url, "inverse": settings.binance_coinm_ws_url}
        rest = {"linear": settings.binance_usdm_rest_url, "inverse": settings.binance_coinm_rest_url}
        options = settings.connect_options(rotate_after=settings.rotate_after, overlap=settings.rotate_overlap)
        chosen = markets(settings)
        controls = {"linear": settings.binance_usdm_control_stream, "inverse": settings.binance_coinm_control_stream}
        self.status = settings.status_producer(client)
        self.activity = settings.activity(client, {("binance", market) for market in chosen})
        self.feeds: dict[Market, BinanceFeed] = {}
        for market in chosen:
            sink = settings.sink(self.producer, "binance", market)
            self.feeds[market] = BinanceFeed(
                market,
                urls[market],
                Instruments(market, rest[market], http, settings.instruments_min_gap),
                sink,
                options,
                backoff=settings.backoff(),
                refresh_interval=settings.instruments_refresh,
                max_frame_bytes=settings.max_frame_bytes,
                subscribe_retry=settings.subscribe_retry,
                health=health,
                slot=settings.slot_health(
                    self.status, sink.metrics, "0", control=bool(controls[market]), activity=self.activity
                ),
                control_stream=controls[market],
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then flush every queued event to Redis and return."""
        await run_feeds(
            self.feeds.values(),
            flushers=(self.producer.run, self.status.run),
            helpers=(self.activity.run,),
            stop=stop,
        )
