"""Is the market active? Other feeds' recent liquidations, read from the events stream.

A feed that has carried no liquidation for minutes is only suspicious while liquidations are happening
elsewhere. :class:`MarketActivity` answers that cheaply: every ``refresh`` seconds one ``XREVRANGE``
of the events stream over the last ``window`` seconds (entry ids are milliseconds, so the range is a
time range), capped at ``limit`` entries, counting the liquidations of OTHER feeds. One probe per
ingest process, shared by all its connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import cast

import redis.asyncio as aioredis
import structlog

from liq_common.codec import LIQUIDATIONS, EntryDecodeError
from liq_common.streams import REDIS_DOWN

log = structlog.get_logger(__name__)


class MarketActivity:
    """Counts other feeds' liquidations of the last ``window`` seconds.

    Args:
        client: Redis client (bytes replies).
        stream: The events stream.
        own: Feeds of this process as ``(exchange, market)``; their events do not count.
        window: Look-back, seconds.
        min_events: Other feeds' liquidations in the window that make the market active.
        refresh: Seconds between two reads.
        limit: Most entries read per refresh (enough to reach ``min_events`` in a busy market).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        stream: str,
        own: set[tuple[str, str]],
        *,
        window: float,
        min_events: int,
        refresh: float = 5.0,
        limit: int = 2000,
    ) -> None:
        self.client = client
        self.stream = stream
        self.own = own
        self.window = window
        self.min_events = min_events
        self.refresh = refresh
        self.limit = limit
        self.active = False
        self.others = 0

    async def probe(self) -> bool:
        """Read the window once; updates and returns :attr:`active` (False while Redis is down)."""
        now = int(time.time() * 1000)
        try:
            entries = cast(
                list[tuple[bytes, dict[bytes, bytes]]],
                await self.client.xrevrange(
                    self.stream, max="+", min=str(now - int(self.window * 1000)), count=self.limit
                ),
            )
        except REDIS_DOWN as exc:
            log.warning("market_activity_unknown", error=str(exc))
            self.active = False
            return False
        others = 0
        for _, fields in entries:
            try:
                event = LIQUIDATIONS.decode(fields)
            except EntryDecodeError:
                continue
            if (event.exchange, event.market) not in self.own:
                others += 1
        self.others = others
        self.active = others >= self.min_events
        return self.active

    async def run(self, stop: asyncio.Event) -> None:
        """Probe every ``refresh`` seconds until ``stop`` is set."""
        while not stop.is_set():
            await self.probe()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.refresh)
