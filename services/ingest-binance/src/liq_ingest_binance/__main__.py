"""Entry point of liq-ingest-binance: ``python -m liq_ingest_binance`` or the ``liq-ingest-binance`` script."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import httpx

from liq_common.runtime import ServiceContext, run_service, watch_redis
from liq_common.settings import load_or_exit
from liq_common.streams import connect_redis
from liq_ingest_binance.app import BinanceIngest, markets
from liq_ingest_binance.settings import Settings


def main() -> None:
    """Load settings from the environment and run the service until SIGTERM/SIGINT."""
    settings = load_or_exit(Settings, os.environ)
    try:
        markets(settings)
    except ValueError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        raise SystemExit(2) from exc

    async def body(ctx: ServiceContext) -> None:
        client = connect_redis(settings.redis_url)
        watcher = asyncio.create_task(watch_redis(ctx, client))
        try:
            async with httpx.AsyncClient(timeout=10.0) as http:
                await BinanceIngest(settings, client, http, ctx.health).run(ctx.stop)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await client.aclose()

    run_service("ingest-binance", settings, body)


if __name__ == "__main__":
    main()
