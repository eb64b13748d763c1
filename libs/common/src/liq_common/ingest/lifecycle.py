"""How an ingestor process runs its feeds and shuts down: the order both exchanges share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol


class Feed(Protocol):
    """One exchange market's connections (e.g. Binance USD-M, Bybit inverse)."""

    def run(self, stop: asyncio.Event) -> Awaitable[None]: ...


Background = Callable[[asyncio.Event], Awaitable[None]]


async def run_feeds(
    feeds: Iterable[Feed], *, flushers: Iterable[Background], helpers: Iterable[Background], stop: asyncio.Event
) -> None:
    """Run ``feeds`` until ``stop``; then let the ``flushers`` (event and status producers) drain and return.

    Flushers get their own stop signal, set only after every feed has returned, so nothing a feed queued
    on its way out is left unpublished; ``helpers`` (e.g. the market-activity probe) stop with ``stop``.
    """
    flushed = asyncio.Event()
    tasks = [asyncio.ensure_future(f(flushed)) for f in flushers] + [asyncio.ensure_future(h(stop)) for h in helpers]
    try:
        await asyncio.gather(*(feed.run(stop) for feed in feeds))
    finally:
        flushed.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
