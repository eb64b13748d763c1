"""The Bybit ingestor without its process shell: one feed per market and the stream producer.

``__main__`` runs it under :func:`liq_common.runtime.run_service`; tests run it in-process against the
exchange simulator and a real Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import redis.asyncio as aioredis

from liq_common.events import Market
from liq_common.ingest.health import SlotHealth
from liq_common.ingest.lifecycle import run_feeds
from liq_common.ingest.metrics import FeedMetrics
from liq_common.ingest.settings import parse_markets
from liq_common.observability import Health
from liq_common.streams import StreamProducer
from liq_ingest_bybit.connection import Heartbeat
from liq_ingest_bybit.feed import BybitFeed, SymbolSource
from liq_ingest_bybit.instruments import Symbols, market_of
from liq_ingest_bybit.settings import Settings


def markets(settings: Settings) -> list[Market]:
    """The markets ``BYBIT_MARKETS`` enables (raises ValueError naming the variable on a bad entry)."""
    return parse_markets(settings.bybit_markets, "BYBIT_MARKETS")


def fixed_symbols(settings: Settings) -> dict[Market, list[str]] | None:
    """``BYBIT_SYMBOLS`` split by market, or None when symbols are listed over REST."""
    names = [s.strip().upper() for s in settings.bybit_symbols.split(",") if s.strip()]
    if not names:
        return None
    split: dict[Market, list[str]] = {"linear": [], "inverse": []}
    for name in names:
        split[market_of(name)].append(name)
    return split


class BybitIngest:
    """Every enabled Bybit market publishing into one events-stream producer.

    Args:
        settings: Service settings.
        client: Redis client for the producer.
        http: HTTP client for instrument listings.
        health: Service health checks (one per connection).
    """

    def __init__(
        self, settings: Settings, client: aioredis.Redis, http: httpx.AsyncClient, health: Health | None = None
    ) -> None:
        self.settings = settings
        self.producer = StreamProducer(
            client, settings.events_stream, settings.stream_maxlen, max_batch=settings.publish_batch
        )
        urls = {"linear": settings.bybit_linear_ws_url, "inverse": settings.bybit_inverse_ws_url}
        fixed = fixed_symbols(settings)
        heartbeat = Heartbeat(
            interval=settings.heartbeat_interval,
            pong_timeout=settings.pong_timeout,
            ack_timeout=settings.ack_timeout,
            subscribe_retry=settings.subscribe_retry,
            subscribe_batch=settings.subscribe_batch,
        )
        options = settings.connect_options(protocol_pings=False)
        chosen = markets(settings)
        self.status = settings.status_producer(client)
        self.activity = settings.activity(client, {("bybit", market) for market in chosen})
        self.feeds: dict[Market, BybitFeed] = {}
        for market in chosen:
            sink = settings.sink(self.producer, "bybit", market)
            source = SymbolSource(
                market,
                Symbols(),
                fixed=fixed[market] if fixed is not None else None,
                http=http,
                rest_url=settings.bybit_rest_url,
                page_limit=settings.instruments_page_limit,
            )
            self.feeds[market] = BybitFeed(
                market,
                urls[market],
                source,
                sink,
                options,
                heartbeat,
                backoff_factory=settings.backoff,
                refresh_interval=settings.instruments_refresh,
                args_limit=settings.args_limit,
                max_frame_bytes=settings.max_frame_bytes,
                health=health,
                slot_factory=self._slots(sink.metrics),
            )

    def _slots(self, metrics: FeedMetrics) -> Callable[[str], SlotHealth]:
        """Health slots of one market's connections. Bybit has no always-flowing stream here: the heartbeat
        (pong within ``PONG_TIMEOUT``) already proves the link, so silence is judged by activity only."""

        def make(conn: str) -> SlotHealth:
            return self.settings.slot_health(self.status, metrics, conn, control=False, activity=self.activity)

        return make

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then flush every queued event to Redis and return."""
        await run_feeds(
            self.feeds.values(),
            flushers=(self.producer.run, self.status.run),
            helpers=(self.activity.run,),
            stop=stop,
        )
