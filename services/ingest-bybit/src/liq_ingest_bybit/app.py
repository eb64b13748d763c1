"""The Bybit ingestor without its process shell: one feed per market and the stream producer.

``__main__`` runs it under :func:`liq_common.runtime.run_service`; tests run it in-process against the
exchange simulator and a real Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import get_args

import httpx
import redis.asyncio as aioredis

from liq_common.events import Market
from liq_common.observability import Health
from liq_common.streams import StreamProducer
from liq_ingest_bybit.connection import Heartbeat
from liq_ingest_bybit.feed import BybitFeed, SymbolSource
from liq_ingest_bybit.instruments import Symbols, market_of
from liq_ingest_bybit.settings import Settings


def markets(settings: Settings) -> list[Market]:
    """The markets ``BYBIT_MARKETS`` enables.

    Raises:
        ValueError: An entry is not ``linear`` or ``inverse``.
    """
    chosen: list[Market] = []
    for name in (part.strip() for part in settings.bybit_markets.split(",")):
        if name not in get_args(Market):
            raise ValueError(f"BYBIT_MARKETS: unknown market {name!r}; use linear, inverse")
        chosen.append(name)  # type: ignore[arg-type]
    return chosen


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
        self.feeds: dict[Market, BybitFeed] = {}
        for market in markets(settings):
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
                settings.sink(self.producer, "bybit", market),
                options,
                heartbeat,
                backoff_factory=settings.backoff,
                refresh_interval=settings.instruments_refresh,
                args_limit=settings.args_limit,
                max_frame_bytes=settings.max_frame_bytes,
                health=health,
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then flush every queued event to Redis and return."""
        flushed = asyncio.Event()
        producer = asyncio.create_task(self.producer.run(flushed))
        try:
            await asyncio.gather(*(feed.run(stop) for feed in self.feeds.values()))
        finally:
            flushed.set()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
