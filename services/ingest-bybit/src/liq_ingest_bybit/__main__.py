"""Entry point of liq-ingest-bybit: ``python -m liq_ingest_bybit`` or the ``liq-ingest-bybit`` script."""

from __future__ import annotations

import os

import httpx
import redis.asyncio as aioredis

from liq_common.runtime import ServiceContext, run_redis_service
from liq_common.settings import check_or_exit, load_or_exit
from liq_ingest_bybit.app import BybitIngest, markets
from liq_ingest_bybit.settings import Settings


def main() -> None:
    """Load settings from the environment and run the service until SIGTERM/SIGINT."""
    settings = load_or_exit(Settings, os.environ)
    check_or_exit(lambda: markets(settings), ValueError)

    async def body(ctx: ServiceContext, client: aioredis.Redis) -> None:
        async with httpx.AsyncClient(timeout=10.0) as http:  # instruments-info polls
            await BybitIngest(settings, client, http, ctx.health).run(ctx.stop)

    run_redis_service("ingest-bybit", settings, body)


if __name__ == "__main__":
    main()
