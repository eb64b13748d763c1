"""Entry point of liq-ingest-binance: ``python -m liq_ingest_binance`` or the ``liq-ingest-binance`` script."""

from __future__ import annotations

import os

import httpx
import redis.asyncio as aioredis

from liq_common.runtime import ServiceContext, run_redis_service
from liq_common.settings import check_or_exit, load_or_exit
from liq_ingest_binance.app import BinanceIngest, markets
from liq_ingest_binance.settings import Settings


def main() -> None:
    """Load settings from the environment and run the service until SIGTERM/SIGINT."""
    settings = load_or_exit(Settings, os.environ)
    check_or_exit(lambda: markets(settings), ValueError)

    async def body(ctx: ServiceContext, client: aioredis.Redis) -> None:
        async with httpx.AsyncClient(timeout=10.0) as http:  # exchangeInfo polls
            await BinanceIngest(settings, client, http, ctx.health).run(ctx.stop)

    run_redis_service("ingest-binance", settings, body)


if __name__ == "__main__":
    main()
